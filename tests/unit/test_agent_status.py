"""What the agent reports for a container (nodeagent.status.build_status): its addresses."""

from __future__ import annotations

from ccs.v1 import resources_pb2 as pb
from nodeagent import status
from nodeagent.runtime.types import Observed, State


def _observed(state: int, addresses: dict[str, str]) -> Observed:
    return Observed(docker_id="d1", name="ccs-shop-web-1-c1", labels={}, image="i", state=state,
                    networks={"ccs-prod-shop": addresses.get("default", "")}, addresses=addresses)


def _container() -> pb.Container:
    return pb.Container(meta=pb.Meta(id="c1", name="web-1"), cluster="prod", application="shop",
                        service="web", node="n1")


def test_a_live_container_reports_its_addresses() -> None:
    o = _observed(State.CONTAINER_STATE_RUNNING, {"default": "10.128.0.18"})
    st = status.build_status(_container(), o, node="n1", address="192.0.2.1", now=1.0)
    assert dict(st.addresses) == {"default": "10.128.0.18"}


def test_a_container_the_agent_stopped_reports_none() -> None:
    """STOPPED overrides what the engine said: a stopped container is on no network, whatever
    a stale inspect still held."""
    o = _observed(State.CONTAINER_STATE_RUNNING, {"default": "10.128.0.18"})
    st = status.build_status(_container(), o, state=State.CONTAINER_STATE_STOPPED, message="stopped",
                             node="n1", address="192.0.2.1", now=1.0)
    assert dict(st.addresses) == {}
    gone = status.build_status(_container(), None, state=State.CONTAINER_STATE_REMOVED, node="n1",
                               address="192.0.2.1", now=1.0)
    assert dict(gone.addresses) == {}


def test_a_changed_address_is_a_new_report() -> None:
    """The reporter drops reports equal to the last one sent; a new address is not equal."""
    c = _container()
    a = status.build_status(c, _observed(State.CONTAINER_STATE_RUNNING, {"default": "10.128.0.18"}),
                            node="n1", address="192.0.2.1", now=1.0)
    b = status.build_status(c, _observed(State.CONTAINER_STATE_RUNNING, {"default": "10.128.0.19"}),
                            node="n1", address="192.0.2.1", now=2.0)
    assert not status.same_report(a, b)
