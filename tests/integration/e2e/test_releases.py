"""Issue 4 end to end: releases through the real routers of a 3-host testbed, under steady load.

Each test deploys v1 behind a route, drives HTTP load through every node's HAProxy for the
whole release, and checks: zero failed requests (except a failing canary's own 5xx), the
traffic shares at each weight step within a stated tolerance, and a final state that holds
only the new revision — or only the old one after a rollback.
"""

from __future__ import annotations

import json
import signal
import time
from typing import Any

import pytest

from .conftest import Cluster3
from .helpers import HEALTH_TEST
from .load import Answer, Load

pytestmark = [pytest.mark.slow, pytest.mark.docker]

TOLERANCE = 0.15  # absolute, on a traffic share measured over a few hundred requests
ROUTERS = [f"10.77.0.1{i}:9080" for i in (1, 2, 3)]


def template(domain: str, *, failure_action: str = "rollback", monitor: str = "2s") -> str:
    return f"""
services:
  web:
    image: local/webapp:${{TAG:-v1}}
    healthcheck:
      test: {HEALTH_TEST}
      interval: 1s
      timeout: 1s
      retries: 2
    labels:
      aliyun.routing.port_8080: {domain}
    deploy:
      replicas: 3
      update_config:
        parallelism: 1
        order: start-first
        monitor: {monitor}
        failure_action: {failure_action}
"""


@pytest.fixture(scope="module", autouse=True)
def release_images(cluster3: Cluster3) -> None:
    for image in ("local/webapp:v2", "local/webapp:bad", "local/webapp:err"):
        cluster3.bed.load_image(image)


def release(c: Cluster3, app: str) -> dict[str, Any]:
    return dict(c.ccs_json("release", "get", "-c", c.name, app))


def phase(c: Cluster3, app: str) -> str:
    return str(release(c, app)["status"].get("phase", ""))


def serve(c: Cluster3, app: str, domain: str) -> str:
    """Deploy v1 and wait until every router answers for the domain; returns the file path."""
    path = c.compose_file(app, template(domain))
    c.ccs("app", "deploy", "-c", c.name, "--name", app, "-f", str(path), "--wait", "--timeout", "2m")

    def routed() -> bool:
        with Load(ROUTERS, domain, threads=3, max_seconds=3) as load:
            answers = load.window(1.0)
        return bool(answers) and all(a.status == 200 and a.body == "v1" for a in answers)

    c.wait_for(f"every router to serve {domain}", routed, timeout=60)
    return str(path)


def brief(answers: list[Answer]) -> str:
    return "; ".join(f"{a.status} {a.body[:60]}" for a in answers[:5])


def versions_running(c: Cluster3, app: str) -> set[str]:
    return {x.spec.image.rsplit(":", 1)[1] for x in c.live(app, "web")}


def test_rolling_update_under_load_has_no_failed_request(cluster3: Cluster3, app_name: str) -> None:
    c, domain = cluster3, f"{app_name}.rolling.test"
    path = serve(c, app_name, domain)
    with Load(ROUTERS, domain) as load:
        time.sleep(1)
        c.ccs("app", "update", "-c", c.name, app_name, "-f", path, "--env", "TAG=v2", "--wait",
              "--timeout", "3m")
        after = load.answered_window(2)
    assert not load.failures(), f"{len(load.failures())} failed of {len(load.answers)}: {brief(load.failures())}"
    assert load.shares(after) == {"v2": 1.0}
    rel = release(c, app_name)
    assert rel["spec"]["strategy"] == "rolling" and rel["status"]["phase"] == "RELEASE_PHASE_SUCCEEDED"
    assert versions_running(c, app_name) == {"v2"}
    assert len(c.live(app_name, "web")) == 3


