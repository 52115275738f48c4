"""What joining a user-defined network costs a container start on a busy engine.

Run (root, local dockerd, images from ``deploy/images/build.sh``):
``.venv/bin/python tests/bench/start_cost.py [--rounds 3]``

Beside 30 running ``local/webapp:v1`` containers with the rolling benchmark's health check (every
1 s: the background load of a rolling update), it creates 5 containers per variant and starts
them at once, timing each start call:

- ``bridge``: the default bridge (where plain Swarm tasks run);
- ``network``: a user-defined bridge network, no alias (what ccs does for every container since
  the node resolver answers service names: engine aliases are set only when an agent runs without
  it, ``--resolver-address ''``);
- ``alias``: the same network with a DNS alias (what ccs did before the resolver);
- ``publish``: network and alias plus a published port on 127.0.0.1 (what ccs adds for routed
  ports);
- ``dns``: the user-defined network with a DNS server (``HostConfig.Dns``: the node resolver,
  what ccs sets on every container when the agent runs one);
- ``ccs``: exactly what the agent asks for a routed replica with the node resolver: the network
  without alias, the DNS server and an ephemeral published port on 127.0.0.1;
- ``bridge-publish``: the default bridge with that published port.

``--variants`` picks some (comma-separated).

Everything it made is removed at the end (names ``sc-*``, network ``sc-net``). Not collected by pytest.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import docker

HEALTH = {
    "Test": ["CMD-SHELL", "printf 'GET /health HTTP/1.0\\r\\n\\r\\n' | nc 127.0.0.1 8080 | grep -q ' 200 '"],
    "Interval": 1_000_000_000, "Timeout": 1_000_000_000, "Retries": 2,
}
VARIANTS = ("bridge", "network", "alias", "publish", "dns", "ccs", "bridge-publish")
RESOLVER = "10.255.255.1"  # never asked during a start: any address does


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    if unknown := set(variants) - set(VARIANTS):
        parser.error(f"--variants: unknown {sorted(unknown)}")
    api = docker.from_env().api
    net = api.create_network("sc-net", driver="bridge")
    made: list[str] = []
    try:
        for i in range(30):
            c = api.create_container(
                "local/webapp:v1", name=f"sc-bg{i}", healthcheck=HEALTH,
                host_config=api.create_host_config(network_mode="sc-net"),
                networking_config=api.create_networking_config(
                    {"sc-net": api.create_endpoint_config(aliases=["bg"])}),
            )["Id"]
            made.append(c)
            api.start(c)
        time.sleep(5)
        results: dict[str, list[float]] = {v: [] for v in variants}
        for rnd in range(args.rounds):
            for variant in variants:
                ids = [_create(api, variant, f"sc-{variant}{rnd}-{i}") for i in range(5)]
                made += ids
                results[variant] += _start_all(api, ids)
                time.sleep(2)
        for variant, durations in results.items():
            print(f"{variant:8} start call: median {statistics.median(durations):.2f} s, "
                  f"max {max(durations):.2f} s ({len(durations)} starts)")
    finally:
        for c in made:
            api.remove_container(c, force=True)
        api.remove_network(net["Id"])


def _create(api: docker.APIClient, variant: str, name: str) -> str:
    ports = {8080: ("127.0.0.1", None)} if variant in ("publish", "ccs", "bridge-publish") else None
    if variant.startswith("bridge"):
        return str(api.create_container(
            "local/webapp:v2", name=name, healthcheck=HEALTH, ports=[8080] if ports else None,
            host_config=api.create_host_config(port_bindings=ports))["Id"])
    aliases = ["web"] if variant in ("alias", "publish") else None
    dns = [RESOLVER] if variant in ("dns", "ccs") else None
    return str(api.create_container(
        "local/webapp:v2", name=name, healthcheck=HEALTH, ports=[8080] if ports else None,
        host_config=api.create_host_config(network_mode="sc-net", port_bindings=ports, dns=dns),
        networking_config=api.create_networking_config({"sc-net": api.create_endpoint_config(aliases=aliases)}),
    )["Id"])


def _start_all(api: docker.APIClient, ids: list[str]) -> list[float]:
    durations: list[float] = []

    def start(cid: str) -> None:
        t = time.perf_counter()
        api.start(cid)
        durations.append(time.perf_counter() - t)

    threads = [threading.Thread(target=start, args=(c,)) for c in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return durations


if __name__ == "__main__":
    main()
