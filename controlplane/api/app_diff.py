"""``DiffApplication``: what an update would change, service by service (``ccs app diff``).

The diff is the update itself, run as a dry run: the same request goes through
``UpdateApplication``'s code path with ``dry_run`` set (so every check the real call makes,
its transaction guards included, refuses the diff too), and the plan it decided is read back
through ``apply_update``'s ``observe`` hook. The specs returned are those the update would
write (template parsed, parameters interpolated, defaults applied), so the diff shows exactly
what the update would apply, never a client-side guess. Rendering is the client's
(``cli.diff_view``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.api.app_update import UpdateSeen

Update = Callable[[api_pb2.UpdateApplicationRequest, Callable[[UpdateSeen], object]], Awaitable[pb.Application]]


async def diff_application(
    request: api_pb2.UpdateApplicationRequest, update: Update
) -> api_pb2.DiffApplicationResponse:
    """Run ``update`` (the servicer's update path) as a dry run and describe what it decided."""
    dry = api_pb2.UpdateApplicationRequest()
    dry.CopyFrom(request)
    dry.dry_run = True
    seen: list[UpdateSeen] = []
    app = await update(dry, seen.append)
    return describe(app, seen[-1])


def describe(app: pb.Application, seen: UpdateSeen) -> api_pb2.DiffApplicationResponse:
    """The response for ``app`` (as the update leaves it) and what the update decided."""
    plan = seen.plan
    stored = {s.meta.name: s for s in seen.current}
    written = {s.meta.name: s for s in (*plan.changed, *plan.recertified)}
    revised = app.spec != seen.previous_spec
    resp = api_pb2.DiffApplicationResponse(
        application=app,
        version_before=seen.previous_spec.version,
        revision_before=app.revision - 1 if revised else app.revision,
        release_strategy=plan.release.spec.strategy if plan.release is not None else "",
    )
    for name, spec in seen.parsed.items():
        old = stored.pop(name, None)
        if old is None:
            resp.services.append(api_pb2.ServiceChange(name=name, change="added", after=spec))
        elif name in written:
            resp.services.append(api_pb2.ServiceChange(
                name=name, change="changed", before=old.spec, after=written[name].spec))
        else:
            resp.services.append(api_pb2.ServiceChange(
                name=name, change="unchanged", before=old.spec, after=old.spec))
    for name, old in stored.items():
        resp.services.append(api_pb2.ServiceChange(name=name, change="removed", before=old.spec))
    return resp
