"""The executor's address index behind the node resolver's ``networks_of``: a removed container's
addresses leave it, and an address already taken over by a new container stays the new one's.
(Removal dropped an address only when its app equalled the app passed, which was "" on removal:
a removed container's addresses were answered for ever.)"""

from __future__ import annotations

from ccs.v1 import agent_pb2, resources_pb2
from nodeagent.assignments import AssignmentBook
from nodeagent.executor import Executor
from nodeagent.runtime import FakeRuntime

from .test_agent_helpers import CLUSTER


def executor() -> Executor:
    reports: list[agent_pb2.ContainerStatusUpdate] = []
    return Executor(FakeRuntime(), AssignmentBook(), reports.append, cluster=CLUSTER, node="n1", address="127.0.0.1")


def note(ex: Executor, cid: str, app: str, addresses: dict[str, str]) -> None:
    ex.addresses.note(cid, resources_pb2.Container(application=app), 0, addresses)


def test_a_removed_containers_addresses_are_no_longer_answered() -> None:
    ex = executor()
    note(ex, "a", "shop", {"default": "10.128.0.2", "back": "10.128.0.66"})
    assert ex.addresses.networks_of("10.128.0.2") == ("shop", ("back", "default"))
    ex._forget("a")
    assert ex.addresses.networks_of("10.128.0.2") is None and ex.addresses.networks_of("10.128.0.66") is None


def test_an_address_a_new_container_took_stays_the_new_ones() -> None:
    ex = executor()
    note(ex, "a", "shop", {"default": "10.128.0.2"})
    note(ex, "b", "blog", {"default": "10.128.0.2"})  # reused before a's removal is seen
    ex._forget("a")
    assert ex.addresses.networks_of("10.128.0.2") == ("blog", ("default",))
