"""The ``cluster3`` fixture: etcd + ccs-server + a 3-host testbed with one agent per host.

Why session scope: bringing the whole thing up (etcd, server, 3 dockerds, image loads, 3 agent
registrations) is the expensive part of every e2e test, and the tests are written to share it
(own application names and ports; a broken host or node is repaired before a test returns).

Why a subprocess for the CLI: the CLI is tested as a user runs it, with ``CCS_CONFIG`` pointing at
the client config the server wrote on first start. The SDK is used for polling, because waiting on
API state is cheaper and gives typed objects for the failure message.

On a failed test the tails of the server and agent logs are attached to the report (see
``pytest_runtest_makereport``); at teardown all logs are copied to the session's temp directory
before ``testbed down`` deletes the hosts' state.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:  # `tests` is not an installed package
    sys.path.insert(0, str(REPO))

import tests.testbed as tb  # noqa: E402
from ccs.client import AsyncClient  # noqa: E402
from ccs.v1 import resources_pb2 as pb  # noqa: E402
from nodeagent.runtime import naming  # noqa: E402
from tests.conftest import (  # noqa: E402
    TRUST,
    EtcdProc,
    ServerProc,
    free_port,
    node_port_for,
    start_etcd,
    wait_port,
    wait_serving,
)
from tests.integration.polling import wait_for  # noqa: E402

T = TypeVar("T")

VENV_BIN = Path(sys.executable).parent
CCS = str(VENV_BIN / "ccs")
AGENT = str(VENV_BIN / "ccs-agent")
TESTBED_STATE = Path("/var/lib/ccs-testbed")
BRIDGE_IP = "10.77.0.1"
CLUSTER = "e2e"
IMAGES = ("local/busybox:1", "local/webapp:v1", "local/netcheck:1")
SERVER_FLAGS = ("--heartbeat-period", "1", "--down-grace", "5", "--leader-ttl", "3",
                "--shutdown-grace", "2")
LIVE = (pb.CONTAINER_STATE_RUNNING, pb.CONTAINER_STATE_HEALTHY)

_ACTIVE: list[Cluster3] = []  # the running cluster, for the failure-report hook


@dataclass
class Cluster3:
    """Handles and helpers for the shared 3-host cluster. Hosts are host1..host3."""

    bed: tb.Testbed
    etcd: EtcdProc
    server: ServerProc
    port: int
    workdir: Path
    join_token: str = ""
    name: str = CLUSTER

    # ------------------------------------------------------------ processes

    def start_server(self) -> None:
        """Start (or restart) ccs-server on 0.0.0.0:port over the same etcd and state dir: TLS,
        its node port (mutual TLS) on a port of its own kept across restarts, its certificate
        naming the bridge address the agents reach it at."""
        state = self.workdir / "server"
        state.mkdir(parents=True, exist_ok=True)
        log_path = state / "server.log"
        offset = log_path.stat().st_size if log_path.exists() else 0
        log = open(log_path, "ab")  # noqa: SIM115 - owned by the child
        node_port = node_port_for(state)
        argv = [sys.executable, "-m", "controlplane.main", "--listen", f"0.0.0.0:{self.port}",
                "--node-listen", f"0.0.0.0:{node_port}", "--http-listen", "0.0.0.0:0", "--advertise", BRIDGE_IP,
                "--state-dir", str(state), "--client-config", str(self.config_path),
                "--etcd", self.etcd.url, "--log-format", "json", "--metrics-listen", "127.0.0.1:0",
                *SERVER_FLAGS]
        proc = subprocess.Popen(argv, stdout=log, stderr=log, cwd=REPO)
        log.close()
        wait_port(self.port, timeout=60, proc=proc)
        wait_serving(log_path, offset, proc)
        token_file = state / "admin.token"
        deadline = time.monotonic() + 30
        while not token_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        address = f"127.0.0.1:{self.port}"
        ca_pem = (state / "ca.crt").read_text()
        TRUST[address] = ca_pem
        self.server = ServerProc(address, token_file.read_text().strip(), self.config_path, state, proc,
                                 state / "server.log", self.etcd.url, ca_pem, node_port)

    @property
    def config_path(self) -> Path:
        return self.workdir / "client-config.yaml"

    def agent_state_dir(self, host: str) -> Path:
        return TESTBED_STATE / "hosts" / host / "agent"

    def start_agent(self, host: str) -> None:
        self.bed.agent_start(host, [
            AGENT, "--server", f"{BRIDGE_IP}:{self.port}", "--join-token", self.join_token,
            "--name", host, "--state-dir", str(self.agent_state_dir(host)), "--log-format", "json",
        ])

    def host(self, i: int) -> tb.Host:
        return self.bed.host(i)

    @property
    def host_names(self) -> list[str]:
        return ["host1", "host2", "host3"]

    # ------------------------------------------------------------ CLI and SDK

    def ccs(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run the ``ccs`` CLI as a user would; ``check`` fails the test with its output."""
        env = {"PATH": "/usr/bin:/bin", "HOME": str(self.workdir), "CCS_CONFIG": str(self.config_path)}
        res = subprocess.run([CCS, *args], capture_output=True, text=True, env=env, cwd=self.workdir,
                             timeout=timeout, check=False)
        if check and res.returncode != 0:
            pytest.fail(f"ccs {' '.join(args)} -> {res.returncode}\nstdout: {res.stdout}\nstderr: {res.stderr}")
        return res

    def ccs_json(self, *args: str) -> Any:
        return json.loads(self.ccs(*args, "-o", "json").stdout)

    def api(self, fn: Callable[[AsyncClient], Awaitable[T]]) -> T:
        """Run one SDK call on a fresh connection (tests are synchronous)."""

        async def main() -> T:
            async with self.server.client(timeout=10) as cl:
                return await fn(cl)

        return asyncio.run(main())

    def containers(self, app: str, service: str = "") -> list[pb.Container]:
        return list(self.api(lambda cl: cl.containers.list(self.name, application=app, service=service)))

    def live(self, app: str, service: str) -> list[pb.Container]:
        """Containers meant to run (desired RUNNING) that the agents report running/healthy."""
        return [c for c in self.containers(app, service)
                if c.desired_state == pb.DESIRED_STATE_RUNNING and c.status.state in LIVE]

    def nodes(self) -> dict[str, pb.Node]:
        return {n.meta.name: n for n in self.api(lambda cl: cl.nodes.list(self.name))}

    def deploy(self, app: str, compose: str, *extra: str) -> None:
        d = self.workdir / "apps" / app
        d.mkdir(parents=True, exist_ok=True)
        (d / "compose.yaml").write_text(compose)
        self.ccs("app", "deploy", "-c", self.name, "--name", app, "-f", str(d / "compose.yaml"), *extra)

    def compose_file(self, app: str, compose: str) -> Path:
        d = self.workdir / "apps" / app
        d.mkdir(parents=True, exist_ok=True)
        (d / "compose.yaml").write_text(compose)
        return d / "compose.yaml"

    # ------------------------------------------------------------ Docker on the hosts

    def docker_containers(self, host: str, app: str, service: str = "",
                          running_only: bool = True) -> list[dict[str, Any]]:
        """``docker inspect`` of the ccs containers of ``app`` on ``host`` (straight from its dockerd)."""
        h = self.bed.host(int(host.removeprefix("host")))
        filters = ["--filter", f"label=ccs.app={app}", "--filter", f"label=ccs.cluster={self.name}"]
        if service:
            filters += ["--filter", f"label=ccs.service={service}"]
        ps = h.docker("ps", *([] if running_only else ["-a"]), "-q", "--no-trunc", *filters)
        ids = ps.stdout.split()
        if not ids:
            return []
        return list(json.loads(h.docker("inspect", *ids).stdout))

    def wait_networks_settled(self, host: str, app: str) -> None:
        """Wait until ``host`` has no ccs network but ``app``'s: the agent has finished removing
        the networks of apps that earlier tests deleted.

        Why before a crash: Docker 20.10.24 (Debian 12's docker.io) killed in the middle of a
        ``network rm`` leaves the network half deleted in its store, and every later start
        panics in ``libnetwork.(*controller).reservePools`` (moby#45057, fixed by moby#45310 in
        v23/v24, never released for 20.10). A test about ccs must not crash the host in that
        window; the testbed repairs such a host anyway (``tb_docker.start_and_wait_dockerd``).
        """
        h = self.bed.host(int(host.removeprefix("host")))
        mine = naming.network_name(self.name, app)

        def settled() -> bool:
            names = h.docker("network", "ls", "--filter", "name=ccs-", "--format", "{{.Name}}").stdout.split()
            assert set(names) <= {mine}, f"other apps' networks still on {host}: {sorted(set(names) - {mine})}"
            return True

        self.wait_for(f"{host} to remove the networks of earlier tests' apps", settled, timeout=60)

    def docker_by_host(self, app: str, service: str = "") -> dict[str, list[dict[str, Any]]]:
        return {h: self.docker_containers(h, app, service) for h in self.host_names}

    # ------------------------------------------------------------ waiting and logs

    def wait_for(self, what: str, probe: Callable[[], T], timeout: float = 60.0,
                 interval: float = 0.5) -> T:
        """Poll ``probe`` until it returns something truthy (see :func:`tests.integration.polling.wait_for`)."""
        return wait_for(what, probe, timeout, interval)

    def wait_nodes_ready(self, timeout: float = 60.0) -> None:
        def ready() -> bool:
            nodes = self.nodes()
            ok = sorted(nodes) == self.host_names and all(
                x.status.state == pb.NODE_STATE_READY
                and x.spec.availability == pb.NODE_AVAILABILITY_ACTIVE for x in nodes.values())
            # The states go into the failure message (wait_for keeps the last error).
            assert ok, {n: pb.NodeState.Name(x.status.state) + "/" + pb.NodeAvailability.Name(
                x.spec.availability) for n, x in nodes.items()}
            return True

        self.wait_for("3 nodes READY and ACTIVE", ready, timeout)

    def restore_hosts(self) -> list[str]:
        """Undo what a test left broken on the testbed: a dark dockerd, a stopped agent, a cut
        link. Returns what had to be done, so a test that leaves a host broken is reported by
        name instead of every later test failing in its setup."""
        done: list[str] = []
        booted: set[str] = set()
        for entry in self.bed.status()["hosts"]:
            name = entry["name"]
            if entry["partitioned"]:
                self.bed.run("heal", name)
                done.append(f"{name}: link healed")
            if entry["dockerd"] != "up":
                self.bed.run("start", name)  # also brings back the agent it had, if any
                done.append(f"{name}: dockerd started")
                booted.add(name)
            elif entry["agent"] != "up":
                self.start_agent(name)
                done.append(f"{name}: agent started")
        if booted:  # a host whose agent had been stopped before the crash boots without one
            for entry in self.bed.status()["hosts"]:
                if entry["name"] in booted and entry["agent"] != "up":
                    self.start_agent(entry["name"])
                    done.append(f"{entry['name']}: agent started")
        return done

    def log_paths(self) -> dict[str, Path]:
        paths = {"server": self.workdir / "server" / "server.log"}
        for h in self.host_names:
            paths[f"agent {h}"] = TESTBED_STATE / "hosts" / h / "agent.log"
            paths[f"dockerd {h}"] = TESTBED_STATE / "hosts" / h / "dockerd.log"
        return paths

    def log_tails(self, lines: int = 40) -> dict[str, str]:
        out = {}
        for name, path in self.log_paths().items():
            if path.exists():
                keep = lines // 4 if name.startswith("dockerd") else lines  # chatty, rarely the cause
                out[name] = "\n".join(path.read_text(errors="replace").splitlines()[-keep:])
        return out

    def save_logs(self) -> None:
        """Copy every log out of the testbed before ``down`` removes it, HAProxy's too (the
        routers' stderr: what a reload that does not confirm left behind)."""
        dest = self.workdir / "logs"
        dest.mkdir(exist_ok=True)
        paths = dict(self.log_paths())
        for h in self.host_names:
            paths[f"haproxy {h}"] = self.agent_state_dir(h) / "router" / "haproxy.log"
        for name, path in paths.items():
            if path.exists():
                shutil.copy(path, dest / (name.replace(" ", "-") + ".log"))


