"""The blocking ``ccs.Client`` is typed: mypy (strict, which checks this file) sees the async
core's signatures through the thin wrappers of ``ccs._sync``, not ``Any``.

The ``assert_type`` lines are the test: under the old ``__getattr__`` forwarding every one of
them was ``Any`` and mypy failed this file. At run time they only need a served fake.
"""

from __future__ import annotations

import inspect
import tomllib
from collections.abc import Generator
from pathlib import Path
from typing import assert_type

import pytest

import ccs
from ccs import _sync
from ccs._transport import Listing
from ccs.access import Audit, Tokens
from ccs.applications import Applications
from ccs.clusters import Clusters, Nodes
from ccs.events import Events
from ccs.releases import Releases, Routes
from ccs.testing import FakeApi, serve_in_thread
from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb
from ccs.wait import Progress
from ccs.workloads import Containers, Services

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = "services: {web: {image: 'web:1'}}\n"


def test_blocking_calls_have_the_async_signatures() -> None:
    with serve_in_thread(FakeApi(token=None)) as served, ccs.Client(served.address, tls=False) as c:
        cluster = c.clusters.create("s1", description="typed")
        assert_type(cluster, pb.Cluster)
        assert_type(c.clusters.list(), Listing[pb.Cluster])
        assert_type(c.clusters.join_token("s1"), str)
        app = c.applications.create("s1", "shop", TEMPLATE)
        assert_type(app, pb.Application)
        assert_type(c.applications.get("s1", "shop"), api_pb2.GetApplicationResponse)
        assert_type(c.applications.revisions("s1", "shop"), list[pb.ApplicationRevision])
        assert_type(c.services.list("s1", "shop"), Listing[pb.Service])
        assert_type(c.containers.list("s1"), Listing[pb.Container])
        assert_type(c.nodes.list("s1"), Listing[pb.Node])
        assert_type(c.events.current_revision("s1"), int)
        watch = c.events.watch("s1", kinds=["application"])
        assert_type(watch, Generator[api_pb2.WatchResponse, None, None])
        watch.close()
        assert_type(c.routes.list("s1"), pb.RoutingTable)
        assert cluster.description == "typed" and app.meta.name == "shop"


def test_wait_results_are_typed() -> None:
    # Not called: only the checker looks at these (a wait needs a deploy that progresses).
    def check(c: ccs.Client) -> None:
        assert_type(c.applications.wait("c", "a", timeout=1.0), Progress)
        assert_type(c.releases.wait("c", "a", timeout=1.0), pb.Release)
        c.clusters.get(name=3)  # type: ignore[arg-type]  # a wrong argument is a type error
        c.clusters.get("x", "y")  # type: ignore[call-arg]

    assert callable(check)


@pytest.mark.parametrize(
    ("sync", "async_"),
    [(_sync.SyncClusters, Clusters), (_sync.SyncNodes, Nodes), (_sync.SyncApplications, Applications),
     (_sync.SyncServices, Services), (_sync.SyncContainers, Containers), (_sync.SyncEvents, Events),
     (_sync.SyncReleases, Releases), (_sync.SyncRoutes, Routes), (_sync.SyncTokens, Tokens),
     (_sync.SyncAudit, Audit)],
)
def test_every_async_method_has_a_blocking_twin(sync: type, async_: type) -> None:
    public = {n for n, f in inspect.getmembers(async_, inspect.isfunction) if not n.startswith("_")}
    twins = {n for n in vars(sync) if not n.startswith("_")}
    assert public == twins


def test_the_package_ships_py_typed() -> None:
    assert (ROOT / "ccs" / "py.typed").is_file()
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "py.typed" in data["ccs"]


def test_wait_errors_are_exported_from_ccs() -> None:
    from ccs import errors

    assert (ccs.DeployFailed, ccs.WaitTimeout, ccs.ReleaseFailed, ccs.EtcdUnavailable, ccs.DataLoss) == (
        errors.DeployFailed, errors.WaitTimeout, errors.ReleaseFailed, errors.EtcdUnavailable, errors.DataLoss)