def test_blue_green_shift_and_confirm(cluster3: Cluster3, app_name: str) -> None:
    c, domain = cluster3, f"{app_name}.bluegreen.test"
    path = serve(c, app_name, domain)
    c.ccs("app", "update", "-c", c.name, app_name, "-f", path, "--env", "TAG=v2", "--strategy", "blue-green")
    c.wait_for("the green side up, awaiting a shift",
               lambda: phase(c, app_name) == "RELEASE_PHASE_AWAITING_SHIFT", timeout=90)
    assert len([x for x in c.live(app_name, "web") if x.spec.image.endswith(":v2")]) == 3  # full scale
    with Load(ROUTERS, domain) as load:
        assert load.shares(load.answered_window(2)) == {"v1": 1.0}  # weight 0: no traffic to green yet
        t_shift = time.monotonic()
        c.ccs("release", "shift", "-c", c.name, app_name, "--weight", "50")
        c.wait_for("green to get traffic", lambda: any(a.body == "v2" for a in load.since(t_shift)), timeout=30)
        first_green = next(a.at for a in load.since(t_shift) if a.body == "v2")
        time.sleep(1)
        half = load.shares(load.answered_window(4))
        c.ccs("release", "confirm", "-c", c.name, app_name, "--wait", "--timeout", "2m")
        after = load.answered_window(2)
    print(f"blue-green: shift to first v2 answer {first_green - t_shift:.2f}s; 50% window {half}")
    assert abs(half.get("v2", 0) - 0.5) <= TOLERANCE, half
    assert not load.failures(), f"{len(load.failures())} failed of {len(load.answers)}: {brief(load.failures())}"
    assert load.shares(after) == {"v2": 1.0}
    assert versions_running(c, app_name) == {"v2"} and len(c.live(app_name, "web")) == 3


def test_blue_green_rollback_removes_the_new_side(cluster3: Cluster3, app_name: str) -> None:
    c, domain = cluster3, f"{app_name}.bgrollback.test"
    path = serve(c, app_name, domain)
    c.ccs("app", "update", "-c", c.name, app_name, "-f", path, "--env", "TAG=v2", "--strategy", "blue-green")
    c.wait_for("awaiting a shift", lambda: phase(c, app_name) == "RELEASE_PHASE_AWAITING_SHIFT", timeout=90)
    with Load(ROUTERS, domain) as load:
        c.ccs("release", "shift", "-c", c.name, app_name, "--weight", "30")
        time.sleep(3)
        res = c.ccs("release", "rollback", "-c", c.name, app_name, "--wait", "--timeout", "2m", check=False)
        after = load.answered_window(2)
    assert res.returncode == 10, res.stderr  # --wait: the release ended rolled back
    assert "rolled" in res.stderr
    assert not load.failures(), brief(load.failures())
    assert load.shares(after) == {"v1": 1.0}
    c.wait_for("only v1 left", lambda: versions_running(c, app_name) == {"v1"}, timeout=60)
    svc = c.ccs_json("service", "get", "-c", c.name, f"{app_name}/web")
    assert svc["spec"]["image"] == "local/webapp:v1"  # the service spec is back too


def test_canary_steps_then_promotes_itself(cluster3: Cluster3, app_name: str) -> None:
    c, domain = cluster3, f"{app_name}.canary.test"
    path = serve(c, app_name, domain)
    c.ccs("app", "update", "-c", c.name, app_name, "-f", path, "--env", "TAG=v2", "--strategy", "canary",
          "--canary-replicas", "1", "--steps", "30%,pause 8s,100%")
    with Load(ROUTERS, domain) as load:
        c.wait_for("the 30% step", lambda: release(c, app_name)["status"].get("weight") == 30, timeout=90)
        time.sleep(1.5)  # let every router apply the weights
        step = load.shares(load.answered_window(4))
        c.wait_for("the canary to promote itself",
                   lambda: phase(c, app_name) == "RELEASE_PHASE_SUCCEEDED", timeout=120)
        after = load.answered_window(2)
    print(f"canary: 30% step measured {step}")
    assert abs(step.get("v2", 0) - 0.3) <= TOLERANCE, step
    assert not load.failures(), brief(load.failures())
    assert load.shares(after) == {"v2": 1.0}
    c.wait_for("only v2 left", lambda: versions_running(c, app_name) == {"v2"}, timeout=60)


def test_a_canary_that_returns_5xx_aborts_by_itself(cluster3: Cluster3, app_name: str) -> None:
    c, domain = cluster3, f"{app_name}.canary5xx.test"
    path = serve(c, app_name, domain)
    with Load(ROUTERS, domain) as load:
        res = c.ccs("app", "update", "-c", c.name, app_name, "-f", path, "--env", "TAG=err",
                    "--strategy", "canary", "--steps", "40%,pause 60s,100%", "--max-5xx-ratio", "0.2",
                    "--min-requests", "10", "--wait", "--timeout", "3m", check=False)
        after = load.answered_window(2)
    assert res.returncode == 10, (res.stdout, res.stderr)
    rel = release(c, app_name)
    assert rel["status"]["phase"] == "RELEASE_PHASE_ROLLED_BACK"
    assert "5xx" in json.dumps(rel["status"]), rel["status"]
    assert load.shares(after) == {"v1": 1.0} and not load.failures(after)
    # the only failures are the canary's own 500s, never a dropped connection
    assert {a.body for a in load.failures()} <= {"err"}, brief(load.failures())
    c.wait_for("only v1 left", lambda: versions_running(c, app_name) == {"v1"}, timeout=60)


