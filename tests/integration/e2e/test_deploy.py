"""Deploy across 3 hosts: global and replicated placement, depends_on gating, health, published
ports, service endpoints, service-name resolution on the app network; then logs and ``app rm``."""

from __future__ import annotations

import functools
import subprocess

import pytest

from ccs.v1 import resources_pb2 as pb
from nodeagent.runtime import naming

from .conftest import CCS, Cluster3
from .helpers import IDLE, docker_time, fetch, per_host_counts

pytestmark = [pytest.mark.slow, pytest.mark.docker]

WEB_PORT = 18081
# web needs ~3 s to become healthy, and records when its first health probe passed, so the
# depends_on check below compares client creation against a real, well-separated moment.
THREE_TIER = f"""
services:
  web:
    image: local/webapp:v1
    command: ["sh", "-c", "sleep 3; exec /bin/serve"]
    ports: ["{WEB_PORT}:8080"]
    healthcheck:
      test: ["CMD-SHELL", "printf 'GET /health HTTP/1.0\\\\r\\\\n\\\\r\\\\n' | nc 127.0.0.1 8080 | grep -q ' 200 ' && {{ [ -f /tmp/healthy-at ] || date +%s > /tmp/healthy-at; }}"]
      interval: 1s
      timeout: 1s
      retries: 30
    deploy:
      mode: global
  worker:
    image: local/busybox:1
    command: {IDLE}
    deploy:
      replicas: 6
  client:
    image: local/busybox:1
    command: {IDLE}
    depends_on:
      web:
        condition: service_healthy
"""


def test_three_services_placed_healthy_reachable(cluster3: Cluster3, app_name: str) -> None:
    c = cluster3
    c.deploy(app_name, THREE_TIER)
    c.wait_for("web healthy on all 3 hosts, 6 workers and 1 client running", lambda: (
        len([x for x in c.live(app_name, "web") if x.status.state == pb.CONTAINER_STATE_HEALTHY]) == 3
        and len(c.live(app_name, "worker")) == 6 and len(c.live(app_name, "client")) == 1), timeout=90)

    # Placement, as the API sees it and as each host's Docker sees it.
    web = c.live(app_name, "web")
    assert sorted(x.node for x in web) == c.host_names
    workers = c.live(app_name, "worker")
    assert sorted(x.node for x in workers) == sorted(c.host_names * 2)
    docker_workers = c.docker_by_host(app_name, "worker")
    assert per_host_counts(docker_workers) == {"host1": 2, "host2": 2, "host3": 2}
    assert {d["Id"] for cs in docker_workers.values() for d in cs} == {x.status.docker_id for x in workers}
    docker_web = c.docker_by_host(app_name, "web")
    for host, cs in docker_web.items():
        assert len(cs) == 1, (host, cs)
        assert cs[0]["State"]["Health"]["Status"] == "healthy"

    # depends_on: client was created only after every web container had passed its health check.
    client = c.live(app_name, "client")[0]
    client_docker = c.docker_containers(client.node, app_name, "client")
    assert len(client_docker) == 1
    created = docker_time(client_docker[0]["Created"])
    healthy_at = []
    for host, cs in docker_web.items():
        out = c.host(int(host[-1])).docker("exec", cs[0]["Id"], "cat", "/tmp/healthy-at").stdout
        healthy_at.append(int(out.strip()))
    assert created >= max(healthy_at), (created, healthy_at)
    assert created >= min(docker_time(cs[0]["State"]["StartedAt"]) for cs in docker_web.values()) + 3

    # Reachability of the published port on every host, from the root namespace.
    for i in (1, 2, 3):
        url = f"http://10.77.0.1{i}:{WEB_PORT}/"
        assert c.wait_for(f"GET {url}", functools.partial(fetch, url)) == "v1"

    # Endpoints: the CLI's service get (JSON) lists node address:port of each running container.
    svc = c.ccs_json("service", "get", "-c", c.name, f"{app_name}/web")
    endpoints = {(e["address"], e["published"]) for e in svc["status"].get("endpoints", [])}
    assert endpoints == {(f"10.77.0.1{i}", WEB_PORT) for i in (1, 2, 3)}, svc["status"]
    assert svc["status"]["healthy"] == 3
    shown = c.ccs("service", "get", "-c", c.name, f"{app_name}/web").stdout  # the table lists them too
    assert all(f"10.77.0.1{i}:{WEB_PORT}" in shown for i in (1, 2, 3)), shown

    # Service-name resolution on the app network: client reaches "web" (any of the three, on any
    # host: the node resolver answers every ready one). A cross-node path exists once the other
    # hosts hold the client's new block in their maps: waited for, not assumed.
    client_host = c.host(int(client.node[-1]))

    def get_web() -> str:
        res = client_host.docker("exec", client.status.docker_id, "sh", "-c",
                                 "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 web 8080", check=False)
        return res.stdout.strip()

    assert c.wait_for("the client's GET of web by name", get_web, timeout=60).endswith("v1")
    net = naming.network_name(c.name, app_name)
    assert net in client_docker[0]["NetworkSettings"]["Networks"]


