"""Per-host dockerd and agent lifecycle.

Design choices:
- dockerd is started with ``nsenter --net=...`` (not ``ip netns exec``, which remounts /sys and
  breaks dockerd's cgroup detection), in its own session so it outlives this script.
- Everything of a host lives under its state directory (data root, exec root, socket, logs),
  and it reads its own ``daemon.json``, so a shared /etc/docker/daemon.json cannot leak in.
- ``--cgroup-parent /ccstb-hostN`` groups the host's containers, which lets a crash (``kill``)
  find and SIGKILL them even though they live in namespaces of their own.
- The agent hook is generic (any argv): the testbed knows nothing about ccs-agent's flags. Its
  argv is remembered so that ``start`` after ``stop``/``kill`` brings it back like a boot does.
"""

from __future__ import annotations

import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import tb_procs
from tb_common import REGISTRY_ADDR, HostLayout, TestbedError, clean_env, log, read_json, run, write_json

DOCKERD_START_TIMEOUT = 90.0
DOCKERD_STOP_GRACE = 60.0
AGENT_STOP_GRACE = 15.0
NETWORK_STORE_PANIC = "libnetwork.(*controller).reservePools"


def ping(host: HostLayout, timeout: float = 2.0) -> bool:
    """True if the host's dockerd answers ``GET /_ping`` with 200 on its unix socket."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(host.docker_sock))
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = sock.recv(64)
    except OSError:
        return False
    return reply.startswith(b"HTTP/1.") and b" 200 " in reply


def dockerd_pid(host: HostLayout) -> int | None:
    return tb_procs.owned_pid(host.dockerd_pidfile, host, str(host.dir))


def start_dockerd(host: HostLayout) -> int | None:
    """Start the host's dockerd unless it already runs; return the new PID (None if it already
    ran). Does not wait (see wait_dockerd)."""
    if dockerd_pid(host) is not None:
        return None
    for sub in ("data", "exec", "docker-config"):
        (host.dir / sub).mkdir(parents=True, exist_ok=True)
    # After a crash the pidfiles name dead (or zombie, or recycled) PIDs; dockerd refuses to start
    # over a pidfile whose PID exists and would reuse a "running" containerd, so clear them.
    host.dockerd_pidfile.unlink(missing_ok=True)
    (host.dir / "exec" / "containerd" / "containerd.pid").unlink(missing_ok=True)
    config = host.dir / "daemon.json"
    if not config.exists():
        config.write_text("{}\n")
    argv = [
        "nsenter", f"--net={host.netns_path}", "dockerd",
        "--host", host.docker_host,
        "--data-root", str(host.dir / "data"),
        "--exec-root", str(host.dir / "exec"),
        "--pidfile", str(host.dockerd_pidfile),
        "--config-file", str(config),
        "--bip", host.bip,
        "--default-address-pool", host.address_pool,
        "--insecure-registry", REGISTRY_ADDR,
        "--cgroup-parent", host.cgroup_parent,
        "--storage-driver", "overlay2",
    ]
    with open(host.dir / "dockerd.log", "ab") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, env=clean_env(), close_fds=True,
        )
    return proc.pid  # nsenter execs dockerd: the same process


def wait_dockerd(host: HostLayout, timeout: float = DOCKERD_START_TIMEOUT, pid: int | None = None) -> None:
    """Wait for ``/_ping``; with the ``pid`` just started, fail at once if it exits. On a
    timeout, ask a live dockerd for its goroutine stacks (SIGUSR1 writes them to the exec
    root) so the error says where it hangs, not only that it does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ping(host):
            return
        if pid is not None and not tb_procs.is_alive(pid):
            tail = _tail(host.dir / "dockerd.log", 40)
            raise TestbedError(f"{host.name}: dockerd (pid {pid}) exited while starting; log tail:\n{tail}")
        time.sleep(0.2)
    stacks = dump_stacks(host)
    tail = _tail(host.dir / "dockerd.log")
    raise TestbedError(f"{host.name}: dockerd did not answer within {timeout:.0f}s "
                       f"(pid {dockerd_pid(host)}, goroutine stacks: {stacks or 'none'}); "
                       f"log tail:\n{tail}")


