"""`ccs exec` end to end (issue 14): the real ``ccs-server`` on a real etcd, one real
``ccs-agent`` process on the local Docker Engine, a busybox container, and the SDK and the CLI
as users run them. The session goes client -> server -> the agent's logs channel -> the
engine's exec API, and back.

Every wait has a reason to end that the test itself causes (a command that ends, a resize the
test sends before the newline the command waits for); the bounds only stop a hang.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import termios
from collections.abc import Iterator
from dataclasses import dataclass

import docker
import pytest

import ccs
from ccs.v1 import resources_pb2 as pb
from tests.conftest import ServerProc
from tests.integration.agent_process import agent_process, create_cluster, remove_from_engine
from tests.integration.polling import wait_for

from .cli_process import ROOT, cli_bytes, command, environment
from .docker_fixtures import TestImages, docker_client, test_image  # noqa: F401

pytestmark = [pytest.mark.etcd, pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(240)]

IDLE = """["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]"""
TEMPLATE = f"""\
services:
  box:
    image: local/busybox:1
    command: {IDLE}
"""
BOUND = 60.0  # against a hang only


@dataclass
class World:
    server: ServerProc
    cluster: str
    container: pb.Container

    def client(self, token: str | None = None) -> ccs.AsyncClient:
        return self.server.client(token)

    def args(self) -> tuple[str, str, str, str]:
        c = self.container
        return self.cluster, c.application, c.service, c.meta.name


@pytest.fixture(scope="module")
def world(ccs_server: ServerProc, test_image: TestImages, tmp_path_factory: pytest.TempPathFactory,  # noqa: F811
          ) -> Iterator[World]:
    cluster = f"exec-{os.getpid()}"
    token = create_cluster(ccs_server, cluster)
    base = tmp_path_factory.mktemp("exec-agent")
    sync = ccs.Client(ccs_server.address, ccs_server.token, ca_pem=ccs_server.ca_pem)
    try:
        with agent_process(ccs_server.address, token, f"{cluster}-n1", base / "state", base / "agent.log"):
            sync.applications.create(cluster, "app", TEMPLATE)

            def running() -> pb.Container | None:
                found = sync.containers.list(cluster, application="app")
                return next((c for c in found if c.status.state == pb.CONTAINER_STATE_RUNNING), None)

            container = wait_for("the container running", running, timeout=BOUND)
            assert container is not None
            yield World(ccs_server, cluster, container)
    finally:
        sync.close()
        remove_from_engine(cluster)


def processes(engine: docker.DockerClient, w: World) -> str:
    top = engine.api.top(w.container.status.docker_id, ps_args="-o pid,args")
    return "\n".join(" ".join(p) for p in top.get("Processes") or [])


# ---------------------------------------------------------------- SDK


async def test_output_exit_code_and_separate_streams(world: World) -> None:
    async with world.client() as cl:
        r = await cl.containers.exec_run(*world.args(), ["echo", "hello", "world"])
        assert (r.exit_code, r.stdout, r.stderr) == (0, b"hello world\n", b"")
        r = await cl.containers.exec_run(*world.args(), ["sh", "-c", "echo out; echo err >&2; exit 3"])
        assert (r.exit_code, r.stdout, r.stderr) == (3, b"out\n", b"err\n")


async def test_stdin_is_piped_through(world: World) -> None:
    data = b"".join(b"line %d\n" % i for i in range(20000))  # ~200 KiB: several pieces each way
    async with world.client() as cl:
        r = await cl.containers.exec_run(*world.args(), ["cat"], input=data)
        assert r.exit_code == 0 and r.stdout == data


async def test_a_missing_command_exits_127_and_says_so(world: World) -> None:
    async with world.client() as cl:
        r = await cl.containers.exec_run(*world.args(), ["no-such-program"])
        assert r.exit_code == 127
        assert r.message.startswith("command not found: ") and "no-such-program" in r.message


async def test_a_tty_session_sees_a_terminal_and_its_resize(world: World) -> None:
    async with world.client() as cl:
        s = await cl.containers.exec(*world.args(), ["sh", "-c", "tty; read x; stty size"],
                                     tty=True, stdin=True, rows=24, cols=80)
        async with s:
            # The agent applies input in order: the resize lands before the newline `read` waits for.
            await s.resize(40, 132)
            await s.write(b"\n")
            out = b"".join([p.stdout async for p in s])
        assert s.exit_code == 0
        text = out.decode()
        assert "/dev/pts/" in text and "40 132" in text


async def test_leaving_a_session_kills_its_command(world: World, docker_client: docker.DockerClient,  # noqa: F811
                                                   ) -> None:
    async with world.client() as cl:
        s = await cl.containers.exec(*world.args(), ["sleep", "4242"])
        async with s:
            wait_for("the exec's command running", lambda: "sleep 4242" in processes(docker_client, world),
                     timeout=BOUND)
    wait_for("the exec's command gone", lambda: "sleep 4242" not in processes(docker_client, world),
             timeout=BOUND)

    # Its audit record, STARTED at first, is rewritten once the server has ended the call.
    with ccs.Client(world.server.address, world.server.token, ca_pem=world.server.ca_pem) as sync:
        def settled() -> list[tuple[str, str]] | None:
            found = [(r.result, r.message) for r in sync.audit.list() if list(r.command) == ["sleep", "4242"]]
            return found if found and found[0][0] != "STARTED" else None

        assert wait_for("the exec's audit record settled", settled, timeout=BOUND) == [
            ("CANCELLED", "the caller went away before the end")]


async def test_concurrent_execs_on_a_node_are_bounded(world: World) -> None:
    from nodeagent.exec_sessions import MAX_EXECS

    async with world.client() as cl:
        sessions = []
        try:
            for _ in range(MAX_EXECS):
                s = await cl.containers.exec(*world.args(), ["sh", "-c", "echo up; exec sleep 4343"])
                sessions.append(s)
                async for piece in s:  # running before the next one starts
                    if b"up" in piece.stdout:
                        break
            with pytest.raises(ccs.FailedPrecondition, match=f"runs {MAX_EXECS} exec sessions already"):
                await cl.containers.exec_run(*world.args(), ["true"])
        finally:
            for s in sessions:
                await s.aclose()

        async def one_more() -> bool:
            try:
                return (await cl.containers.exec_run(*world.args(), ["true"])).exit_code == 0
            except ccs.FailedPrecondition:
                return False  # the agent has not seen the cancels yet

        deadline = asyncio.get_running_loop().time() + BOUND
        while not await one_more():
            assert asyncio.get_running_loop().time() < deadline, "slots never freed"
            await asyncio.sleep(0.2)


async def test_errors_are_named(world: World) -> None:
    cluster, app, svc, _ = world.args()
    async with world.client() as cl:
        with pytest.raises(ccs.NotFound, match="container 'box-9-nope' not found"):
            await cl.containers.exec_run(cluster, app, svc, "box-9-nope", ["true"])
        with pytest.raises(ccs.InvalidArgument, match=r"^command: must name a program"):
            await cl.containers.exec_run(*world.args(), [])


async def test_a_viewer_is_refused_and_every_exec_is_audited(world: World, unique: str) -> None:
    async with world.client() as admin:
        viewer = await admin.tokens.create(f"v-{unique}", role="viewer")
        deployer = await admin.tokens.create(f"d-{unique}", role="deployer", clusters=[world.cluster])
        async with world.client(viewer.secret) as cl:
            with pytest.raises(ccs.PermissionDenied, match="needs the 'exec' permission"):
                await cl.containers.exec_run(*world.args(), ["echo", "secret-output"])
        async with world.client(deployer.secret) as cl:
            done = await cl.containers.exec_run(*world.args(), ["sh", "-c", "exit 5"], input=b"secret-input")
            assert done.exit_code == 5
        records = [r for r in await admin.audit.list() if r.method == "ContainerService/Exec"]
    refused = [r for r in records if r.token_name == f"v-{unique}"]
    ran = [r for r in records if r.token_name == f"d-{unique}"]
    assert [(r.result, list(r.command), r.role) for r in refused] == [
        ("PERMISSION_DENIED", ["echo", "secret-output"], "viewer")]
    assert [(r.result, r.message, list(r.command)) for r in ran] == [("OK", "exit code 5", ["sh", "-c", "exit 5"])]
    assert ran[0].target == f"container {'/'.join(world.args())}"
    for rec in records:
        assert b"secret-input" not in rec.SerializeToString()


# ---------------------------------------------------------------- CLI


def cli(server: ServerProc, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return cli_bytes(server, *args, stdin=stdin, timeout=BOUND)


def test_cli_exec_output_exit_code_and_stdin(world: World) -> None:
    name = world.container.meta.name
    res = cli(world.server, "exec", "-c", world.cluster, name, "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (res.returncode, res.stdout, res.stderr) == (3, b"out\n", b"err\n")
    res = cli(world.server, "exec", "-c", world.cluster, "-i", name, "--", "cat", stdin=b"piped\n")
    assert (res.returncode, res.stdout) == (0, b"piped\n")
    res = cli(world.server, "exec", "-c", world.cluster, name, "--", "no-such-program")
    assert res.returncode == 127 and b"command not found" in res.stderr
    res = cli(world.server, "exec", "-c", world.cluster, "box-9-nope", "--", "true")
    assert res.returncode == 3 and res.stderr.startswith(b"error: container 'box-9-nope' not found")


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _read_until(fd: int, marker: bytes, seen: bytearray, proc: subprocess.Popen[bytes]) -> None:
    """Read the terminal until ``marker``; fail when the CLI ended without printing it (the
    test holds the terminal's other end, so its end is not an end of file here)."""
    while marker not in seen:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            seen += os.read(fd, 4096)
        elif proc.poll() is not None:
            raise AssertionError(f"ccs exec ended ({proc.returncode}) before {marker!r}; got {bytes(seen)!r}")


def test_cli_exec_tty_raw_mode_resize_and_restore(world: World) -> None:
    master, slave = pty.openpty()
    _set_size(slave, 24, 80)
    before = termios.tcgetattr(slave)
    # The command waits for a SIGWINCH (the resize the test makes below) and prints the size.
    # (Not the size it starts with: the engine applies a size after the start, as for docker.)
    script = "trap 'stty size; exit 7' WINCH; echo ready; while true; do sleep 0.1; done"
    proc = subprocess.Popen(
        command("--config", str(world.server.config_path), "exec", "-c", world.cluster,
                "-it", world.container.meta.name, "--", "sh", "-c", script),
        stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, start_new_session=True,
        env=environment(world.server.config_path.parent))
    seen = bytearray()
    try:
        _read_until(master, b"ready", seen, proc)
        assert termios.tcgetattr(slave)[3] & termios.ECHO == 0  # raw: the local terminal echoes nothing
        _set_size(slave, 40, 132)
        os.kill(proc.pid, signal.SIGWINCH)
        _read_until(master, b"40 132", seen, proc)
        assert proc.wait(BOUND) == 7
        assert termios.tcgetattr(slave) == before  # restored on exit
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        os.close(slave)


def test_a_stopped_container_is_named_not_running(world: World) -> None:
    """Last in this module: it stops the application."""
    cluster, app, svc, name = world.args()
    with ccs.Client(world.server.address, world.server.token, ca_pem=world.server.ca_pem) as sync:
        sync.applications.stop(cluster, app)

        def stopped() -> bool:
            c = sync.containers.get(cluster, app, svc, name)
            return c.status.state in (pb.CONTAINER_STATE_STOPPED, pb.CONTAINER_STATE_EXITED)

        wait_for("the container stopped", stopped, timeout=BOUND)
        with pytest.raises(ccs.FailedPrecondition, match=f"container '{name}' is not running \\(state "):
            sync.containers.exec_run(cluster, app, svc, name, ["true"])
    res = cli(world.server, "exec", "-c", world.cluster, name, "--", "true")
    assert res.returncode == 5 and b"is not running" in res.stderr
