"""The checks of an update's release options (strategy, canary steps and analysis, A/B match)
that do not need the stored application: pure, so a dry run and the real call run the same ones."""

from __future__ import annotations

from ccs.ab_match import HTTP_TOKEN, MATCH_VALUE
from controlplane.api.common import MAX_REPLICAS
from controlplane.grpc_errors import InvalidArgument
from controlplane.names import shown
from controlplane.release import ReleaseOptions


def check_release_options(o: ReleaseOptions) -> None:
    if o.strategy != "canary" and (
        o.canary_replicas
        or o.canary_steps
        or o.canary_analysis is not None
        or o.match_header
        or o.match_cookie
    ):
        raise InvalidArgument("strategy", "canary options need strategy canary")
    if o.canary_replicas > MAX_REPLICAS:
        raise InvalidArgument("canary_replicas", f"{o.canary_replicas} exceeds the limit of {MAX_REPLICAS}")
    for i, step in enumerate(o.canary_steps):
        if step.weight > 100:
            raise InvalidArgument(f"canary_steps[{i}].weight", f"{step.weight} is not a percentage (0-100)")
        if step.pause_ms < 0:
            raise InvalidArgument(f"canary_steps[{i}].pause_ms", "must not be negative")
    if o.canary_steps and o.canary_steps[-1].weight != 100:
        raise InvalidArgument("canary_steps", "the last step must send 100% of traffic to the new revision")
    a = o.canary_analysis
    if a is not None and not 0 <= a.max_5xx_ratio <= 1:
        raise InvalidArgument(
            "canary_analysis.max_5xx_ratio", f"{a.max_5xx_ratio} is not a ratio between 0 and 1"
        )
    if (o.match_header or o.match_cookie) and not o.match_value:
        raise InvalidArgument("match_value", "A/B routing by header or cookie needs the value to match")
    if o.match_header and o.match_cookie:
        raise InvalidArgument("match_cookie", "choose a header or a cookie, not both")
    # Both go into every router's HAProxy configuration (see ccs.ab_match).
    for field, name in (("match_header", o.match_header), ("match_cookie", o.match_cookie)):
        if name and not HTTP_TOKEN.fullmatch(name):
            raise InvalidArgument(field, f"{shown(name)} is not an HTTP header or cookie name (an RFC 9110 token)")
    if o.match_value and not MATCH_VALUE.fullmatch(o.match_value):
        raise InvalidArgument("match_value", f"{shown(o.match_value)}: use 1 to 1024 of A-Z a-z 0-9 . _ ~ : / + = @ -")
