"""Releases, revisions and rollback at the API level (real server, real etcd, no agents)."""

from __future__ import annotations

import grpc
import pytest

from ccs.v1 import api_pb2, api_pb2_grpc
from ccs.v1 import resources_pb2 as pb
from tests.integration.grpc_helpers import Stubs, code_of, deploy, make_cluster

pytestmark = pytest.mark.etcd

V1 = """
services:
  web:
    image: local/webapp:${TAG:-v1}
    deploy: {replicas: 2}
  db:
    image: local/busybox:1
    command: sleep 3600
"""


def releases(api: Stubs) -> api_pb2_grpc.ReleaseServiceStub:
    return api_pb2_grpc.ReleaseServiceStub(api.channel)


async def update(api: Stubs, cluster: str, **kw: object) -> pb.Application:
    app: pb.Application = await api.apps.UpdateApplication(
        api_pb2.UpdateApplicationRequest(cluster=cluster, name="shop", **kw), metadata=api.metadata  # type: ignore[arg-type]
    )
    return app


async def test_an_update_that_changes_a_service_starts_a_release(api: Stubs, unique: str) -> None:
    await make_cluster(api, unique)
    await deploy(api, unique, template=V1)
    code, _ = await code_of(releases(api).GetRelease(
        api_pb2.GetReleaseRequest(cluster=unique, application="shop"), metadata=api.metadata))
    assert code == grpc.StatusCode.NOT_FOUND  # the first deploy is not a release
    await update(api, unique, env={"TAG": "v2"}, strategy="blue-green")
    rel = await releases(api).GetRelease(
        api_pb2.GetReleaseRequest(cluster=unique, application="shop"), metadata=api.metadata)
    assert rel.meta.name == "r000001" and rel.spec.strategy == "blue-green"
    assert list(rel.spec.services) == ["web"]  # db did not change
    assert rel.spec.previous_specs["web"].image == "local/webapp:v1"
    assert rel.spec.previous_generations["web"] == 1
    assert rel.spec.from_revision == 1 and rel.spec.to_revision == 2
    got = await api.services.GetService(
        api_pb2.GetServiceRequest(cluster=unique, application="shop", name="web"), metadata=api.metadata)
    assert got.generation == 2 and got.last_generation == 2 and got.spec.image == "local/webapp:v2"


async def test_a_new_release_supersedes_one_in_progress(api: Stubs, unique: str) -> None:
    await make_cluster(api, unique)
    await deploy(api, unique, template=V1)
    await update(api, unique, env={"TAG": "v2"}, strategy="blue-green")
    await update(api, unique, env={"TAG": "v3"})
    listed = await releases(api).ListReleases(
        api_pb2.ListReleasesRequest(cluster=unique, application="shop"), metadata=api.metadata)
    first, second = listed.releases
    assert first.status.phase == pb.RELEASE_PHASE_SUPERSEDED and "r000002" in first.status.message
    assert second.spec.strategy == "rolling"  # no flag, no template preference
    assert second.spec.previous_specs["web"].image == "local/webapp:v2"


async def test_operator_requests_are_checked_against_the_strategy(api: Stubs, unique: str) -> None:
    await make_cluster(api, unique)
    await deploy(api, unique, template=V1)
    await update(api, unique, env={"TAG": "v2"})  # rolling
    stub = releases(api)
    code, msg = await code_of(stub.ShiftTraffic(
        api_pb2.ShiftTrafficRequest(cluster=unique, application="shop", weight=50), metadata=api.metadata))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "blue-green" in msg and "rolling" in msg
    code, msg = await code_of(stub.ShiftTraffic(
        api_pb2.ShiftTrafficRequest(cluster=unique, application="shop", weight=150), metadata=api.metadata))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and msg.startswith("weight:")
    rel = await stub.RollbackRelease(
        api_pb2.ReleaseActionRequest(cluster=unique, application="shop"), metadata=api.metadata)
    assert list(rel.status.requests) == ["rollback"]


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"strategy": "rolling", "canary_replicas": 2}, "strategy"),
        ({"strategy": "canary", "canary_steps": [pb.CanaryStep(weight=10)]}, "canary_steps"),
        ({"strategy": "canary", "canary_steps": [pb.CanaryStep(weight=120)]}, "canary_steps[0].weight"),
        ({"strategy": "canary", "canary_analysis": pb.CanaryAnalysis(max_5xx_ratio=2)}, "canary_analysis.max_5xx_ratio"),
        ({"strategy": "canary", "match_header": "x-beta"}, "match_value"),
        ({"strategy": "sideways"}, "strategy"),
    ],
)
async def test_bad_release_options_name_the_field(api: Stubs, unique: str, kw: dict[str, object], field: str) -> None:
    await make_cluster(api, unique)
    await deploy(api, unique, template=V1)
    code, msg = await code_of(update(api, unique, env={"TAG": "v2"}, **kw))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and msg.startswith(field + ":"), msg
    got = await api.services.GetService(
        api_pb2.GetServiceRequest(cluster=unique, application="shop", name="web"), metadata=api.metadata)
    assert got.spec.image == "local/webapp:v1"  # nothing written


