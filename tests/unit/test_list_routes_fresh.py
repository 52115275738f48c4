"""``ListRoutes`` answers with a table at least as new as etcd at the call, even while the watch
cache lags.

The web console's live stream watches etcd itself and re-reads the routes list on each change;
a list answered from a lagging cache showed the table from before the change, and with nothing
changing afterwards the page stayed wrong (a blue-green release's new side never appeared on a
loaded CI machine). Here the cache is made to lag on purpose (``FakeEtcd.hold``) and the list
must wait for it, then show the new container.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import grpc
import pytest

from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.api.services import RouteServicer
from controlplane.dispatcher.hub import AssignmentHub
from controlplane.store import NotFound, keys, reads
from controlplane.store.etcd import Etcd
from tests.unit.reconcile_helpers import C, Cluster


def routed_world() -> tuple[Cluster, RouteServicer]:
    cl = Cluster()
    cl.informer.synced.set()  # as after the first listing
    cl.add_app("shop")
    cl.put_service("shop", "web", 2)
    svc = cl.service("shop", "web")
    svc.spec.routes.append(pb.Route(domain="shop.example", port=8080))
    cl.put(keys.service(C, "shop", "web"), svc)
    put_ready(cl, "web-1", 30001)
    hub = AssignmentHub(cl.informer, heartbeat_period_ms=1000)
    return cl, RouteServicer(cast(Etcd, cl.etcd), hub)


def put_ready(cl: Cluster, name: str, port: int) -> None:
    c = pb.Container(cluster=C, application="shop", service="web", node="n1",
                     desired_state=pb.DESIRED_STATE_RUNNING,
                     status=pb.ContainerStatus(state=pb.CONTAINER_STATE_RUNNING))
    c.meta.name = c.meta.id = name
    c.status.endpoints.append(pb.Endpoint(published=port, target=8080, protocol="tcp", address="127.0.0.1"))
    cl.put(keys.container(C, "shop", "web", name), c)


def backends(table: pb.RoutingTable) -> list[str]:
    [entry] = table.routes
    return [b.container for b in entry.backends]


async def test_the_list_waits_for_the_lagging_cache_and_shows_the_change() -> None:
    cl, routes = routed_world()
    req = api_pb2.ListRoutesRequest(cluster=C)
    context = cast(Any, None)
    assert backends(await routes.ListRoutes(req, context)) == ["web-1"]

    cl.etcd.hold = True
    put_ready(cl, "web-2", 30002)  # committed in etcd; the cache has not seen it
    listing = asyncio.create_task(routes.ListRoutes(req, context))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not listing.done(), "answered from a cache older than etcd"

    cl.etcd.deliver()
    assert backends(await listing) == ["web-1", "web-2"]



class Aborted(Exception):
    pass


class AbortingContext:
    """What the servicer uses of a grpc.aio.ServicerContext on an error: ``abort``."""

    async def abort(self, code: grpc.StatusCode, message: str, *_: Any) -> None:
        raise Aborted(code, message)


async def test_the_list_refuses_a_missing_or_damaged_cluster_record_naming_it() -> None:
    """The cluster record is read through :func:`reads.get_with_revision`, as every typed read
    (it was decoded by hand here): the same NotFound and Corrupt (DATA_LOSS) naming the cluster."""
    cl, routes = routed_world()
    context = cast(Any, AbortingContext())
    with pytest.raises(Aborted) as raised:
        await routes.ListRoutes(api_pb2.ListRoutesRequest(cluster="elsewhere"), context)
    assert raised.value.args == (grpc.StatusCode.NOT_FOUND, "cluster 'elsewhere' not found")
    cl.put_raw(keys.cluster(C), b"\xff not a cluster")
    with pytest.raises(Aborted) as raised:
        await routes.ListRoutes(api_pb2.ListRoutesRequest(cluster=C), context)
    code, message = raised.value.args
    assert code == grpc.StatusCode.DATA_LOSS and f"cluster '{C}'" in message and keys.cluster(C) in message


async def test_the_typed_read_with_revision_gives_the_record_and_etcd_revision_at_the_read() -> None:
    """Against FakeEtcd: the revision is the store's, even while the informer lags (``hold``)."""
    cl, _ = routed_world()
    etcd = cast(Etcd, cl.etcd)
    cl.etcd.hold = True
    written = cl.put(keys.cluster(C), pb.Cluster(meta=pb.Meta(name=C, id="again")))
    got, revision = await reads.get_with_revision(etcd, keys.cluster(C), pb.Cluster, "cluster", C)
    assert (got.meta.id, revision) == ("again", written)
    assert got == await reads.get(etcd, keys.cluster(C), pb.Cluster, "cluster", C)
    assert cl.informer.revision < revision
    with pytest.raises(NotFound, match="application 'none' not found"):
        await reads.get_with_revision(etcd, keys.app(C, "none"), pb.Application, "application", "none")
