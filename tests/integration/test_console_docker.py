"""The web console in a real browser against a real server and a real agent on the root Docker
Engine (run under the Docker lock): sign in, deploy the quick-start app (deploy/examples/hello,
uploaded as a file, its diff shown first) and watch it turn running with no reload, read a log
line of its worker, then drive a blue-green release with the slider and watch the new side's
weight change on the routes page, live too.

The blue-green part uses a second application, the quick-start's file without its published
port: both sides of a blue-green release run at once, and on this one node the new side could
not take the same host port (it would stay pending, as the scheduler says). Its route gets the
agent's own published port, as every routed service does.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

import ccs
from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb
from tests.conftest import ROOT, ServerProc, free_port
from tests.integration import polling
from tests.integration.agent_process import agent_process, create_cluster, remove_from_engine
from tests.integration.grpc_helpers import call

from .console_browser import (
    browser,
    goto,
    mark_loaded,
    needs_chromium,
    new_context,
    not_reloaded,
    shot,
    shots_on_failure,
    sign_in,
)
from .docker_fixtures import TestImages, docker_client, test_image  # noqa: F401

pytestmark = [pytest.mark.etcd, pytest.mark.docker, pytest.mark.slow, needs_chromium, pytest.mark.timeout(600)]

HELLO = ROOT / "deploy" / "examples" / "hello" / "compose.yaml"


@pytest.fixture
def node(ccs_server: ServerProc, unique: str, tmp_path: Path,
         test_image: TestImages) -> Iterator[str]:  # noqa: F811
    token = create_cluster(ccs_server, unique)
    try:
        with agent_process(ccs_server.address, token, f"{unique}-n1", tmp_path / "agent", tmp_path / "agent.log",
                           router_port=free_port()):
            polling.wait_for("the node READY", lambda: call(ccs_server, lambda s: s.nodes.GetNode(
                api_pb2.GetNodeRequest(cluster=unique, name=f"{unique}-n1"), metadata=s.metadata,
                timeout=10)).status.state == pb.NODE_STATE_READY, timeout=90)
            yield f"{unique}-n1"
    finally:
        remove_from_engine(unique)


def slide_to_50(page: Page, section: Locator) -> None:
    """Set the release's slider to 50 as a user's drag ends (a `change` event), until the
    console says the shift was done. The live stream swaps the section in whenever the release
    changes, and htmx binds the slider's trigger only once the swapped-in section has settled: a
    change sent in those first milliseconds has no listener and nothing is posted (a person
    cannot drag that fast; a script can). So the event is sent again until the flash answers."""
    for _ in range(24):
        section.locator("input[type=range]").evaluate(
            "e => { e.value = 50; e.dispatchEvent(new Event('change', {bubbles: true})); }")
        try:
            page.wait_for_selector("#flash-message >> text=shift done", timeout=5_000)
            return
        except PlaywrightTimeoutError:
            continue
    pytest.fail(f"no 'shift done' after 24 slides; flash: {page.locator('#flash-message').inner_text()!r}")


def apply(page: Page, done: str, landed: Callable[[], bool]) -> None:
    """Click apply until the console says ``done``. An apply that never reached the server
    (chromium's ERR_NETWORK_CHANGED while the engine adds a bridge or a veth for the other
    application) is not sent again by the page, which says so: as a user would, look whether it
    landed (``landed``) and click again only if it did not."""
    for _ in range(3):
        page.click("#apply")
        page.wait_for_selector(f"#flash-message >> text=/{done}|did not reach the server/")
        if done in page.locator("#flash-message").inner_text():
            return
        if landed():
            return
    pytest.fail(f"apply never reached the server; flash: {page.locator('#flash-message').inner_text()!r}")


def _has_app(server: ServerProc, cluster: str, name: str, revision: int) -> bool:
    with ccs.Client(server.address, server.token, ca_pem=server.ca_pem) as c:
        return any(a.meta.name == name and a.revision >= revision for a in c.applications.list(cluster))


@contextlib.contextmanager
def dump_state_on_failure(server: ServerProc, cluster: str, tmp_path: Path) -> Iterator[None]:
    """On a failure, what the control plane knew: releases, containers, the cluster's last events
    and the agent log's tail; a page that did not show what was awaited says what it showed,
    this says why."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception), ccs.Client(server.address, server.token, ca_pem=server.ca_pem) as c:
            for r in c.releases.list(cluster, "bg"):
                print(f"release {r.meta.name}: {pb.ReleasePhase.Name(r.status.phase)} "
                      f"weight={r.status.weight} {r.status.message!r}")
            for k in c.containers.list(cluster):
                print(f"container {k.application}/{k.service} {k.meta.name} gen={k.spec_generation} "
                      f"{pb.ContainerState.Name(k.status.state)} created={k.meta.created_at.ToJsonString()} "
                      f"status_at={k.status.updated_at.ToJsonString()} {k.status.message!r} "
                      f"endpoints={[(e.target, e.published) for e in k.status.endpoints]}")
            for entry in c.routes.list(cluster).routes:
                print(f"route {entry.application}/{entry.service} {entry.domain}{entry.path}: "
                      f"{[(b.container, b.group, b.weight) for b in entry.backends]}")
            for e in c.events.list(cluster)[-60:]:
                print(f"event {e.kind} {e.object} {e.reason}: {e.message}")
        with contextlib.suppress(Exception):
            print("agent log tail:\n" + "\n".join((tmp_path / "agent.log").read_text().splitlines()[-80:]))
        raise