DISAGREE = """
services:
  web:
    image: local/webapp:${TAG:-v1}
    x-ccs: {strategy: canary}
  db:
    image: local/busybox:${TAG:-v1}
    x-ccs: {strategy: blue-green}
"""


async def test_changed_services_asking_for_different_strategies_are_refused_until_one_is_passed(
    api: Stubs, unique: str
) -> None:
    """Nothing accepted is ignored: db's blue-green is not silently dropped for web's canary."""
    await make_cluster(api, unique)
    await deploy(api, unique, template=DISAGREE)
    code, msg = await code_of(update(api, unique, env={"TAG": "v2"}))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, msg
    assert msg.startswith("strategy: the changed services ask for different strategies (blue-green, canary)")
    assert "pass one explicitly" in msg
    got = await api.services.GetService(
        api_pb2.GetServiceRequest(cluster=unique, application="shop", name="web"), metadata=api.metadata)
    assert got.spec.image == "local/webapp:v1"  # nothing written
    await update(api, unique, env={"TAG": "v2"}, strategy="rolling")
    rel = await releases(api).GetRelease(
        api_pb2.GetReleaseRequest(cluster=unique, application="shop"), metadata=api.metadata)
    assert rel.spec.strategy == "rolling" and sorted(rel.spec.services) == ["db", "web"]


async def test_rollback_restores_every_service_of_an_earlier_revision(api: Stubs, unique: str) -> None:
    await make_cluster(api, unique)
    await deploy(api, unique, template=V1, version="1.0")
    three = V1.replace("sleep 3600", "sleep 7200") + "  cache:\n    image: local/busybox:1\n"
    await update(api, unique, template=three, env={"TAG": "v2"}, version="2.0")
    revs = await api.apps.ListRevisions(api_pb2.ListRevisionsRequest(cluster=unique, name="shop"),
                                        metadata=api.metadata)
    assert [r.revision for r in revs.revisions] == [1, 2]
    app = await api.apps.RollbackApplication(
        api_pb2.RollbackApplicationRequest(cluster=unique, name="shop", to_revision=1), metadata=api.metadata)
    assert app.revision == 3 and app.spec.version == "1.0"
    got = await api.apps.GetApplication(api_pb2.GetApplicationRequest(cluster=unique, name="shop"),
                                        metadata=api.metadata)
    services = {s.meta.name: s for s in got.services}
    assert set(services) == {"web", "db"}  # cache was added in revision 2: gone again
    assert services["web"].spec.image == "local/webapp:v1"
    assert list(services["db"].spec.command) == ["sleep", "3600"]
    assert services["web"].generation == 3  # a new generation, never a reused number
    rel = await releases(api).GetRelease(
        api_pb2.GetReleaseRequest(cluster=unique, application="shop"), metadata=api.metadata)
    assert rel.spec.is_rollback and sorted(rel.spec.services) == ["db", "web"]
    code, msg = await code_of(api.apps.RollbackApplication(
        api_pb2.RollbackApplicationRequest(cluster=unique, name="shop", to_revision=9), metadata=api.metadata))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and msg.startswith("to_revision:")
