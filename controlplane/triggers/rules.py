"""What a trigger call's body may ask, and the per-trigger rate limit: pure (the clock is an argument).

The body is optional JSON. ``tag`` (update-image) and ``replicas`` (scale) are the only
parameters, plus ``version`` (redeploy, update-image: the application's new version). A GitHub
push event's body (any JSON object with other keys) is accepted: its keys are not ours and are
ignored, so a GitHub webhook works unmodified for ``redeploy``. A key of ours with a wrong type
is refused naming it (400), never ignored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

#: A Docker tag: the grammar from distribution's reference package.
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
MAX_BODY = 1024 * 1024  # GitHub caps webhook payloads at 25 MB; ccs reads the body whole, so 1 MiB
MAX_REPLICAS = 10000


class BodyError(ValueError):
    """A parameter of ours is wrong: answered 400 naming the field."""


@dataclass(frozen=True)
class Params:
    tag: str = ""
    replicas: int | None = None
    version: str = ""


def parse_body(body: bytes, content_type: str = "") -> Params:
    if not body.strip():
        return Params()
    if "form-urlencoded" in content_type:
        raise BodyError("body: a form-encoded GitHub webhook is not supported; set its content type to "
                        "application/json")
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BodyError("body: not JSON") from None
    if not isinstance(doc, dict):
        raise BodyError("body: must be a JSON object")
    return params_from(doc)


def params_from(doc: dict[str, object]) -> Params:
    """Our keys of a call's JSON object (or of an ``InvokeTrigger`` request), checked."""
    tag = doc.get("tag", "")
    if not isinstance(tag, str) or (tag and not TAG.fullmatch(tag)):
        raise BodyError("tag: must be an image tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})")
    replicas = doc.get("replicas")
    if replicas is not None and (isinstance(replicas, bool) or not isinstance(replicas, int)
                                 or not 0 <= replicas <= MAX_REPLICAS):
        raise BodyError(f"replicas: must be a whole number from 0 to {MAX_REPLICAS}")
    version = doc.get("version", "")
    if not isinstance(version, str) or len(version) > 128:
        raise BodyError("version: must be a string of at most 128 characters")
    return Params(tag=tag, replicas=replicas, version=version)


def retag(image: str, tag: str) -> str:
    """``image`` with its tag (and any digest) replaced by ``tag``: ``reg:5000/a/b:1`` -> ``reg:5000/a/b:2``."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name = name[:colon]
    return f"{name}:{tag}"


#: Calls a trigger accepts per second on one server, and how many may come at once.
RATE = 1.0
BURST = 10.0


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class RateLimiter:
    """A token bucket per trigger (``rate`` a second, ``burst`` saved up); ``now`` is an argument.

    Per server replica, in memory: a limit shared through etcd would cost a write per call, and a
    call over the limit is refused before any etcd read. With N replicas a trigger may get N
    times the rate; the limit is there to keep one noisy (or hostile) caller from queueing
    releases, not to count exactly. At most ``max_keys`` buckets are kept (full ones go first).
    """

    rate: float = RATE
    burst: float = BURST
    max_keys: int = 10000
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def take(self, key: str, now: float) -> bool:
        b = self._buckets.get(key)
        if b is None:
            if len(self._buckets) >= self.max_keys:
                self._forget_full(now)
            b = self._buckets[key] = _Bucket(self.burst, now)
        b.tokens = min(self.burst, b.tokens + max(0.0, now - b.at) * self.rate)
        b.at = now
        if b.tokens >= 1:
            b.tokens -= 1
            return True
        return False

    def retry_after(self, key: str) -> float:
        b = self._buckets.get(key)
        return 0.0 if b is None else max(0.0, (1 - b.tokens) / self.rate)

    def _forget_full(self, now: float) -> None:
        for k, b in list(self._buckets.items()):
            if b.tokens + (now - b.at) * self.rate >= self.burst:
                del self._buckets[k]
        if len(self._buckets) >= self.max_keys:
            self._buckets.clear()