def test_a_rolling_update_that_fails_its_health_check_rolls_back(cluster3: Cluster3, app_name: str) -> None:
    c, domain = cluster3, f"{app_name}.rollingbad.test"
    path = serve(c, app_name, domain)
    with Load(ROUTERS, domain) as load:
        res = c.ccs("app", "update", "-c", c.name, app_name, "-f", path, "--env", "TAG=bad", "--wait",
                    "--timeout", "4m", check=False)
        after = load.answered_window(2)
    assert res.returncode == 10, (res.stdout, res.stderr)
    assert phase(c, app_name) == "RELEASE_PHASE_ROLLED_BACK"
    assert not load.failures(), brief(load.failures())  # an unhealthy container never gets traffic
    assert load.shares(after) == {"v1": 1.0}
    c.wait_for("only v1 left", lambda: versions_running(c, app_name) == {"v1"}, timeout=90)


def test_a_release_finishes_after_the_control_plane_is_killed(cluster3: Cluster3, app_name: str) -> None:
    c, domain = cluster3, f"{app_name}.cpkill.test"
    path = c.compose_file(app_name, template(domain, monitor="3s"))
    c.ccs("app", "deploy", "-c", c.name, "--name", app_name, "-f", str(path), "--wait", "--timeout", "2m")
    c.ccs("app", "update", "-c", c.name, app_name, "-f", str(path), "--env", "TAG=v2")
    c.wait_for("the first batch under way",
               lambda: any(x.spec.image.endswith(":v2") for x in c.live(app_name, "web")), timeout=60)
    c.server.proc.send_signal(signal.SIGKILL)
    c.server.proc.wait(10)
    c.start_server()
    c.wait_for("the release to succeed after the restart",
               lambda: phase(c, app_name) == "RELEASE_PHASE_SUCCEEDED", timeout=180)
    assert versions_running(c, app_name) == {"v2"} and len(c.live(app_name, "web")) == 3


def test_route_ls_shows_domains_backends_and_weights(cluster3: Cluster3, app_name: str) -> None:
    c, domain = cluster3, f"{app_name}.routes.test"
    serve(c, app_name, domain)
    table = c.ccs_json("route", "ls", "-c", c.name)
    mine = [r for r in table.get("routes", []) if r.get("domain") == domain]
    assert len(mine) == 1 and mine[0]["path"] == "/"
    backends = mine[0]["backends"]
    assert len(backends) == 3 and all(b["weight"] > 0 for b in backends)
    assert {b["address"] for b in backends} == {"10.77.0.11", "10.77.0.12", "10.77.0.13"}


def _get(router: str, host: str, headers: dict[str, str]) -> tuple[int, str]:
    import http.client

    addr, port = router.rsplit(":", 1)
    conn = http.client.HTTPConnection(addr, int(port), timeout=5)
    try:
        conn.request("GET", "/", headers={"Host": host, **headers})
        resp = conn.getresponse()
        return resp.status, resp.read().decode().strip()
    finally:
        conn.close()


def test_ab_canary_routes_by_header_then_aborts(cluster3: Cluster3, app_name: str) -> None:
    c, domain = cluster3, f"{app_name}.ab.test"
    path = serve(c, app_name, domain)
    c.ccs("app", "update", "-c", c.name, app_name, "-f", path, "--env", "TAG=v2", "--strategy", "canary",
          "--steps", "50%,pause,100%", "--match-header", "X-Canary", "--match-value", "yes")

    def split() -> bool:
        beta = {_get(r, domain, {"X-Canary": "yes"}) for r in ROUTERS for _ in range(5)}
        plain = {_get(r, domain, {}) for r in ROUTERS for _ in range(5)}
        return beta == {(200, "v2")} and plain == {(200, "v1")}

    c.wait_for("header requests on the canary, the rest on stable", split, timeout=90)
    table = c.ccs_json("route", "ls", "-c", c.name)
    mine = next(r for r in table["routes"] if r.get("domain") == domain)
    assert mine["match_header"] == "X-Canary" and mine["match_value"] == "yes"
    res = c.ccs("release", "abort", "-c", c.name, app_name, "--wait", "--timeout", "2m", check=False)
    assert res.returncode == 10, res.stderr
    c.wait_for("everyone back on v1", lambda: {_get(r, domain, {"X-Canary": "yes"}) for r in ROUTERS}
               == {(200, "v1")}, timeout=60)
    c.wait_for("only v1 left", lambda: versions_running(c, app_name) == {"v1"}, timeout=60)