@pytest.fixture(scope="package")  # torn down before other packages need the testbed
def cluster3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster3]:
    """etcd, ccs-server (0.0.0.0:<free port>, fast heartbeats), 3 hosts, cluster ``e2e``, 3 agents."""
    reason = tb.missing_requirements()
    if reason:
        pytest.skip(reason)
    tb.ensure_test_images()
    workdir = tmp_path_factory.mktemp("e2e")
    bed = tb.Testbed()
    bed.start(3)
    etcd: EtcdProc | None = None
    c: Cluster3 | None = None
    try:
        for image in IMAGES:
            bed.load_image(image)
        etcd = start_etcd(workdir)
        c = Cluster3(bed, etcd, None, free_port(), workdir)  # type: ignore[arg-type]
        c.start_server()
        c.ccs("cluster", "create", CLUSTER)
        c.join_token = c.ccs("cluster", "join-token", CLUSTER).stdout.strip()
        for h in c.host_names:
            c.start_agent(h)
        c.wait_nodes_ready()
        _ACTIVE.append(c)
        yield c
    finally:
        _ACTIVE.clear()
        if c is not None:
            for h in c.host_names:
                subprocess.run([sys.executable, str(tb.SCRIPT), "agent-stop", h], capture_output=True,
                               check=False)
            c.save_logs()
            if c.server is not None:
                c.server.stop(signal.SIGTERM)
        bed.stop()
        if etcd is not None:
            etcd.stop()


