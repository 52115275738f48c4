"""The hub sends network maps as deltas (issue 15): the networks that changed and the keys that
went away, chained on the version the agent holds; complete maps when a session opens and to
agents that do not list the feature; a queued, unsent map replaced by one computed against
what the agent held before it. Every agent's map, deltas applied (``MapBook``), equals the
hub's complete map."""

from __future__ import annotations

import asyncio

from ccs.features import NETWORK_MAP_DELTAS
from ccs.v1 import agent_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.dispatcher.hub import AssignmentHub, NodeSession
from controlplane.dispatcher.map_sender import RECENT_MAPS
from controlplane.store import keys
from nodeagent.network.map_book import MapBook
from tests.unit.reconcile_helpers import C, Cluster
from tests.unit.test_dispatcher_hub import drain, opened, put_web, web
from tests.unit.test_planner_helpers import node


def world(*, deltas: bool = True, map_delay: float = 0.0) -> tuple[Cluster, AssignmentHub]:
    """n1 and n2 with a block of "shop" (web, one container on each) and of "other" (api)."""
    cl = Cluster()
    hub = AssignmentHub(cl.informer, heartbeat_period_ms=1000, map_delay=map_delay)
    for i, name in enumerate(("n1", "n2"), 1):
        n = node(name)
        n.status.address = f"192.0.2.{i}"
        if deltas:
            n.status.agent_features.append(NETWORK_MAP_DELTAS)
        cl.put(keys.node(C, name), n)
    cl.add_app("shop", web=2)
    cl.add_app("other", api=1)
    for i, name in enumerate(("n1", "n2")):
        for j, app in enumerate(("shop", "other")):
            cl.put(keys.subnet(C, name, app, "default"), pb.SubnetAllocation(
                application=app, network="default", node=name, subnet=f"10.128.{j}.{16 * i}/28"))
        put_web(cl, f"web-{i + 1}", name, "")
    return cl, hub


class Agent:
    """What the agent does with the maps of its session."""

    def __init__(self, complete: agent_pb2.SessionMessage) -> None:
        self.book = MapBook()
        assert self.book.apply(complete.network_map) is not None

    def read(self, s: NodeSession) -> list[agent_pb2.NetworkMap]:
        """The map messages queued for the session, each applied (in order)."""
        out = [m.network_map for m in drain(s) if m.network_map.version]
        for m in out:
            self.book.apply(m)
        return out


def keys_of(networks: object) -> list[tuple[str, str]]:
    return [(n.application, n.network) for n in networks]  # type: ignore[attr-defined]


def test_a_change_sends_only_the_network_it_changed_chained_on_the_held_version() -> None:
    cl, hub = world()
    s1, complete = opened(hub, C, "n1")
    agent = Agent(complete)
    assert keys_of(complete.network_map.networks) == [("other", "default"), ("shop", "default")]
    assert complete.network_map.base_version == 0  # a session opens with the complete map
    put_web(cl, "web-2", "n2", "10.128.0.18")
    [m] = agent.read(s1)
    assert m.base_version == complete.network_map.version
    assert keys_of(m.networks) == [("shop", "default")] and list(m.removed) == []
    assert web(m) == ["10.128.0.18"]
    assert agent.book.complete() == hub.network_map(C, "n1")
    before = m.version
    put_web(cl, "web-1", "n1", "10.128.0.2")
    [m] = agent.read(s1)
    assert m.base_version == before and keys_of(m.networks) == [("shop", "default")]
    assert agent.book.complete() == hub.network_map(C, "n1")


def test_a_network_that_leaves_the_node_is_named_in_removed() -> None:
    cl, hub = world()
    s1, complete = opened(hub, C, "n1")
    agent = Agent(complete)
    cl.delete(keys.subnet(C, "n1", "other", "default"))
    [m] = agent.read(s1)
    assert list(m.networks) == [] and keys_of(m.removed) == [("other", "default")]
    assert [(n.application, n.network, len(n.blocks)) for n in m.removed] == [("other", "default", 0)]  # keys only
    assert agent.book.complete() == hub.network_map(C, "n1")
    assert keys_of(agent.book.complete().networks) == [("shop", "default")]


