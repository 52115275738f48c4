"""The web console in a real browser, without Docker: sign-in and its cookie, CSRF, and that a
viewer's token cannot drive releases (the API's own policy refuses it, shown as a 403).

A real ccs-server and etcd; releases are made with no nodes, so they wait for ever in their
first phase and nothing races the checks.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import ccs
from ccs.models import phase_name
from ccs.v1 import resources_pb2 as pb
from controlplane.console import session
from tests.conftest import ServerProc

from .console_browser import browser, needs_chromium, new_context, shot, sign_in

pytestmark = [pytest.mark.etcd, needs_chromium]

V1 = """
services:
  web:
    image: local/webapp:${TAG:-v1}
    labels:
      aliyun.routing.port_8080: shop.local
    deploy: {replicas: 1}
"""


def _client(srv: ServerProc, token: str | None = None) -> ccs.Client:
    return ccs.Client(srv.address, srv.token if token is None else token, ca_pem=srv.ca_pem)


def test_sign_in_sets_a_strict_cookie_and_pages_need_it(ccs_server: ServerProc, unique: str,
                                                        tmp_path: Path) -> None:
    with _client(ccs_server) as c:
        c.clusters.create(unique)
    base = ccs_server.http_url
    with browser() as b:
        ctx = new_context(b)
        anon = ctx.new_page()
        anon.goto(f"{base}/console/c/{unique}/nodes")
        assert anon.url.endswith("/console/login")  # no session: sent to sign in
        anon.fill("#token", "ccs_not-a-real-token")
        anon.click("#sign-in")
        assert "not accepted" in anon.inner_text("#login-error")
        shot(anon, tmp_path, "refused-sign-in")
        page = sign_in(ctx, base, ccs_server.token)
        (cookie,) = [c for c in ctx.cookies() if c["name"] == session.COOKIE]
        assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
        assert page.evaluate("document.cookie") == ""  # scripts cannot read it
        page.click(f"text={unique}")
        page.wait_for_selector("#applications")
        page.click("#nav-events")
        page.wait_for_selector(f"#events >> text=cluster {unique} created")
        shot(page, tmp_path, "events")


def test_a_post_without_the_csrf_token_is_refused(ccs_server: ServerProc, unique: str) -> None:
    with _client(ccs_server) as c:
        c.clusters.create(unique)
        c.applications.create(unique, "shop", V1)
        c.applications.update(unique, "shop", env={"TAG": "v2"}, strategy="blue-green")
    url = f"{ccs_server.http_url}/console/c/{unique}/apps/shop/release/shift"
    with browser() as b:
        ctx = new_context(b)
        sign_in(ctx, ccs_server.http_url, ccs_server.token)
        r = ctx.request.post(url, form={"weight": "50"})  # the session cookie, no CSRF token
        assert r.status == 403 and "csrf" in r.text()
        r = ctx.request.post(url, form={"weight": "50"}, headers={"x-csrf-token": "0" * 64})
        assert r.status == 403 and "csrf" in r.text()
        with _client(ccs_server) as c:
            assert _shift_requests(c.releases.get(unique, "shop")) == []  # nothing reached the API
        # The same call with the page's token goes through to the API.
        r = ctx.request.post(url, form={"weight": "50"},
                             headers={"x-csrf-token": session.csrf_token(ccs_server.token)})
        assert r.ok, r.text()
    with _client(ccs_server) as c:
        # Recorded (with no nodes the release never gets to AWAITING_SHIFT, so it goes no further).
        assert _shift_requests(c.releases.get(unique, "shop")) != []


def _shift_requests(r: pb.Release) -> list[str]:
    return [x for x in [*r.status.requests, *r.status.history] if "shift:50" in x]


def test_a_viewer_cannot_use_release_controls(ccs_server: ServerProc, unique: str, tmp_path: Path) -> None:
    with _client(ccs_server) as c:
        c.clusters.create(unique)
        c.applications.create(unique, "shop", V1)
        c.applications.update(unique, "shop", env={"TAG": "v2"}, strategy="blue-green")
        before = c.releases.get(unique, "shop")
        viewer = c.tokens.create(f"{unique}-viewer", role="viewer", clusters=[unique]).secret
    with browser() as b:
        ctx = new_context(b)
        page = sign_in(ctx, ccs_server.http_url, viewer)
        page.goto(f"{ccs_server.http_url}/console/c/{unique}/releases")
        section = page.locator("section.release[data-app=shop]")
        section.wait_for()
        with page.expect_response(lambda r: r.url.endswith("/release/confirm")) as confirm:
            section.locator("button.confirm").click()
        assert confirm.value.status == 403
        page.wait_for_selector("#flash-message.error >> text=PermissionDenied")
        with page.expect_response(lambda r: r.url.endswith("/release/shift")) as shift:
            section.locator("input[type=range]").evaluate(
                "e => { e.value = 60; e.dispatchEvent(new Event('change', {bubbles: true})); }")
        assert shift.value.status == 403
        shot(page, tmp_path, "viewer-refused")
    with _client(ccs_server) as c:
        after = c.releases.get(unique, "shop")
    assert after.status.weight == before.status.weight == 0
    assert phase_name(after.status.phase) == phase_name(before.status.phase)