@pytest.fixture(autouse=True)
def _nodes_ready(cluster3: Cluster3) -> None:
    """Every test starts from 3 READY, ACTIVE nodes. A previous test may have left a host down
    (it failed between a kill and its restart): that host is restarted here, with a warning
    naming what was done, so one failure does not turn into an error in every later test."""
    done = cluster3.restore_hosts()
    if done:
        warnings.warn(f"the testbed needed repair before this test: {'; '.join(done)}", stacklevel=1)
    cluster3.wait_nodes_ready()


@pytest.fixture
def app_name(cluster3: Cluster3) -> Iterator[str]:
    """A unique application name; the app is removed after the test (whatever happened)."""
    name = f"a{uuid.uuid4().hex[:8]}"
    yield name
    cluster3.ccs("app", "rm", "-c", cluster3.name, name, check=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach server and agent log tails to the report of a failed e2e test."""
    outcome = yield
    rep = outcome.get_result()  # type: ignore[attr-defined]
    if rep.failed and _ACTIVE:
        for name, text in _ACTIVE[0].log_tails().items():
            rep.sections.append((f"{name} log (last lines)", text))


@pytest.fixture
def labelled(cluster3: Cluster3) -> Iterator[Cluster3]:
    """host1 -> nettest=a, host2 -> nettest=b, host3 -> nettest=c; removed afterwards."""
    c = cluster3
    for host, value in (("host1", "a"), ("host2", "b"), ("host3", "c")):
        c.ccs("node", "label", "-c", c.name, host, f"nettest={value}")
    yield c
    for host in c.host_names:
        c.ccs("node", "label", "-c", c.name, host, "nettest=", check=False)
