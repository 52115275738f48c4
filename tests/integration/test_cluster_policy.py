"""The cluster's policy on privileged Compose keys and Compose profiles, on a real ccs-server
and a real etcd (the containers' side is tests/integration/test_cluster_policy_agent.py).

- A template with a privileged key is refused (PERMISSION_DENIED, nothing written) naming
  every field and the ``--allow`` to give, until the cluster's policy allows it.
- Narrowing the policy leaves accepted applications as they are; their next update or
  rollback must pass the narrowed policy.
- A ``--deny`` that lands between the check and the accepting write is not missed (the write
  is guarded by the cluster record's revision): made to happen deterministically by running
  the deny from inside the check.
- Profiles: chosen at deploy, kept by an update that names none, replaced, cleared, restored
  by a rollback; a dependency left out by profiles is INVALID_ARGUMENT naming the profile.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.api import app_policy, apps
from controlplane.api.apps import ApplicationServicer
from controlplane.api.clusters import ClusterServicer
from controlplane.compose import ParsedTemplate
from controlplane.store.etcd import Etcd
from tests.integration.grpc_helpers import Stubs, code_of, deploy, make_cluster, stubs

pytestmark = [pytest.mark.etcd, pytest.mark.timeout(120)]

PRIVILEGED = """
services:
  web: {image: local/busybox:1, command: sleep 3600}
  tools:
    image: local/busybox:1
    command: sleep 3600
    privileged: true
    cap_add: [NET_BIND_SERVICE, SYS_ADMIN]
    sysctls: {net.core.somaxconn: 1024}
