"""The embedded etcd lives and dies with its server; an etcd outage is named as such (issue 9, item 3).

Real ccs-server processes, real etcd; the CLI runs as a user runs it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ccs.v1 import api_pb2
from tests.conftest import ServerProc, free_port, start_etcd, start_server
from tests.integration.cli_process import cli
from tests.integration.grpc_helpers import stubs
from tests.integration.test_server import create_and_list, etcd_children

pytestmark = [pytest.mark.etcd, pytest.mark.slow]


def wait_until(what: str, probe: object, timeout: float = 30.0) -> None:
    """Poll ``probe()`` until truthy (a bounded wait for a condition, not a timing assertion)."""
    assert callable(probe)
    end = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


def log_events(srv: ServerProc) -> list[dict[str, object]]:
    out = []
    for line in srv.log_path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


async def test_sigkill_of_the_server_takes_its_embedded_etcd_along(tmp_path: Path) -> None:
    state, config = tmp_path / "state", tmp_path / "config.yaml"
    flags = ["--embedded-etcd-port", str(free_port())]
    srv = start_server(state, None, config, extra=flags)
    try:
        assert await create_and_list(srv.address, srv.token, "kept") == ["kept"]
        etcd = etcd_children(state)
        assert etcd, "embedded etcd is not running"
    finally:
        srv.stop(signal.SIGKILL)
    # The kernel kills the etcd with its parent: no orphan (parent 1) is left behind.
    try:
        wait_until("the embedded etcd to die with its server", lambda: not etcd_children(state))
    finally:
        for pid in etcd_children(state):  # an orphan must not outlive the failed test
            os.kill(pid, signal.SIGKILL)

    # A new server on the same state starts its own etcd at once and has the data.
    srv2 = start_server(state, None, config, extra=flags)
    try:
        s = stubs(srv2.address, srv.token)
        got = await s.clusters.GetCluster(api_pb2.GetClusterRequest(name="kept"), metadata=s.metadata)
        await s.channel.close()
        assert got.meta.name == "kept"
        events = [e["event"] for e in log_events(srv2)]
        assert "embedded etcd exited; restarting" not in events, events
        assert "stopping an orphaned embedded etcd left by an earlier server" not in events, events
    finally:
        assert srv2.stop() == 0
    assert not etcd_children(state)


async def test_an_orphaned_etcd_on_the_data_dir_is_stopped_with_a_log_line(tmp_path: Path) -> None:
    """An etcd left on the server's data dir (by a server killed before this rule) is not used
    silently: the new server stops it, says so, and starts its own."""
    state, config = tmp_path / "state", tmp_path / "config.yaml"
    port = free_port()
    flags = ["--embedded-etcd-port", str(port)]
    srv = start_server(state, None, config, extra=flags)
    assert await create_and_list(srv.address, srv.token, "before") == ["before"]
    assert srv.stop() == 0
    # The orphan: the same etcd command line, on the same data dir and ports, not a server's child.
    url, peer = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 10}"
    orphan = subprocess.Popen(
        ["etcd", "--name", "ccs-embedded", "--data-dir", str(state / "etcd"),
         "--listen-client-urls", url, "--advertise-client-urls", url, "--listen-peer-urls", peer,
         "--initial-advertise-peer-urls", peer, "--initial-cluster", f"ccs-embedded={peer}",
         "--log-level", "error"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until("the orphan to serve", lambda: etcd_children(state) == [orphan.pid])
        srv2 = start_server(state, None, config, extra=flags)
        try:
            assert orphan.wait(15) is not None  # stopped by the new server
            stopped = [e for e in log_events(srv2)
                       if e["event"] == "stopping an orphaned embedded etcd left by an earlier server"]
            assert [e["pid"] for e in stopped] == [orphan.pid]
            assert "before" in await create_and_list(srv2.address, srv.token, "after")
            assert etcd_children(state) and orphan.pid not in etcd_children(state)
            events = [e["event"] for e in log_events(srv2)]
            assert "embedded etcd exited; restarting" not in events, events
        finally:
            assert srv2.stop() == 0
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()


def test_while_etcd_is_down_the_error_says_so(tmp_path: Path) -> None:
    own = start_etcd(tmp_path, "outage-etcd")
    srv = start_server(tmp_path / "state", own.url, tmp_path / "c.yaml")
    try:
        ok = cli(srv, "cluster", "create", "up")
        assert ok.returncode == 0, ok.stderr
        own.stop()
        for args in (("cluster", "ls"), ("cluster", "create", "down")):
            res = cli(srv, *args)
            assert res.returncode == 7, (args, res.returncode, res.stderr)
            assert "etcd is unavailable" in res.stderr, (args, res.stderr)
            assert "cannot reach" not in res.stderr, (args, res.stderr)
    finally:
        srv.stop()
        own.stop()