def dump_stacks(host: HostLayout) -> str:
    """SIGUSR1 the host's dockerd and return the path of the stack dump it wrote, or ''."""
    pid = dockerd_pid(host)
    if pid is None:
        return ""
    exec_root = host.dir / "exec"
    before = set(exec_root.glob("goroutine-stacks-*.log"))
    tb_procs.signal_all({pid}, signal.SIGUSR1)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        new = set(exec_root.glob("goroutine-stacks-*.log")) - before
        if new:
            return str(max(new))
        time.sleep(0.2)
    return ""


def start_and_wait_dockerd(host: HostLayout) -> None:
    """Start the host's dockerd and wait for it, repairing one known engine bug on the way.

    Docker 20.10.24 (Debian 12's docker.io) killed in the middle of a ``network rm`` leaves that
    network half deleted in ``network/files/local-kv.db``; every later start then panics in
    ``libnetwork.(*controller).reservePools`` (moby#45057; the fix, moby#45310, shipped in
    v23/v24 only). A CI run lost host3 for good that way after the killed-host test. What an
    operator does about it, the testbed does too: move the network store aside (kept as
    ``local-kv.db.broken-<time>``) and start again. The engine then starts without its user
    networks: containers that were on one fail to start, and the agent replaces them (creating a
    container creates its app network again).

    The store is not all the engine leaves: its user networks' bridges and the iptables rules
    naming them stay in the host's kernel, owned by no engine now (a real host would lose them
    only by rebooting). An orphan bridge keeps its subnet's connected route, and its
    ``-s SUBNET ! -o br-OLD -j MASQUERADE`` rule stays; once the control plane hands that block
    to another host, this host would route it to the dead bridge. So the repair also removes
    them (`remove_orphan_bridges`), as the operator who moves the store aside must.
    """
    log_path = host.dir / "dockerd.log"
    offset = log_path.stat().st_size if log_path.exists() else 0
    try:
        wait_dockerd(host, pid=start_dockerd(host))
    except TestbedError:
        if NETWORK_STORE_PANIC not in _read_from(log_path, offset):
            raise
        store = host.dir / "data" / "network" / "files" / "local-kv.db"
        kept = store.with_name(f"local-kv.db.broken-{int(time.time())}")
        log(f"{host.name}: dockerd did not answer: it panics on its network store (moby#45057); "
            f"moved {store} to {kept.name} and starting it again")
        store.rename(kept)
        removed = remove_orphan_bridges(host)
        if removed:
            log(f"{host.name}: removed the bridges the old store owned, and their iptables rules: "
                f"{', '.join(removed)}")
        wait_dockerd(host, pid=start_dockerd(host))


def remove_orphan_bridges(host: HostLayout) -> list[str]:
    """With the host's dockerd stopped and its network store gone: delete every Docker user
    bridge (``br-<id>``) in the host's namespace and every iptables rule that names one; the
    names removed. docker0 is the engine's own and is made again at start either way. The
    reading of the commands' output is :func:`user_bridges` and :func:`rules_naming` (pure)."""
    ns = str(host.netns_path)
    bridges = user_bridges(run(["ip", "-n", host.netns, "-o", "link", "show", "type", "bridge"]).stdout)
    if not bridges:
        return []
    for table in ("nat", "filter"):
        dump = run(["nsenter", f"--net={ns}", "--", "iptables-save", "-t", table]).stdout
        for rule in rules_naming(dump, bridges):
            run(["nsenter", f"--net={ns}", "--", "iptables", "-t", table, "-D", *rule], check=False)
    for name in bridges:
        run(["ip", "-n", host.netns, "link", "delete", name], check=False)
    return bridges


def user_bridges(links: str) -> list[str]:
    """The Docker user bridges (``br-<id>``) in ``ip -o link show type bridge`` output, sorted
    and once each: ``N: NAME: <FLAGS> ...`` (``NAME@PEER`` for a link with a peer)."""
    names = set()
    for line in links.splitlines():
        parts = line.split(":", 2)
        if len(parts) < 3:
            continue  # not a link line (a blank line, a warning)
        name = parts[1].strip().split("@")[0]
        if name.startswith("br-"):
            names.add(name)
    return sorted(names)