def test_an_agent_that_does_not_list_the_feature_gets_complete_maps() -> None:
    """An older agent would take a delta for its whole map and drop every network it omits."""
    cl, hub = world(deltas=False)
    s1, _ = opened(hub, C, "n1")
    put_web(cl, "web-2", "n2", "10.128.0.18")
    [msg] = drain(s1)
    assert msg.network_map.base_version == 0
    assert keys_of(msg.network_map.networks) == [("other", "default"), ("shop", "default")]
    assert msg.network_map == hub.network_map(C, "n1")
    n1 = node("n1")  # the agent was upgraded: its heartbeat lists the feature
    n1.status.address = "192.0.2.1"
    n1.status.agent_features.append(NETWORK_MAP_DELTAS)
    cl.put(keys.node(C, "n1"), n1)
    put_web(cl, "web-1", "n1", "10.128.0.2")
    [msg] = drain(s1)
    assert msg.network_map.base_version != 0 and keys_of(msg.network_map.networks) == [("shop", "default")]


async def test_a_queued_unsent_delta_is_replaced_by_one_from_what_the_agent_held_before_it() -> None:
    """Latest wins with deltas: the first flush queues a delta (shop changed); before it is
    sent, a second flush changes other. The one message left must bring the agent from the
    complete map to the latest (both networks), not from the first delta's result."""
    cl, hub = world(map_delay=0.01)
    s1, complete = opened(hub, C, "n1")
    agent = Agent(complete)

    async def flushed(done: object) -> None:
        for _ in range(1000):  # up to 10 s, however loaded the box
            await asyncio.sleep(0.01)
            if s1.open_map is not None and hub._flushing is None and hub._maps_pending is None and done():  # type: ignore[operator]
                return
        raise AssertionError("no map was flushed")

    put_web(cl, "web-2", "n2", "10.128.0.18")
    await flushed(lambda: True)
    assert s1.open_map is not None and keys_of(s1.open_map.network_map.networks) == [("shop", "default")]
    api = pb.Container(cluster=C, application="other", service="api", node="n2",
                       desired_state=pb.DESIRED_STATE_RUNNING,
                       status=pb.ContainerStatus(state=pb.CONTAINER_STATE_RUNNING, addresses={"default": "10.128.1.18"}))
    api.meta.name = api.meta.id = "api-1"
    cl.put(keys.container(C, "other", "api", "api-1"), api)
    await flushed(lambda: s1.open_map is not None and len(s1.open_map.network_map.networks) == 2)
    [m] = agent.read(s1)  # one message
    assert m.base_version == complete.network_map.version
    assert keys_of(m.networks) == [("other", "default"), ("shop", "default")]
    assert agent.book.complete() == hub.network_map(C, "n1")


async def test_a_change_undone_before_its_delta_was_sent_leaves_the_queued_message_without_a_map() -> None:
    cl, hub = world(map_delay=0.01)
    s1, complete = opened(hub, C, "n1")

    async def flushed() -> None:
        for _ in range(1000):  # up to 10 s, however loaded the box
            await asyncio.sleep(0.01)
            if hub._flushing is None and hub._maps_pending is None:
                return
        raise AssertionError("no map was flushed")

    put_web(cl, "web-2", "n2", "10.128.0.18")
    await flushed()
    assert s1.open_map is not None and s1.open_map.network_map.version != 0
    put_web(cl, "web-2", "n2", "")  # the address is gone again: the map is the one the agent holds
    await asyncio.sleep(0.05)
    await flushed()
    [msg] = drain(s1)
    assert not msg.HasField("network_map") and s1.netmap.version == complete.network_map.version


