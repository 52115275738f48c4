#!/usr/bin/env python3
"""ccs testbed: N simulated hosts on one machine (netns + veth + bridge + own dockerd each).

Usage (as root): ``testbed.py [--state-dir DIR] COMMAND ...``; run ``testbed.py -h`` for the
commands. ``status`` prints JSON on stdout; progress and errors go to stderr. Exit code 0 on
success, 1 on a reported error, 2 on bad usage.

Design choices: see the docstrings of tb_net (network), tb_procs (finding a host's processes),
tb_docker (dockerd and agent) and tb_registry (registry and images). This module only
orchestrates; every command is safe to repeat.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tb_docker
import tb_net
import tb_netstore
import tb_procs
import tb_registry
from tb_common import (
    BRIDGE,
    DEFAULT_STATE_DIR,
    GATEWAY_IP,
    MARKER,
    MAX_HOSTS,
    NAME_PREFIX,
    REGISTRY_ADDR,
    REGISTRY_LOOPBACK_ADDR,
    REGISTRY_USER,
    HostLayout,
    TestbedError,
    clean_env,
    log,
    parse_host,
    read_json,
    write_json,
)


def known_hosts(state_dir: Path) -> list[HostLayout]:
    count = int(read_json(state_dir / MARKER).get("hosts", 0))
    return [HostLayout(i, state_dir) for i in range(1, count + 1)]


def existing_host(state_dir: Path, name: str) -> HostLayout:
    host = parse_host(name, state_dir)
    if host.index > len(known_hosts(state_dir)):
        raise TestbedError(f"HOST: {host.name} is not part of the testbed in {state_dir}")
    return host


REQUIRED_TOOLS = {
    "ip": "iproute2", "iptables": "iptables", "nsenter": "util-linux", "dockerd": "docker.io",
    "docker": "docker.io", "docker-registry": "docker-registry", "htpasswd": "apache2-utils",
}


def require_tools() -> None:
    missing = {tool: pkg for tool, pkg in REQUIRED_TOOLS.items() if shutil.which(tool) is None}
    if missing:
        raise TestbedError(
            f"missing {', '.join(sorted(missing))}: "
            f"apt-get install -y {' '.join(sorted(set(missing.values())))}"
        )


def check_state_dir(state_dir: Path) -> None:
    """Refuse a non-empty directory we did not create: ``down`` unmounts and deletes it."""
    if state_dir.exists() and any(state_dir.iterdir()) and not (state_dir / MARKER).exists():
        raise TestbedError(
            f"--state-dir {state_dir}: not empty and has no {MARKER}; refusing to use it "
            "(down would unmount and delete everything below it)"
        )


def cmd_up(state_dir: Path, count: int) -> None:
    if not 1 <= count <= MAX_HOSTS:
        raise TestbedError(f"N: expected 1..{MAX_HOSTS} hosts, got {count}")
    check_state_dir(state_dir)
    require_tools()
    started = time.monotonic()
    state_dir.mkdir(parents=True, exist_ok=True)
    marker = read_json(state_dir / MARKER)
    count = max(count, int(marker.get("hosts", 0)))  # up never removes hosts
    write_json(state_dir / MARKER, {**marker, "hosts": count, "created_by": "ccs-testbed"})
    tb_net.ensure_bridge()
    tb_net.ensure_iptables()
    tb_registry.start_registry(state_dir)
    password = tb_registry.ensure_credentials(state_dir)
    hosts = known_hosts(state_dir)
    for host in hosts:
        tb_net.ensure_host_network(host)
        tb_docker.start_dockerd(host)  # all daemons boot in parallel
    for host in hosts:
        tb_docker.wait_dockerd(host)
        tb_docker.login(host, REGISTRY_USER, password)
        log(f"{host.name} up at {host.ip} ({host.docker_host})")
    log(f"up: {count} hosts ready in {time.monotonic() - started:.1f}s")


def cmd_down(state_dir: Path) -> None:
    check_state_dir(state_dir)
    started = time.monotonic()
    hosts = known_hosts(state_dir)
    # Namespaces of a lost state directory are found by name too.
    indexes = {h.index for h in hosts}
    for ns in tb_net.testbed_namespaces():
        suffix = ns.removeprefix(f"{NAME_PREFIX}host")
        if suffix.isdigit():
            indexes.add(int(suffix))
    for index in sorted(indexes):
        tb_docker.kill_host(HostLayout(index, state_dir))
    tb_registry.stop_registry(state_dir)
    if state_dir.exists():
        tb_procs.unmount_all(state_dir)
    tb_net.remove_network()
    tb_procs.remove_cgroups()
    if state_dir.exists():
        shutil.rmtree(state_dir)
    left = leftovers(state_dir)
    if left:
        raise TestbedError(f"down left things behind: {json.dumps(left)}")
    log(f"down: everything removed in {time.monotonic() - started:.1f}s")


def leftovers(state_dir: Path) -> dict[str, Any]:
    """Whatever of the testbed still exists; empty after a clean ``down``."""
    found: dict[str, Any] = {
        "namespaces": tb_net.testbed_namespaces(),
        "links": tb_net.testbed_links(),
        "iptables": tb_net.leftover_iptables(),
        "cgroups": tb_procs.leftover_cgroups(),
        "state_dir": [str(state_dir)] if state_dir.exists() else [],
        "processes": sorted(
            pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
            if str(state_dir) in tb_procs.cmdline(pid) and tb_procs.is_alive(pid)
            and pid != os.getpid()
        ),
    }
    return {k: v for k, v in found.items() if v}


def host_status(host: HostLayout) -> dict[str, Any]:
    dockerd = tb_docker.dockerd_pid(host)
    agent = tb_docker.agent_pid(host)
    return {
        "name": host.name,
        "ip": host.ip,
        "netns": host.netns,
        "netns_path": str(host.netns_path),
        "veth": host.veth,
        "docker_host": host.docker_host,
        "docker_config": str(host.docker_config),
        "state_dir": str(host.dir),
        "dockerd_pid": dockerd,
        "dockerd": "up" if dockerd is not None and tb_docker.ping(host) else "down",
        "agent_pid": agent,
        "agent": "up" if agent is not None else "down",
        "agent_log": str(host.dir / "agent.log"),
        "partitioned": tb_net.is_partitioned(host),
    }


def cmd_status(state_dir: Path) -> dict[str, Any]:
    hosts = known_hosts(state_dir)
    rdir = tb_registry.registry_dir(state_dir)
    password_file = rdir / "password"
    return {
        "state_dir": str(state_dir),
        "up": bool(hosts) and tb_net.link_exists(BRIDGE),
        "bridge": {"name": BRIDGE, "ip": GATEWAY_IP},
        "registry": {
            "address": REGISTRY_ADDR,
            "push_address": REGISTRY_LOOPBACK_ADDR,
            "username": REGISTRY_USER,
            "password": password_file.read_text().strip() if password_file.exists() else None,
            "pids": {f: tb_registry.registry_pid(state_dir, f) for f in tb_registry.FRONT_ENDS},
        },
        "hosts": [host_status(h) for h in hosts],
    }


def cmd_start(host: HostLayout) -> None:
    tb_docker.start_and_wait_dockerd(host)
    pid = tb_docker.restart_agent_if_wanted(host)
    log(f"{host.name} started" + (f" (agent pid {pid})" if pid else ""))


def cmd_half_delete_network(host: HostLayout, network: str) -> None:
    """Crash the host and leave NETWORK half deleted in its store (see tb_netstore): the state
    a dockerd killed inside ``docker network rm`` leaves, without racing for it."""
    proc = subprocess.run(["docker", "network", "inspect", "--format", "{{.Id}}", network],
                          capture_output=True, text=True, env=clean_env(host.env()), check=False)
    if proc.returncode != 0:
        raise TestbedError(f"{host.name}: network {network}: {proc.stderr.strip()}")
    tb_docker.kill_host(host)
    copies = tb_netstore.half_delete(host, proc.stdout.strip())
    log(f"{host.name} killed; network {network} left half deleted ({copies} record(s) edited)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="testbed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                        help=f"where everything lives (default {DEFAULT_STATE_DIR}, "
                             "or $CCS_TESTBED_STATE_DIR)")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the bridge, registry and N hosts (idempotent)")
    up.add_argument("count", type=int, metavar="N")
    sub.add_parser("down", help="remove everything; safe to repeat")
    sub.add_parser("status", help="JSON description of the testbed")
    for name, text in [("stop", "graceful agent + dockerd stop (data kept)"),
                       ("start", "start a stopped or killed host again"),
                       ("kill", "SIGKILL everything of the host (a crash)"),
                       ("partition", "cut the host off the bridge"),
                       ("heal", "reconnect a partitioned host"),
                       ("env", "print DOCKER_HOST=... lines for the host"),
                       ("agent-stop", "stop the host's agent")]:
        sub.add_parser(name, help=text).add_argument("host", metavar="HOST")
    agent = sub.add_parser("agent-start", help="run CMD in the host's namespace in the background")
    agent.add_argument("host", metavar="HOST")
    agent.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD ARGS")
    push = sub.add_parser("push-image", help=f"push a root-daemon image to {REGISTRY_ADDR}")
    push.add_argument("image", metavar="IMAGE")
    push.add_argument("--name", help="repository[:tag] in the registry (default: IMAGE's)")
    half = sub.add_parser("half-delete-network",
                          help="crash the host, leaving NETWORK as a kill inside `network rm` does (moby#45057)")
    half.add_argument("host", metavar="HOST")
    half.add_argument("network", metavar="NETWORK")
    load = sub.add_parser("load-image", help="docker save | docker load into every running host")
    load.add_argument("image", metavar="IMAGE")
    return parser


def dispatch(args: argparse.Namespace) -> None:
    state_dir: Path = args.state_dir.resolve()
    command: str = args.command
    if command == "up":
        cmd_up(state_dir, args.count)
    elif command == "down":
        cmd_down(state_dir)
    elif command == "status":
        print(json.dumps(cmd_status(state_dir), indent=2))
    elif command == "push-image":
        print(tb_registry.push_image(state_dir, args.image, args.name))
    elif command == "load-image":
        running = [h for h in known_hosts(state_dir) if tb_docker.ping(h)]
        if not running:
            raise TestbedError("load-image: no host is running")
        tb_registry.load_image(state_dir, args.image, running)
    else:
        host = existing_host(state_dir, args.host)
        if command == "env":
            print("\n".join(f"{k}={v}" for k, v in host.env().items()))
        elif command == "stop":
            tb_docker.stop_host(host)
        elif command == "start":
            cmd_start(host)
        elif command == "kill":
            tb_docker.kill_host(host)
        elif command in ("partition", "heal"):
            tb_net.set_partitioned(host, command == "partition")
        elif command == "agent-start":
            argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
            print(tb_docker.start_agent(host, argv))
        elif command == "agent-stop":
            tb_docker.stop_agent(host)
        elif command == "half-delete-network":
            cmd_half_delete_network(host, args.network)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if os.geteuid() != 0:
        print("testbed: must run as root (network namespaces, bridges, dockerd)", file=sys.stderr)
        return 1
    try:
        dispatch(args)
    except TestbedError as err:
        print(f"testbed: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
