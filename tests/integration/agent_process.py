"""One real ``ccs-agent`` process on this host's Docker Engine, for single-host integration tests.

The tests that need an agent as a user runs it (its own process, its CLI flags, its JSON log) and
not the 3-host testbed start it here: joined to a cluster of the session's (or the test's own)
``ccs-server``, logging to a file the test can read, stopped with SIGTERM as a service manager
would (killed if it does not stop), and the cluster's containers and networks removed from the
engine afterwards so the next test starts clean.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import docker

from ccs.v1 import api_pb2
from tests.conftest import ServerProc
from tests.integration.docker_fixtures import remove_cluster_objects
from tests.integration.grpc_helpers import Stubs, call

AGENT = str(Path(sys.executable).parent / "ccs-agent")
STOP_TIMEOUT = 30.0


def session_pod_cidr() -> str:
    """A cluster range no other cluster of this test session has: a /20 of 100.64.0.0/11 (shared
    address space), outside every default range (all sixteen /12s of 10.0.0.0/8, which a server
    that many tests share hands out in turn), the testbed's 10.77.0.0/24, Docker's pools and the
    100.100-100.103 ranges other tests name.

    Every test that runs agents on this host's one engine uses a server of its own, and each such
    server would give its first cluster the same default range: one network a test leaves behind
    (a crash mid-test, a clean-up the engine refused) would then make every later test's network
    fail with "Pool overlaps". Real hosts belong to one cluster; these tests share an engine, so
    each takes a range of its own, as clusters that share hosts would have to."""
    global _POD_CIDRS_GIVEN
    index = (_POD_CIDR_START + _POD_CIDRS_GIVEN) % 512
    _POD_CIDRS_GIVEN += 1
    return f"100.{64 + index // 16}.{(index % 16) * 16}.0/20"


#: Where this session starts in the 512 ranges, so that a network left by an earlier session
#: (a killed run) is unlikely to be in the way either.
_POD_CIDR_START = int.from_bytes(os.urandom(2), "big") % 512
_POD_CIDRS_GIVEN = 0


def create_cluster(server: ServerProc, cluster: str) -> str:
    """Create ``cluster`` on ``server`` with a range of its own (:func:`session_pod_cidr`); its join
    token."""
    async def create(s: Stubs) -> str:
        request = api_pb2.CreateClusterRequest(name=cluster, pod_cidr=session_pod_cidr())
        await s.clusters.CreateCluster(request, metadata=s.metadata)
        resp = await s.clusters.GetJoinToken(api_pb2.GetJoinTokenRequest(cluster=cluster), metadata=s.metadata)
        return str(resp.token)

    return call(server, create)


@contextlib.contextmanager
def agent_process(
    server: str, token: str, name: str, state_dir: Path, log: Path, *, router_port: int | None = None,
    address: str = "127.0.0.1", token_in_env: bool = False, metrics_port: int = 0, router_metrics_port: int = 0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``ccs-agent`` joined with ``token`` to the server at ``server`` (host:port), JSON logs
    appended to ``log``, with its HAProxy router on ``router_port`` (none without one), at node
    address ``address``; with ``token_in_env`` the token is in ``CCS_AGENT_JOIN_TOKEN``, not a flag.
    Its metrics on 127.0.0.1:``metrics_port`` (0: a free port, agents of one run must not share
    9465), HAProxy's exporter on ``router_metrics_port`` (0: none)."""
    router = ["--router-port", str(router_port)] if router_port is not None else ["--no-router"]
    router += ["--metrics-listen", f"127.0.0.1:{metrics_port}", "--router-metrics-port", str(router_metrics_port)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCS_")}  # options by flag only
    if token_in_env:
        env["CCS_AGENT_JOIN_TOKEN"] = token
    joining = [] if token_in_env else ["--join-token", token]
    with log.open("ab") as out:  # the child has its own copy of the descriptor
        proc = subprocess.Popen(
            [AGENT, "--server", server, *joining, "--name", name, "--state-dir", str(state_dir),
             "--address", address, *router, "--log-format", "json"],
            stdout=out, stderr=out, env=env)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def remove_from_engine(cluster: str) -> None:
    """Remove what the agents of ``cluster`` left in the local engine."""
    engine = docker.from_env()
    try:
        remove_cluster_objects(engine, cluster)
    finally:
        engine.close()
