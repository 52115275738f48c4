"""The informer's container indexes, kept per change (issue 15: a pass must not rebuild them
over the cluster's containers)."""

from __future__ import annotations

from ccs.v1 import resources_pb2 as pb
from controlplane.store import keys
from tests.unit.reconcile_helpers import C, Cluster


def container(name: str, cid: str, node: str = "n1") -> pb.Container:
    c = pb.Container(cluster=C, application="shop", service="web", node=node)
    c.meta.name, c.meta.id = name, cid
    return c


def test_the_id_index_follows_puts_replacements_and_deletes() -> None:
    c = Cluster()
    c.put(keys.container(C, "shop", "web", "web-1"), container("web-1", "aaa"))
    c.put(keys.container(C, "shop", "web", "web-2"), container("web-2", "bbb"))
    assert c.state.by_id == {"aaa": ("shop", "web", "web-1"), "bbb": ("shop", "web", "web-2")}
    c.put(keys.container(C, "shop", "web", "web-1"), container("web-1", "aaa", node="n2"))  # an update
    assert c.state.by_id["aaa"] == ("shop", "web", "web-1")
    c.put(keys.container(C, "shop", "web", "web-1"), container("web-1", "ccc"))  # another container there
    assert c.state.by_id == {"ccc": ("shop", "web", "web-1"), "bbb": ("shop", "web", "web-2")}
    c.delete(keys.container(C, "shop", "web", "web-2"))
    assert c.state.by_id == {"ccc": ("shop", "web", "web-1")}