def test_a_session_that_names_the_map_it_holds_opens_with_what_changed_since() -> None:
    """A reconnecting agent names the version it held (``held_map_version``): the new session
    brings the networks that changed since (a delta on it), not the whole map."""
    cl, hub = world()
    s1, complete = opened(hub, C, "n1")
    agent = Agent(complete)
    held = agent.book.version
    hub.close(s1)
    put_web(cl, "web-2", "n2", "10.128.0.18")  # changes shop while the node is away
    s2, reopened = opened(hub, C, "n1", held)
    m = reopened.network_map
    assert reopened.type == agent_pb2.SessionMessage.TYPE_COMPLETE
    assert m.base_version == held and keys_of(m.networks) == [("shop", "default")]
    assert agent.book.apply(m) is not None
    assert agent.book.complete() == hub.network_map(C, "n1")
    assert s2.netmap.version == agent.book.version  # the chain goes on from there
    put_web(cl, "web-1", "n1", "10.128.0.2")
    [m] = agent.read(s2)
    assert m.base_version == reopened.network_map.version
    assert agent.book.complete() == hub.network_map(C, "n1")


def test_a_session_that_names_the_current_map_opens_without_one() -> None:
    _, hub = world()
    s1, complete = opened(hub, C, "n1")
    s2, reopened = opened(hub, C, "n1", complete.network_map.version)  # the old one not closed yet
    assert not reopened.HasField("network_map")
    assert len(reopened.assignments) == len(complete.assignments) and reopened.HasField("routing")
    hub.close(s1)
    hub.close(s2)
    s3, again = opened(hub, C, "n1", complete.network_map.version)
    assert not again.HasField("network_map") and s3.netmap.version == complete.network_map.version


def test_a_session_that_names_an_unknown_map_opens_with_the_complete_one() -> None:
    """A version this hub never queued to the node (another replica did, or it restarted), or
    one older than the last few it did, gets the complete map: the digests are not known."""
    cl, hub = world()
    s1, complete = opened(hub, C, "n1")
    agent = Agent(complete)
    first = agent.book.version
    for i in range(RECENT_MAPS):  # RECENT_MAPS newer versions queued: the first is forgotten
        put_web(cl, "web-2", "n2", f"10.128.0.{18 + i}")
        agent.read(s1)
    hub.close(s1)
    _, reopened = opened(hub, C, "n1", first)
    assert reopened.network_map.base_version == 0
    assert reopened.network_map == hub.network_map(C, "n1")
    _, other = opened(hub, C, "n2", agent.book.version)  # n1's version, named by n2
    assert other.network_map.base_version == 0


def test_a_removed_node_leaves_nothing_remembered() -> None:
    cl, hub = world()
    s1, _ = opened(hub, C, "n1")
    hub.close(s1)
    assert (C, "n1") in hub._closed_maps
    cl.delete(keys.node(C, "n1"))
    assert (C, "n1") not in hub._closed_maps


def test_sessions_given_the_same_map_share_one_encoding_of_it() -> None:
    """A map goes to many sessions (every hollow node holds the same one): it is encoded once
    and each queued message holds those bytes, not a copy of the map; what the agent gets is
    the header's fields and the map, whole."""
    cl, hub = world()
    s1, first = hub.open(C, "n1")
    s2, second = hub.open(C, "n1")
    assert first.map_field and first.map_field is second.map_field
    assert not first.header.HasField("network_map")  # the map travels as the shared bytes only
    got = agent_pb2.SessionMessage.FromString(first.encode())
    assert got.network_map == hub.network_map(C, "n1") and got.version == first.header.version
    assert list(got.assignments) == list(first.header.assignments)
    put_web(cl, "web-2", "n2", "10.128.0.18")
    [d1], [d2] = (list(filter(None, [s.next_nowait()])) for s in (s1, s2))
    assert d1 is not None and d2 is not None and d1.map_field is d2.map_field
    assert agent_pb2.SessionMessage.FromString(d1.encode()).network_map.base_version == first.network_map.version
