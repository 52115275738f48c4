"""What a trigger does: redeploy, retag one service's image, or scale one service.

Each action goes through the API's own write paths (``ApplicationServicer._UpdateApplication``,
``ServiceServicer._ScaleService``), not a copy of them: a trigger's update is checked, released
and audited exactly like ``ccs app update`` and ``ccs service scale`` (policy, template limits,
one guarded transaction, the release it starts). Retagging edits the stored template with
ruamel.yaml's round-trip mode, which keeps comments, order and quoting: the template an
operator reads back is the one they wrote, with one tag changed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb
from ccs.v1 import triggers_pb2 as tpb
from controlplane.api.app_specs import resolve
from controlplane.api.app_update import UpdateSeen
from controlplane.api.apps import ApplicationServicer
from controlplane.api.common import read_modify_write
from controlplane.api.services import ServiceServicer
from controlplane.grpc_errors import FailedPrecondition, InvalidArgument
from controlplane.store import keys, reads
from controlplane.store.etcd import Etcd
from controlplane.triggers.rules import Params, retag

ACTIONS = {
    "redeploy": tpb.TRIGGER_ACTION_REDEPLOY,
    "update-image": tpb.TRIGGER_ACTION_UPDATE_IMAGE,
    "scale": tpb.TRIGGER_ACTION_SCALE,
}
ACTION_NAMES = {v: k for k, v in ACTIONS.items()}


@dataclass(frozen=True)
class Outcome:
    result: str        # released | unchanged | scaled
    release: str = ""  # the release started, if any
    revision: int = 0
    message: str = ""


def check_params(trigger: tpb.Trigger, params: Params) -> None:
    """Refuse a parameter the action does not use, or a missing one (naming it)."""
    action = trigger.action
    if action == tpb.TRIGGER_ACTION_UPDATE_IMAGE and not params.tag:
        raise InvalidArgument("tag", "update-image needs the new image tag")
    if action != tpb.TRIGGER_ACTION_UPDATE_IMAGE and params.tag:
        raise InvalidArgument("tag", f"a {ACTION_NAMES.get(action, '?')} trigger takes no tag")
    if action == tpb.TRIGGER_ACTION_SCALE and params.replicas is None:
        raise InvalidArgument("replicas", "scale needs the number of replicas")
    if action != tpb.TRIGGER_ACTION_SCALE and params.replicas is not None:
        raise InvalidArgument("replicas", f"a {ACTION_NAMES.get(action, '?')} trigger takes no replicas")
    if action == tpb.TRIGGER_ACTION_SCALE and params.version:
        raise InvalidArgument("version", "a scale trigger takes no version")


def retag_template(template: str, service: str, tag: str) -> str:
    """``template`` with service ``service``'s image tag set to ``tag`` (InvalidArgument when
    the service or its image is missing, or the image is interpolated: which variable to set
    would be a guess)."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    try:
        doc = yaml.load(template)
    except YAMLError as e:
        raise InvalidArgument("template", f"the stored template does not parse: {e}") from None
    services = doc.get("services") if isinstance(doc, dict) else None
    svc = services.get(service) if isinstance(services, dict) else None
    if not isinstance(svc, dict):
        raise FailedPrecondition(f"service {service!r} is not in the application's template")
    image = svc.get("image")
    if not isinstance(image, str) or not image:
        raise FailedPrecondition(f"service {service!r} has no image: to retag (a build: service needs one)")
    if "$" in image:
        raise FailedPrecondition(f"service {service!r}'s image {image!r} is interpolated; use a redeploy "
                                 "trigger and set the variable, or write the image out")
    svc["image"] = retag(image, tag)
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


class Actions:
    def __init__(self, etcd: Etcd, apps: ApplicationServicer, services: ServiceServicer) -> None:
        self.etcd, self.apps, self.services = etcd, apps, services

    async def application(self, cluster: str, name: str) -> pb.Application:
        return await reads.get(self.etcd, keys.app(cluster, name), pb.Application, "application", name)

    async def run(self, trigger: tpb.Trigger, params: Params) -> Outcome:
        check_params(trigger, params)
        cluster, app = trigger.cluster, trigger.application
        if trigger.action == tpb.TRIGGER_ACTION_SCALE:
            assert params.replicas is not None
            req = api_pb2.ScaleServiceRequest(cluster=cluster, application=app, name=trigger.service,
                                              replicas=params.replicas)
            # The first try writes the informer's copy of the service back (no read); a copy
            # another write overtook fails the revision guard, and the retries read etcd.
            informer = self.services.cache.informer
            state = informer.clusters.get(cluster) if informer is not None else None
            first = [state.services.get((app, trigger.service))] if state is not None else []

            async def scale() -> pb.Service:
                return await self.services._ScaleService(req, first.pop() if first else None)

            svc = await read_modify_write(0, scale)
            return Outcome("scaled", message=f"service {app}/{trigger.service}: {params.replicas} replicas",
                           revision=svc.meta.resource_version)

        seen: list[UpdateSeen] = []

        async def update() -> pb.Application:
            seen.clear()  # a retried attempt decides again
            req = api_pb2.UpdateApplicationRequest(cluster=cluster, name=app, version=params.version)
            if trigger.action == tpb.TRIGGER_ACTION_UPDATE_IMAGE:
                current = await self.application(cluster, app)
                await resolve(self.etcd, cluster, app, current.spec)
                req.template = retag_template(current.spec.template, trigger.service, params.tag)
                req.files.update(current.spec.files)
                req.resource_version = current.meta.resource_version
            return await self.apps._UpdateApplication(req, seen.append)

        updated = await read_modify_write(0, update)
        # The release this update started, as apply_update decided it (its observe hook): no
        # list of the application's releases before and after.
        release = seen[-1].plan.release if seen else None
        if release is None:
            return Outcome("unchanged", revision=updated.revision,
                           message=f"revision {updated.revision}: no service changed, no release")
        return Outcome("released", release=release.meta.name, revision=updated.revision,
                       message=f"revision {updated.revision}: release {release.meta.name} started")