LOGGER = """
services:
  talker:
    image: local/busybox:1
    command: ["sh", "-c", "trap 'exit 0' TERM; i=0; while true; do i=$$((i+1)); echo line-$$i; sleep 0.3; done"]
"""


def test_logs_tail_and_follow(cluster3: Cluster3, app_name: str) -> None:
    c = cluster3
    c.deploy(app_name, LOGGER)
    c.wait_for("talker running", lambda: len(c.live(app_name, "talker")) == 1)
    # Wait until there is enough output for --tail to have something to cut.
    c.wait_for("10 log lines", lambda: len(c.ccs("logs", "-c", c.name, f"{app_name}/talker").stdout
                                           .splitlines()) >= 10)
    tail = c.ccs("logs", "-c", c.name, f"{app_name}/talker", "--tail", "3").stdout.splitlines()
    assert len(tail) == 3, tail
    numbers = [int(line.rsplit("line-", 1)[1]) for line in tail]
    assert numbers == list(range(numbers[0], numbers[0] + 3)) and numbers[0] >= 8, tail

    # One container by its name alone, and --since: only what it wrote in the last 2 s.
    name = c.live(app_name, "talker")[0].meta.name
    whole = c.ccs("logs", "-c", c.name, name).stdout.splitlines()
    recent = c.ccs("logs", "-c", c.name, name, "--since", "2s").stdout.splitlines()
    assert whole and " | " not in whole[0], whole[:2]  # one container: no name prefix
    assert 0 < len(recent) < len(whole), (len(recent), len(whole))
    missing = c.ccs("logs", "-c", c.name, "no-such-container", check=False)
    assert missing.returncode == 3 and "not found" in missing.stderr

    # -f: read lines as they are produced, then stop the follower.
    proc = subprocess.Popen(
        [CCS, "logs", "-c", c.name, f"{app_name}/talker", "-f", "--tail", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(c.workdir), "CCS_CONFIG": str(c.config_path)},
    )
    try:
        assert proc.stdout is not None
        got = [proc.stdout.readline() for _ in range(5)]  # blocks on real output; bounded by timeout mark
    finally:
        proc.terminate()
        proc.wait(10)
    nums = [int(line.rsplit("line-", 1)[1]) for line in got]
    assert nums == list(range(nums[0], nums[0] + 5)), got
    assert nums[-1] > numbers[-1]


def test_app_rm_leaves_nothing_behind(cluster3: Cluster3, app_name: str) -> None:
    c = cluster3
    compose = f"""
services:
  data:
    image: local/busybox:1
    command: {IDLE}
    volumes: ["/data"]
    deploy: {{replicas: 3}}
"""
    c.deploy(app_name, compose)
    c.wait_for("3 data containers running", lambda: len(c.live(app_name, "data")) == 3)
    net = naming.network_name(c.name, app_name)
    before = {h: c.host(i + 1).docker("volume", "ls", "-q", "--filter", f"label=ccs.app={app_name}").stdout.split()
              for i, h in enumerate(c.host_names)}
    assert sum(len(v) for v in before.values()) >= 3, before  # the anonymous /data volumes exist

    c.ccs("app", "rm", "-c", c.name, app_name)

    def nothing_left() -> bool:
        out = {}
        for i, h in enumerate(c.host_names):
            host = c.host(i + 1)
            ctrs = host.docker("ps", "-aq", "--filter", f"label=ccs.app={app_name}").stdout.split()
            nets = host.docker("network", "ls", "-q", "--filter", f"name=^{net}$").stdout.split()
            vols = [v for v in before[h]
                    if host.docker("volume", "inspect", v, check=False).returncode == 0]
            if ctrs or nets or vols:
                out[h] = {"containers": ctrs, "networks": nets, "volumes": vols}
        assert not out, out
        return True

    c.wait_for("no containers, network or volumes of the app on any host", nothing_left, timeout=60)
    res = c.ccs("app", "get", "-c", c.name, app_name, check=False)
    assert res.returncode == 3, (res.stdout, res.stderr)
