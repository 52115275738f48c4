"""A real ``ccs-agent`` as a service manager runs it: its join token only in the environment
(``CCS_AGENT_JOIN_TOKEN``), so ``ps`` does not show it, and its router on every address, so the node
answers on loopback too (real etcd, ``ccs-server``, Docker Engine and HAProxy).

- Before: the agent read the token only from ``--join-token`` (a flag every local user sees in
  ``ps``/``/proc/PID/cmdline``); the node never joined without it.
- Before: the router bound only the node address, so ``127.0.0.1:PORT`` on the node itself was
  refused. The test gives the agent a node address that is not loopback (this host's), waits
  until the router answers there, and only then asks on 127.0.0.1: no race, the listeners are
  bound by the time the first answer comes.
"""

from __future__ import annotations

import http.client
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb
from nodeagent.config import detect_address
from tests.conftest import ServerProc, free_port
from tests.integration.agent_process import agent_process, create_cluster, remove_from_engine
from tests.integration.grpc_helpers import call
from tests.integration.polling import wait_for

pytestmark = [
    pytest.mark.etcd, pytest.mark.docker, pytest.mark.slow,
    pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed"),
]
WAIT = 60.0


@dataclass
class Agent:
    pid: int
    token: str
    address: str
    router_port: int
    log: Path


def answer(host: str, port: int) -> int:
    """The HTTP status the router at ``host:port`` answers for an unknown domain."""
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", "/", headers={"Host": "nothing.invalid"})
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.fixture
def agent(ccs_server: ServerProc, unique: str, tmp_path: Path) -> Iterator[Agent]:
    address = detect_address()
    if address.startswith("127."):
        pytest.skip("this host has no address but loopback")
    token = create_cluster(ccs_server, unique)
    log, port = tmp_path / "agent.log", free_port()
    try:
        with agent_process(ccs_server.address, token, f"{unique}-n1", tmp_path / "agent", log,
                           router_port=port, address=address, token_in_env=True) as proc:
            wait_for("the node READY", lambda: call(ccs_server, lambda s: s.nodes.GetNode(
                api_pb2.GetNodeRequest(cluster=unique, name=f"{unique}-n1"), metadata=s.metadata,
                timeout=10)).status.state == pb.NODE_STATE_READY, WAIT)
            yield Agent(proc.pid, token, address, port, log)
    finally:
        remove_from_engine(unique)


def test_an_agent_joins_with_its_token_only_in_the_environment_and_ps_does_not_show_it(agent: Agent) -> None:
    cmdline = Path(f"/proc/{agent.pid}/cmdline").read_bytes()
    assert b"ccs-agent" in cmdline and b"--server" in cmdline  # it is the agent's
    assert agent.token.encode() not in cmdline and b"--join-token" not in cmdline
    assert agent.token.encode() in Path(f"/proc/{agent.pid}/environ").read_bytes()
    text = agent.log.read_text()
    assert agent.token not in text  # nor in its log, which names where the option came from
    assert '"join-token": "env CCS_AGENT_JOIN_TOKEN"' in text


def test_the_router_listens_on_every_address_and_answers_on_loopback(agent: Agent) -> None:
    status = wait_for(f"the router answering on the node address {agent.address}",
                      lambda: answer(agent.address, agent.router_port), WAIT)
    assert status in (404, 503)  # HAProxy itself: no route for that domain
    assert answer("127.0.0.1", agent.router_port) == status
