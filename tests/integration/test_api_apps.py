"""The gRPC API of a real ccs-server process on a real etcd: applications (deploy, templates,
update, start/stop/delete), their services and containers."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb
from tests.integration.grpc_helpers import TEMPLATE, Stubs, code_of, deploy, make_cluster

pytestmark = pytest.mark.etcd


# ---------------------------------------------------------------- applications

async def test_deploy_creates_app_and_services_together(api: Stubs, unique: str, etcd) -> None:  # type: ignore[no-untyped-def]
    await make_cluster(api, unique)
    app = await deploy(api, unique, env={"TAG": "v7"}, version="1.0")
    assert app.revision == 1 and app.spec.version == "1.0"
    assert app.spec.desired_state == pb.DESIRED_STATE_RUNNING
    got = await api.apps.GetApplication(
        api_pb2.GetApplicationRequest(cluster=unique, name="shop"), metadata=api.metadata
    )
    services = {s.meta.name: s for s in got.services}
    assert set(services) == {"web", "db"}
    web = services["web"]
    assert web.spec.image == "local/webapp:v7"
    assert web.spec.replicas == 3 and web.status.desired == 3
    assert web.spec.ports[0].published == 8080 and web.spec.ports[0].target == 80
    assert web.spec.depends_on[0].service == "db"
    assert web.spec.depends_on[0].condition == "service_healthy"
    # all keys created by one transaction: the same create revision in etcd
    from controlplane.store import keys
    from controlplane.store.etcd import Etcd

    client = Etcd([etcd.url])
    created = {(await client.get(keys.service(unique, "shop", n))).create_revision for n in services}  # type: ignore[union-attr]
    app_kv = await client.get(keys.app(unique, "shop"))
    await client.close()
    assert app_kv is not None and created == {app_kv.create_revision}


async def test_bad_template_names_the_field_and_writes_nothing(api: Stubs, unique: str) -> None:
    await make_cluster(api, unique)
    bad = TEMPLATE.replace("replicas: 3", "replicas: lots")
    code, msg = await code_of(deploy(api, unique, template=bad))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "services.web.deploy.replicas" in msg
    listed = await api.apps.ListApplications(
        api_pb2.ListApplicationsRequest(cluster=unique), metadata=api.metadata
    )
    assert list(listed.applications) == []
    services = await api.services.ListServices(
        api_pb2.ListServicesRequest(cluster=unique), metadata=api.metadata
    )
    assert list(services.services) == []


@pytest.mark.parametrize(
    ("template", "field"),
    [
        ("services: [\n", "line"),
        ("services:\n  web:\n    image: x\n    deploy: {replicas: 1001}\n", "services.web.deploy.replicas"),
        ("services:\n  web:\n    image: ${IMAGE:?set IMAGE}\n", "IMAGE"),
        ("services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n",
         "cycle"),
        ("services:\n  a:\n    image: x\n    ports: ['80:80']\n  b:\n    image: x\n    ports: ['80:81']\n",
         "80"),
        ("services:\n  web:\n    build: .\n", "services.web"),
    ],
)
async def test_template_errors_are_invalid_argument(
    api: Stubs, unique: str, template: str, field: str
) -> None:
    await make_cluster(api, unique)
    code, msg = await code_of(deploy(api, unique, template=template))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert field in msg


async def test_template_size_limit(api: Stubs, unique: str) -> None:
    await make_cluster(api, unique)
    huge = TEMPLATE + "#" + "x" * (1024 * 1024) + "\n"
    code, msg = await code_of(deploy(api, unique, template=huge))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert msg.startswith("template:") and "1 MiB" in msg


async def test_deploy_into_missing_cluster_is_not_found(api: Stubs, unique: str) -> None:
    code, msg = await code_of(deploy(api, unique))
    assert code == grpc.StatusCode.NOT_FOUND and unique in msg


async def test_update_changes_services_in_one_step(api: Stubs, unique: str) -> None:
    await make_cluster(api, unique)
    await deploy(api, unique)
    new = TEMPLATE.replace("replicas: 3", "replicas: 2") + "  cache:\n    image: local/busybox:1\n"
    for _ in range(10):  # a conditional update: re-read when the control plane wrote status
        app = (await api.apps.GetApplication(
            api_pb2.GetApplicationRequest(cluster=unique, name="shop"), metadata=api.metadata)).application
        try:
            updated = await api.apps.UpdateApplication(
                api_pb2.UpdateApplicationRequest(cluster=unique, name="shop", template=new, env={"TAG": "v2"},
                                                 version="2.0", resource_version=app.meta.resource_version),
                metadata=api.metadata,
            )
            break
        except grpc.aio.AioRpcError as e:
            assert e.code() == grpc.StatusCode.ABORTED
    assert updated.revision == 2 and updated.spec.version == "2.0"
    got = await api.apps.GetApplication(
        api_pb2.GetApplicationRequest(cluster=unique, name="shop"), metadata=api.metadata
    )
    services = {s.meta.name: s for s in got.services}
    assert set(services) == {"web", "db", "cache"}
    assert services["web"].spec.image == "local/webapp:v2"
    assert services["web"].generation == 2 and services["web"].app_revision == 2
    assert services["db"].generation == 1


async def test_stale_resource_version_is_aborted_and_changes_nothing(api: Stubs, unique: str) -> None:
    await make_cluster(api, unique)
    app = await deploy(api, unique)
    await api.apps.UpdateApplication(
        api_pb2.UpdateApplicationRequest(cluster=unique, name="shop", version="2"), metadata=api.metadata
    )
    code, msg = await code_of(api.apps.UpdateApplication(
        api_pb2.UpdateApplicationRequest(cluster=unique, name="shop", version="3",
                                         resource_version=app.meta.resource_version),
        metadata=api.metadata,
    ))
    assert code == grpc.StatusCode.ABORTED and "stale" in msg
    got = await api.apps.GetApplication(
        api_pb2.GetApplicationRequest(cluster=unique, name="shop"), metadata=api.metadata
    )
    assert got.application.spec.version == "2"


async def test_start_stop_and_delete(api: Stubs, unique: str) -> None:
    await make_cluster(api, unique)
    await deploy(api, unique)
    req = dict(cluster=unique, name="shop")
    stopped = await api.apps.StopApplication(api_pb2.StopApplicationRequest(**req), metadata=api.metadata)
    assert stopped.spec.desired_state == pb.DESIRED_STATE_STOPPED
    started = await api.apps.StartApplication(api_pb2.StartApplicationRequest(**req), metadata=api.metadata)
    assert started.spec.desired_state == pb.DESIRED_STATE_RUNNING
    await api.apps.DeleteApplication(api_pb2.DeleteApplicationRequest(cluster=unique, name="shop"),
                                     metadata=api.metadata)
    # The reconciler may already have made (pending) containers: then the delete is a
    # "Deleting" phase that ends when they are gone; either way nothing is left.
    for _ in range(200):
        services = await api.services.ListServices(
            api_pb2.ListServicesRequest(cluster=unique), metadata=api.metadata
        )
        containers = await api.containers.ListContainers(
            api_pb2.ListContainersRequest(cluster=unique), metadata=api.metadata
        )
        try:
            await api.apps.GetApplication(api_pb2.GetApplicationRequest(**req), metadata=api.metadata)
            code = grpc.StatusCode.OK
        except grpc.aio.AioRpcError as e:
            code = e.code()
        if not services.services and not containers.containers and code == grpc.StatusCode.NOT_FOUND:
            break
        await asyncio.sleep(0.05)
    assert list(services.services) == [] and list(containers.containers) == []
    assert code == grpc.StatusCode.NOT_FOUND


# ---------------------------------------------------------------- services, containers

async def test_scale_and_its_limits(api: Stubs, unique: str) -> None:
    await make_cluster(api, unique)
    await deploy(api, unique, template=TEMPLATE + "  agent:\n    image: x\n    deploy: {mode: global}\n")
    scaled = await api.services.ScaleService(
        api_pb2.ScaleServiceRequest(cluster=unique, application="shop", name="web", replicas=7),
        metadata=api.metadata,
    )
    assert scaled.spec.replicas == 7 and scaled.generation == 1
    code, msg = await code_of(api.services.ScaleService(
        api_pb2.ScaleServiceRequest(cluster=unique, application="shop", name="web", replicas=1001),
        metadata=api.metadata))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and msg.startswith("replicas:") and "1000" in msg
    code, msg = await code_of(api.services.ScaleService(
        api_pb2.ScaleServiceRequest(cluster=unique, application="shop", name="agent", replicas=2),
        metadata=api.metadata))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "global" in msg
    code, _ = await code_of(api.services.ScaleService(
        api_pb2.ScaleServiceRequest(cluster=unique, application="shop", name="nope", replicas=2),
        metadata=api.metadata))
    assert code == grpc.StatusCode.NOT_FOUND


async def test_without_nodes_containers_stay_pending_with_a_reason(api: Stubs, unique: str) -> None:
    await make_cluster(api, unique)
    await deploy(api, unique)
    req = api_pb2.ListContainersRequest(cluster=unique, application="shop", service="db")
    for _ in range(100):
        resp = await api.containers.ListContainers(req, metadata=api.metadata)
        if resp.containers:
            break
        await asyncio.sleep(0.05)
    [db] = resp.containers
    assert db.node == "" and db.status.state == pb.CONTAINER_STATE_PENDING
    assert db.status.message == "no nodes in the cluster"
    # web waits for db to be healthy: no container of web yet
    web = await api.containers.ListContainers(
        api_pb2.ListContainersRequest(cluster=unique, application="shop", service="web"), metadata=api.metadata)
    assert list(web.containers) == []
    code, msg = await code_of(api.containers.ListContainers(
        api_pb2.ListContainersRequest(cluster=unique, service="web"), metadata=api.metadata))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and msg.startswith("service:")