def rules_naming(dump: str, bridges: Sequence[str]) -> list[list[str]]:
    """The rules of an ``iptables-save -t TABLE`` dump that name one of ``bridges`` as a whole
    word (an interface match, ``-i``/``-o``, negated or not), each as the arguments after
    ``-A`` that ``iptables -D`` takes. A bridge name inside a quoted comment, or one that only
    begins with a bridge's name, is not matched."""
    wanted = set(bridges)
    out = []
    for line in dump.splitlines():
        if not line.startswith("-A "):
            continue  # table, chain and COMMIT lines, comments
        words = shlex.split(line)  # a comment may hold spaces in quotes
        if wanted.intersection(words):
            out.append(words[1:])
    return out


def stop_host(host: HostLayout) -> None:
    """Graceful power-off: agent first, then dockerd (which stops its containers), then stragglers."""
    stop_agent(host, forget=False)
    pid = dockerd_pid(host)
    if pid is not None:
        tb_procs.terminate({pid}, DOCKERD_STOP_GRACE)
    # containerd and docker-proxy exit with dockerd; anything still in the namespace is a bug
    # of the workload, and a real shutdown would kill it too.
    tb_procs.terminate(tb_procs.host_pids(host), 10)


def kill_host(host: HostLayout) -> None:
    """Crash: SIGKILL the agent, dockerd, containerd, shims and containers at once."""
    tb_procs.kill_host_processes(host)


def login(host: HostLayout, user: str, password: str) -> None:
    """``docker login`` through the host's own dockerd, storing the credentials per host."""
    env = clean_env(host.env())
    proc = subprocess.run(
        ["docker", "login", REGISTRY_ADDR, "--username", user, "--password-stdin"],
        input=password, capture_output=True, text=True, env=env, check=False,
    )
    if proc.returncode != 0:
        raise TestbedError(f"{host.name}: docker login {REGISTRY_ADDR} failed: {proc.stderr.strip()}")


def agent_pid(host: HostLayout) -> int | None:
    return tb_procs.owned_pid(host.agent_pidfile, host, "")


def start_agent(host: HostLayout, argv: Sequence[str]) -> int:
    """Run ``argv`` inside the host's namespace in the background; return its PID."""
    if not argv:
        raise TestbedError("agent-start: CMD is missing (usage: agent-start HOST -- CMD ARGS...)")
    if not host.netns_path.exists():
        raise TestbedError(f"{host.name}: no such host (run 'up' first)")
    running = agent_pid(host)
    if running is not None:
        raise TestbedError(f"{host.name}: an agent already runs (pid {running}); agent-stop first")
    write_json(host.agent_spec, {"argv": list(argv)})
    return _spawn_agent(host, list(argv))


def restart_agent_if_wanted(host: HostLayout) -> int | None:
    """After ``start``: bring back the agent the host had before it went down, if any."""
    argv = read_json(host.agent_spec).get("argv")
    if not argv or agent_pid(host) is not None:
        return None
    return _spawn_agent(host, [str(a) for a in argv])


def _spawn_agent(host: HostLayout, argv: list[str]) -> int:
    # nsenter without --fork execs the command after setns, so the PID is the agent's own.
    with open(host.dir / "agent.log", "ab") as out:
        proc = subprocess.Popen(
            ["nsenter", f"--net={host.netns_path}", "--", *argv],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, env=clean_env(host.env()), cwd=host.dir, close_fds=True,
        )
    host.agent_pidfile.write_text(f"{proc.pid}\n")
    return proc.pid


def stop_agent(host: HostLayout, *, forget: bool = True) -> None:
    """SIGTERM the agent (SIGKILL after a grace period); ``forget`` drops it from future boots."""
    pid = agent_pid(host)
    if pid is not None:
        tb_procs.terminate({pid}, AGENT_STOP_GRACE)
    host.agent_pidfile.unlink(missing_ok=True)
    if forget:
        host.agent_spec.unlink(missing_ok=True)


def _read_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def _tail(path: object, lines: int = 15) -> str:
    try:
        with open(str(path), errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
