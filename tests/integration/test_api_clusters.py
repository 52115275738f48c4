"""The gRPC API of a real ccs-server process on a real etcd: authentication, health and
reflection, and clusters (applications in test_api_apps.py, events and watch in test_api_watch.py)."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from ccs.v1 import api_pb2
from tests.integration.grpc_helpers import Stubs, channel, code_of, deploy, make_cluster, stubs

pytestmark = pytest.mark.etcd


# ---------------------------------------------------------------- auth, health, reflection

async def test_no_token_and_bad_token_are_unauthenticated(ccs_server) -> None:  # type: ignore[no-untyped-def]
    for token in (None, "ccs_not-a-real-token"):
        s = stubs(ccs_server.address, token)
        code, _ = await code_of(s.clusters.ListClusters(api_pb2.ListClustersRequest(), metadata=s.metadata))
        assert code == grpc.StatusCode.UNAUTHENTICATED
        code, _ = await code_of(
            s.events.Watch(api_pb2.WatchRequest(cluster="x"), metadata=s.metadata).read()
        )
        assert code == grpc.StatusCode.UNAUTHENTICATED
        await s.channel.close()


async def test_health_and_reflection_need_no_token(ccs_server) -> None:  # type: ignore[no-untyped-def]
    async with channel(ccs_server.address) as ch:
        resp = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest())
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
        refl = reflection_pb2_grpc.ServerReflectionStub(ch)
        call = refl.ServerReflectionInfo()
        await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
        answer = await call.read()
        await call.done_writing()
        names = {s.name for s in answer.list_services_response.service}
    assert {"ccs.v1.ClusterService", "ccs.v1.ApplicationService", "ccs.v1.EventService",
            "ccs.v1.Dispatcher", "grpc.health.v1.Health"} <= names


# ---------------------------------------------------------------- clusters

async def test_cluster_lifecycle(api: Stubs, unique: str) -> None:
    created = await make_cluster(api, unique)
    assert created.meta.id and created.meta.resource_version > 0
    assert created.meta.created_at.seconds > 0
    got = await api.clusters.GetCluster(api_pb2.GetClusterRequest(name=unique), metadata=api.metadata)
    assert got == created
    listed = await api.clusters.ListClusters(api_pb2.ListClustersRequest(), metadata=api.metadata)
    assert unique in [c.meta.name for c in listed.clusters]
    code, msg = await code_of(make_cluster(api, unique))
    assert code == grpc.StatusCode.ALREADY_EXISTS and unique in msg
    await api.clusters.DeleteCluster(api_pb2.DeleteClusterRequest(name=unique), metadata=api.metadata)
    code, _ = await code_of(
        api.clusters.GetCluster(api_pb2.GetClusterRequest(name=unique), metadata=api.metadata)
    )
    assert code == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("name", ["", "UPPER", "-dash", "a" * 64, "under_score", "dot.ted"])
async def test_invalid_cluster_names_name_the_field(api: Stubs, name: str) -> None:
    code, msg = await code_of(make_cluster(api, name))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert msg.startswith("name:")


async def test_delete_refuses_a_cluster_with_apps_unless_forced(api: Stubs, unique: str) -> None:
    await make_cluster(api, unique)
    await deploy(api, unique)
    code, msg = await code_of(
        api.clusters.DeleteCluster(api_pb2.DeleteClusterRequest(name=unique), metadata=api.metadata)
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "1 application" in msg
    await api.clusters.DeleteCluster(
        api_pb2.DeleteClusterRequest(name=unique, force=True), metadata=api.metadata
    )
    code, _ = await code_of(
        api.apps.GetApplication(api_pb2.GetApplicationRequest(cluster=unique, name="shop"),
                                metadata=api.metadata)
    )
    assert code == grpc.StatusCode.NOT_FOUND


async def test_join_token_is_stable_until_rotated(api: Stubs, unique: str) -> None:
    await make_cluster(api, unique)
    req = api_pb2.GetJoinTokenRequest(cluster=unique)
    t1 = (await api.clusters.GetJoinToken(req, metadata=api.metadata)).token
    t2 = (await api.clusters.GetJoinToken(req, metadata=api.metadata)).token
    t3 = (await api.clusters.GetJoinToken(
        api_pb2.GetJoinTokenRequest(cluster=unique, rotate=True), metadata=api.metadata)).token
    assert t1 == t2 != t3 and unique in t3