def without_published_port(compose: str) -> str:
    out = re.sub(r"\n    ports:\n      - \"[^\"]*\"\n", "\n", compose)
    assert out != compose and "ports:" not in out
    return out


def test_deploy_watch_running_read_logs_and_shift_a_blue_green_release(
    ccs_server: ServerProc, node: str, unique: str, tmp_path: Path
) -> None:
    base, cl = ccs_server.http_url, f"/console/c/{unique}"
    with browser() as b:
        ctx = new_context(b)
        page = sign_in(ctx, base, ccs_server.token)
        failing = [page]
        with dump_state_on_failure(ccs_server, unique, tmp_path), shots_on_failure(tmp_path, failing):

            # Deploy the quick-start from its file: the diff first, then apply.
            goto(page, f"{base}{cl}/deploy")
            page.fill("#app-name", "hello")
            page.set_input_files("#compose-file", str(HELLO))
            page.fill("#params", f"GREETING=hello from the console\nWEB_PORT={free_port()}")
            page.click("#show-diff")
            page.wait_for_selector("#diff-text >> text=new application")
            shot(page, tmp_path, "1-deploy-diff")
            apply(page, "hello: deployed", lambda: _has_app(ccs_server, unique, "hello", 1))

            # The applications page turns to 3/3 running by itself.
            goto(page, f"{base}{cl}/applications")
            page.wait_for_selector("tr[data-app=hello]")
            mark_loaded(page)
            page.wait_for_selector("tr[data-app=hello] .running >> text=3/3")
            assert not_reloaded(page)
            shot(page, tmp_path, "2-running")

            # A log line of the worker.
            goto(page, f"{base}{cl}/logs?app=hello&service=worker")
            page.wait_for_selector("#log >> text=working for")
            shot(page, tmp_path, "3-logs")

            # Blue-green: v1 running, then an update to v2 from the console with the strategy chosen.
            bg = without_published_port(HELLO.read_text())
            with ccs.Client(ccs_server.address, ccs_server.token, ca_pem=ccs_server.ca_pem) as c:
                c.applications.create(unique, "bg", bg, env={"GREETING": "blue-green"})
            goto(page, f"{base}{cl}/applications")
            page.wait_for_selector("tr[data-app=bg] .running >> text=3/3")
            goto(page, f"{base}{cl}/deploy?app=bg")
            page.fill("#template", bg)
            page.fill("#params", "WEB_VERSION=v2")
            page.select_option("#strategy", "blue-green")
            page.click("#show-diff")
            page.wait_for_selector("#diff-text >> text=local/webapp:v2")
            shot(page, tmp_path, "4-update-diff")
            apply(page, "bg: updated", lambda: _has_app(ccs_server, unique, "bg", 2))

            # The routes page, open in its own tab: the new side (green) has weight 0.
            routes = ctx.new_page()
            failing.append(routes)
            goto(routes, f"{base}{cl}/routes")
            green = "tr[data-group=green]"
            routes.wait_for_selector(f"{green} .weight >> text=/^0$/")
            mark_loaded(routes)

            # The releases page: once the new side is up, slide to 50%.
            goto(page, f"{base}{cl}/releases")
            section = page.locator("section.release[data-app=bg]")
            section.locator(".phase >> text=awaiting-shift").wait_for()
            slide_to_50(page, section)
            section.locator(".weight >> text=/^50$/").wait_for()
            shot(page, tmp_path, "5-release-shifted")

            # The routes tab shows the new side's weight without a reload.
            routes.wait_for_selector(f"{green} .weight >> text=/^[1-9][0-9]*$/")
            assert not_reloaded(routes)
            shot(routes, tmp_path, "6-routes-weights")
