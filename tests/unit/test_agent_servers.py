"""Agent failover among API replicas, the pure parts: the join token's server list (an old token
still parses) and the agent's server list (given, saved, learned; round-robin failover). The
failover itself against real servers: tests/integration/test_agent_failover.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ccs.join_token import JoinToken, JoinTokenError, parse, parse_servers
from ccs.v1 import agent_pb2
from nodeagent.servers import SERVERS_FILE, ServerList

FP = "ab" * 32
SECRET = "S" * 40 + "-_x"


def test_a_token_without_servers_parses_as_before_and_renders_the_same() -> None:
    text = f"CCSJOIN-2-{FP}-prod-{SECRET}"
    token = parse(text)
    assert token == JoinToken("prod", SECRET, FP)
    assert token.servers == ()
    assert token.render() == text


def test_a_token_carries_the_servers_after_an_at_sign() -> None:
    token = JoinToken("prod", SECRET, FP, servers=("a.example:7443", "10.0.0.2:7443", "[::1]:7443"))
    text = token.render()
    assert text == f"CCSJOIN-2-{FP}-prod-{SECRET}@a.example:7443,10.0.0.2:7443,[::1]:7443"
    assert parse(text) == token
    # The server compares only cluster and secret: the list never changes what a token admits.
    assert token.stored() == f"CCSJOIN-prod-{SECRET}"


@pytest.mark.parametrize(("tail", "why"), [
    ("", "'' is not host:port"),
    ("a:7443,,b:7443", "'' is not host:port"),
    ("a", "'a' is not host:port"),
    ("a:0", "'a:0' is not host:port"),
    ("a:99999", "'a:99999' is not host:port"),
    ("a b:7443", "is not host:port"),
])
def test_a_bad_server_list_is_refused_naming_the_entry(tail: str, why: str) -> None:
    with pytest.raises(JoinTokenError, match=why):
        parse(f"CCSJOIN-2-{FP}-prod-{SECRET}@{tail}")


def test_a_previous_format_token_carries_no_servers() -> None:
    with pytest.raises(JoinTokenError, match="previous format"):
        parse(f"CCSJOIN-prod-{SECRET}@a:7443")


def test_parse_servers_drops_duplicates_and_keeps_order() -> None:
    assert parse_servers(" b:1 ,a:2,b:1") == ("b:1", "a:2")


def replica(api: str, node: str = "") -> agent_pb2.Replica:
    return agent_pb2.Replica(api_address=api, node_address=node)


def test_failover_goes_round_robin_and_a_single_server_stays() -> None:
    servers = ServerList(["a:1", "b:1", "c:1"])
    assert servers.api() == "a:1"
    assert servers.failover("test") and servers.api() == "b:1"
    assert servers.failover("test") and servers.api() == "c:1"
    assert servers.failover("test") and servers.api() == "a:1"
    one = ServerList(["a:1"])
    assert not one.failover("test") and one.api() == "a:1"


def test_learning_adds_replicas_with_their_node_ports_and_drops_dead_learned_ones(tmp_path: Path) -> None:
    servers = ServerList(["a:1"], tmp_path)
    assert servers.learn([replica("a:1", "a:2"), replica("b:1", "b:2")])
    assert [(e.api, e.node) for e in servers.entries()] == [("a:1", "a:2"), ("b:1", "b:2")]
    assert servers.node_addresses() == ["a:2", "b:2"]
    servers.failover("test")
    assert servers.api() == "b:1"
    # a:1 was given by the operator: it stays even when no server names it; c:1 is new.
    assert servers.learn([replica("b:1", "b:2"), replica("c:1", "c:2")])
    assert [e.api for e in servers.entries()] == ["a:1", "b:1", "c:1"]
    assert servers.api() == "b:1"  # the current one stays current
    assert servers.learn([replica("c:1", "c:2")])
    assert [e.api for e in servers.entries()] == ["a:1", "c:1"]  # learned b:1 died
    assert servers.api() == "a:1"
    assert not servers.learn([])  # an older server names none: keep what we know
    assert not servers.learn([replica("c:1", "c:2")])  # nothing new: not saved again


def test_a_restarted_agent_knows_what_it_learned(tmp_path: Path) -> None:
    ServerList(["a:1"], tmp_path).learn([replica("a:1", "a:2"), replica("b:1", "b:2")])
    assert json.loads((tmp_path / SERVERS_FILE).read_text()) == [{"api": "a:1", "node": "a:2"},
                                                                 {"api": "b:1", "node": "b:2"}]
    again = ServerList(["a:1"], tmp_path)
    assert [(e.api, e.node) for e in again.entries()] == [("a:1", "a:2"), ("b:1", "b:2")]
    (tmp_path / SERVERS_FILE).write_text("not json")
    assert [e.api for e in ServerList(["a:1"], tmp_path).entries()] == ["a:1"]  # a hint: ignored


def test_no_server_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ServerList([])


def test_the_agent_takes_server_then_the_tokens_servers() -> None:
    from nodeagent.config import ConfigError
    from nodeagent.main import resolve_servers

    token = JoinToken("prod", SECRET, FP, servers=("b:7443", "c:7443")).render()
    assert resolve_servers("a:7443,b:7443", token) == ["a:7443", "b:7443", "c:7443"]
    assert resolve_servers(None, token) == ["b:7443", "c:7443"]
    assert resolve_servers("a:7443", f"CCSJOIN-2-{FP}-prod-{SECRET}") == ["a:7443"]
    with pytest.raises(ConfigError, match="--server: 'a' is not host:port"):
        resolve_servers("a", token)