"""
PLAIN = "services:\n  web: {image: local/busybox:1, command: sleep 3600}\n  tools: {image: local/busybox:1}\n"


@pytest.fixture
async def api(ccs_server: Any) -> AsyncIterator[Stubs]:
    s = stubs(ccs_server.address, ccs_server.token)
    yield s
    await s.channel.close()


async def update_cluster(api: Stubs, name: str, allow: list[str] = [], deny: list[str] = []) -> pb.Cluster:  # noqa: B006
    cluster: pb.Cluster = await api.clusters.UpdateCluster(
        api_pb2.UpdateClusterRequest(name=name, allow=allow, deny=deny), metadata=api.metadata)
    return cluster


async def update_app(api: Stubs, cluster: str, name: str, **kw: Any) -> pb.Application:
    app: pb.Application = await api.apps.UpdateApplication(
        api_pb2.UpdateApplicationRequest(cluster=cluster, name=name, **kw), metadata=api.metadata)
    return app


async def services(api: Stubs, cluster: str, name: str) -> list[str]:
    resp = await api.apps.GetApplication(api_pb2.GetApplicationRequest(cluster=cluster, name=name),
                                         metadata=api.metadata)
    return sorted(s.meta.name for s in resp.services)


async def test_privileged_keys_wait_for_the_policy_and_narrowing_it_keeps_what_runs(api: Stubs, unique: str) -> None:
    await make_cluster(api, unique)
    code, message = await code_of(deploy(api, unique, template=PRIVILEGED))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert message == (
        f"services.tools.cap_add[1]: capability CAP_SYS_ADMIN is refused by the policy of cluster {unique}; "
        f"allow with `ccs cluster update {unique} --allow cap_add`; "
        f"services.tools.privileged: privileged: true is refused by the policy of cluster {unique}; "
        f"allow with `ccs cluster update {unique} --allow privileged`"
    )
    code, _ = await code_of(api.apps.GetApplication(api_pb2.GetApplicationRequest(cluster=unique, name="shop"),
                                                    metadata=api.metadata))
    assert code == grpc.StatusCode.NOT_FOUND  # nothing written

    assert list((await update_cluster(api, unique, allow=["privileged"])).policy.allow) == ["privileged"]
    code, message = await code_of(deploy(api, unique, template=PRIVILEGED, dry_run=True))  # the dry run too
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert message.startswith("services.tools.cap_add[1]: capability CAP_SYS_ADMIN is refused")
    assert "privileged" not in message
    cluster = await update_cluster(api, unique, allow=["cap_add"])
    assert list(cluster.policy.allow) == ["cap_add", "privileged"]
    got = await api.clusters.GetCluster(api_pb2.GetClusterRequest(name=unique), metadata=api.metadata)
    assert list(got.policy.allow) == ["cap_add", "privileged"]
    app = await deploy(api, unique, template=PRIVILEGED)
    assert app.revision == 1

    # Narrowed: the application stays as accepted ...
    assert list((await update_cluster(api, unique, deny=["privileged"])).policy.allow) == ["cap_add"]
    resp = await api.apps.GetApplication(api_pb2.GetApplicationRequest(cluster=unique, name="shop"),
                                         metadata=api.metadata)
    tools = next(s for s in resp.services if s.meta.name == "tools")
    assert tools.spec.privileged and tools.generation == 1
    # ... and its next change must pass the narrowed policy.
    code, message = await code_of(update_app(api, unique, "shop", env={"X": "1"}))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert message.startswith("services.tools.privileged: privileged: true is refused")
    updated = await update_app(api, unique, "shop", template=PLAIN)
    assert updated.revision == 2
    code, message = await code_of(api.apps.RollbackApplication(
        api_pb2.RollbackApplicationRequest(cluster=unique, name="shop"), metadata=api.metadata))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "--allow privileged" in message
    await update_cluster(api, unique, allow=["privileged"])
    rolled = await api.apps.RollbackApplication(
        api_pb2.RollbackApplicationRequest(cluster=unique, name="shop"), metadata=api.metadata)
    assert rolled.revision == 3


async def test_policy_names_are_checked(api: Stubs, unique: str) -> None:
    await make_cluster(api, unique)
    code, message = await code_of(update_cluster(api, unique, allow=["privileged", "root"]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message.startswith("allow[1]: 'root' is not a policy name; use one of privileged, cap_add,")
    code, message = await code_of(update_cluster(api, unique, allow=["pid"], deny=["pid"]))
    assert (code, message) == (grpc.StatusCode.INVALID_ARGUMENT, "deny: pid also in allow; say one or the other")
    code, _ = await code_of(update_cluster(api, f"{unique}x", allow=["pid"]))
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = await code_of(api.clusters.UpdateCluster(
        api_pb2.UpdateClusterRequest(name=unique, allow=["pid"], resource_version=1), metadata=api.metadata))
    assert code == grpc.StatusCode.ABORTED


# ---------------------------------------------------------------- the race, made deterministic

class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code, self.details = code, details


class Ctx:
    """What the servicers use of a grpc.aio.ServicerContext: abort."""

    async def abort(self, code: grpc.StatusCode, details: str, *_: Any) -> None:
        raise Aborted(code, details)


async def test_a_deny_between_the_check_and_the_write_is_not_missed(
    etcd: Any, unique: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = Etcd([etcd.url])
    clusters, applications, ctx = ClusterServicer(store), ApplicationServicer(store), Ctx()
    try:
        await clusters.CreateCluster(api_pb2.CreateClusterRequest(name=unique), ctx)
        await clusters.UpdateCluster(api_pb2.UpdateClusterRequest(name=unique, allow=["privileged"]), ctx)
        await applications.CreateApplication(api_pb2.CreateApplicationRequest(
            cluster=unique, name="plain", template=PLAIN), ctx)
        real = app_policy.check_policy
        denied: list[int] = []

        async def check_then_deny(etcd: Etcd, cluster: str, parsed: ParsedTemplate) -> int:
            revision = await real(etcd, cluster, parsed)
            if revision and not denied:  # the first accepting check passes; then the admin narrows
                denied.append(revision)
                await clusters.UpdateCluster(api_pb2.UpdateClusterRequest(name=unique, deny=["privileged"]), ctx)
            return revision

        monkeypatch.setattr(apps, "check_policy", check_then_deny)
        privileged = "services:\n  web: {image: local/busybox:1, privileged: true}\n"
        with pytest.raises(Aborted) as info:  # retried on the conflict, then refused by the new policy
            await applications.UpdateApplication(api_pb2.UpdateApplicationRequest(
                cluster=unique, name="plain", template=privileged), ctx)
        assert info.value.code == grpc.StatusCode.PERMISSION_DENIED and len(denied) == 1

        await clusters.UpdateCluster(api_pb2.UpdateClusterRequest(name=unique, allow=["privileged"]), ctx)
        denied.clear()
        with pytest.raises(Aborted) as info:
            await applications.CreateApplication(api_pb2.CreateApplicationRequest(
                cluster=unique, name="priv", template=privileged), ctx)
        assert info.value.code == grpc.StatusCode.ABORTED and len(denied) == 1
        assert await store.get(f"/ccs/c/{unique}/apps/priv") is None
        plain = await applications.GetApplication(api_pb2.GetApplicationRequest(cluster=unique, name="plain"), ctx)
        assert plain.application.revision == 1  # the update was not written either
    finally:
        await store.close()


# ---------------------------------------------------------------- profiles

PROFILED = """
services:
  web: {image: local/busybox:1, command: sleep 3600}
  debug: {image: local/busybox:1, command: sleep 3600, profiles: [debug]}
  metrics: {image: local/busybox:1, command: sleep 3600, profiles: [ops]}
"""


async def test_profiles_are_chosen_kept_replaced_cleared_and_rolled_back(api: Stubs, unique: str) -> None:
    await make_cluster(api, unique)
    app = await deploy(api, unique, template=PROFILED, profiles=["debug"])
    assert list(app.spec.profiles) == ["debug"]
    assert await services(api, unique, "shop") == ["debug", "web"]
    kept = await update_app(api, unique, "shop", env={"X": "1"})
    assert list(kept.spec.profiles) == ["debug"] and await services(api, unique, "shop") == ["debug", "web"]
    replaced = await update_app(api, unique, "shop", profiles=["ops", "ops"])
    assert list(replaced.spec.profiles) == ["ops"] and await services(api, unique, "shop") == ["metrics", "web"]
    cleared = await update_app(api, unique, "shop", clear_profiles=True)
    assert list(cleared.spec.profiles) == [] and await services(api, unique, "shop") == ["web"]
    revisions = await api.apps.ListRevisions(api_pb2.ListRevisionsRequest(cluster=unique, name="shop"),
                                             metadata=api.metadata)
    assert [list(r.spec.profiles) for r in revisions.revisions] == [["debug"], ["debug"], ["ops"], []]
    rolled = await api.apps.RollbackApplication(
        api_pb2.RollbackApplicationRequest(cluster=unique, name="shop", to_revision=3), metadata=api.metadata)
    assert list(rolled.spec.profiles) == ["ops"] and await services(api, unique, "shop") == ["metrics", "web"]
    code, message = await code_of(update_app(api, unique, "shop", profiles=["x"], clear_profiles=True))
    assert (code, message) == (grpc.StatusCode.INVALID_ARGUMENT, "clear_profiles: cannot be combined with profiles")


async def test_a_dependency_left_out_by_profiles_is_refused(api: Stubs, unique: str) -> None:
    await make_cluster(api, unique)
    template = PROFILED + "  admin: {image: local/busybox:1, profiles: [ops], depends_on: [debug]}\n"
    code, message = await code_of(deploy(api, unique, template=template, profiles=["ops"]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message == (
        "services.admin.depends_on: service 'debug' is not deployed: its profiles (debug) are not chosen; "
        "add --profile debug (line 6)"
    )
    app = await deploy(api, unique, template=template, profiles=["ops", "debug"])
    assert app.status.services == 4
