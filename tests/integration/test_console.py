"""The web console in a real browser, without Docker: sign-in and its cookie, CSRF, and that a
viewer's token cannot drive releases (the API's own policy refuses it, shown as a 403).

A real ccs-server and etcd; releases are made with no nodes, so they wait for ever in their
first phase and nothing races the checks.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, Route

import ccs
from ccs.models import phase_name
from ccs.v1 import resources_pb2 as pb
from controlplane.console import session
from tests.conftest import ServerProc

from . import polling
from .console_browser import browser, goto, mark_loaded, needs_chromium, new_context, not_reloaded, shot, sign_in

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
        goto(anon, f"{base}/console/c/{unique}/nodes")  # again if chromium says the network changed
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


def test_a_viewer_sees_no_controls_and_the_api_still_refuses_them(ccs_server: ServerProc, unique: str,
                                                                   tmp_path: Path) -> None:
    """The console shows a control only to a token the API's policy lets use it (WhoAmI); a
    deployer's pages have them all. The API's refusal stays the guard: the viewer's POSTs, made
    with its page's CSRF token, get 403 and change nothing."""
    with _client(ccs_server) as c:
        c.clusters.create(unique)
        c.applications.create(unique, "shop", V1)
        c.applications.update(unique, "shop", env={"TAG": "v2"}, strategy="blue-green")
        before = c.releases.get(unique, "shop")
        viewer = c.tokens.create(f"{unique}-viewer", role="viewer", clusters=[unique]).secret
        deployer = c.tokens.create(f"{unique}-deployer", role="deployer", clusters=[unique]).secret
    base = ccs_server.http_url
    with browser() as b:
        pages = {}
        for who, token in (("viewer", viewer), ("deployer", deployer)):
            page = sign_in(new_context(b), base, token)
            goto(page, f"{base}/console/c/{unique}/releases")
            page.locator("section.release[data-app=shop] h3").wait_for()
            goto(page, f"{base}/console/c/{unique}/applications")
            page.locator("#applications tr[data-app=shop]").wait_for()
            goto(page, f"{base}/console/c/{unique}/deploy?app=shop")
            page.locator("h2 >> text=Deploy or update").wait_for()
            pages[who] = page
        v, d = pages["viewer"], pages["deployer"]
        assert v.inner_text("#signed-in-as") == f"{unique}-viewer (viewer)"
        assert v.locator("#deploy").count() == 0 and v.locator("#nav-deploy").count() == 0
        assert "may not deploy or update" in v.inner_text("#deploy-refused")
        assert d.locator("#deploy").count() == 1 and d.locator("#nav-deploy").count() == 1
        shot(v, tmp_path, "viewer-deploy")
        for p in (v, d):
            goto(p, f"{base}/console/c/{unique}/applications")
            p.locator("#applications tr[data-app=shop]").wait_for()
        assert v.locator("#applications a.update").count() == 0
        assert d.locator("#applications tr[data-app=shop] a.update").count() == 1
        for p in (v, d):
            goto(p, f"{base}/console/c/{unique}/releases")
            p.locator("section.release[data-app=shop] h3").wait_for()
        controls = "section.release[data-app=shop] .controls"
        assert v.locator(f"{controls} button, {controls} input").count() == 0
        assert d.locator(f"{controls} input[type=range]").count() == 1
        assert [d.inner_text(f"{controls} button.{a}") for a in ("confirm", "rollback", "abort")] == [
            "confirm", "rollback", "abort"]
        shot(v, tmp_path, "viewer-releases")
        shot(d, tmp_path, "deployer-releases")
        # The API is still the guard: the viewer's own session, CSRF token and all, is refused.
        csrf = {"x-csrf-token": session.csrf_token(viewer)}
        url = f"{base}/console/c/{unique}/apps/shop/release"
        r = v.context.request.post(f"{url}/confirm", headers=csrf)
        assert r.status == 403 and "PermissionDenied" in r.text()
        r = v.context.request.post(f"{url}/shift", form={"weight": "60"}, headers=csrf)
        assert r.status == 403 and "PermissionDenied" in r.text()
        r = v.context.request.post(f"{base}/console/c/{unique}/deploy/apply", headers=csrf,
                                   multipart={"name": "shop", "template": V1})
        assert r.status == 403 and "PermissionDenied" in r.text()
    with _client(ccs_server) as c:
        after = c.releases.get(unique, "shop")
        assert c.applications.get(unique, "shop").application.revision == 2
    assert after.status.weight == before.status.weight == 0
    assert phase_name(after.status.phase) == phase_name(before.status.phase)


def follow(page: Page, base: str, link: str) -> None:
    """Go where a pager link points. Not a click: the page's live stream swaps the table (and its
    pager) in once as it connects, and a click landing on the link being replaced goes nowhere."""
    href = page.get_attribute(link, "href")
    assert href is not None and href.startswith("/console/")
    goto(page, base + href)


def test_long_lists_are_paged_and_a_paged_list_stays_live(ccs_server: ServerProc, unique: str,
                                                           tmp_path: Path) -> None:
    """With no nodes the containers stay pending, so the counts hold still between the checks."""
    many = V1.replace("replicas: 1", "replicas: 120")
    with _client(ccs_server) as c:
        c.clusters.create(unique)
        c.applications.create(unique, "shop", many)
        polling.wait_for("120 containers", lambda: len(c.containers.list(unique)) == 120, timeout=60)
    base = ccs_server.http_url
    with browser() as b:
        page = sign_in(new_context(b), base, ccs_server.token)
        goto(page, f"{base}/console/c/{unique}/containers")
        page.wait_for_selector("#container-count >> text=/^120$/")
        assert page.locator("#containers tbody tr").count() == 100  # one page, not the 120
        assert page.inner_text(".pager").startswith("rows 1-100 of 120")
        assert page.locator(".pager a.prev").count() == 0
        follow(page, base, ".pager a.next")
        page.wait_for_selector(".pager >> text=rows 101-120 of 120")
        assert page.locator("#containers tbody tr").count() == 20
        assert page.url.endswith("/containers?offset=100")
        mark_loaded(page)
        with _client(ccs_server) as c:
            c.services.scale(unique, "shop", "web", 130)
        # The live refresh re-reads this page (offset 100), not the first one.
        page.wait_for_selector(".pager >> text=rows 101-130 of 130")
        assert page.locator("#containers tbody tr").count() == 30 and not_reloaded(page)
        assert page.inner_text("#container-count") == "130"
        shot(page, tmp_path, "containers-page-2")
        follow(page, base, ".pager a.prev")
        page.wait_for_selector(".pager >> text=rows 1-100 of 130")
        follow(page, base, ".pager a.size >> text=500")
        page.wait_for_selector(".pager >> text=rows 1-130 of 130")
        assert page.locator("#containers tbody tr").count() == 130
        goto(page, f"{base}/console/c/{unique}/containers?offset=100")
        page.wait_for_selector(".pager >> text=rows 101-130 of 130")
        mark_loaded(page)
        with _client(ccs_server) as c:
            c.services.scale(unique, "shop", "web", 90)
        # The list shrank under page 2: the live refresh shows the last page there is.
        page.wait_for_selector(".pager >> text=rows 1-90 of 90")
        assert page.locator("#containers tbody tr").count() == 90 and not_reloaded(page)
        goto(page, f"{base}/console/c/{unique}/events?size=50")
        page.wait_for_selector(".pager >> text=rows 1-")
        events = int(page.inner_text(".pager .total"))
        assert page.locator("#events tr").count() == 1 + min(events, 50)  # the header and one page
        r = page.context.request.get(f"{base}/console/c/{unique}/containers?size=2000")
        assert r.status == 400 and "size: 2000 is not one of 50, 100, 500 rows per page" in r.text()


def test_a_refresh_that_failed_on_the_network_is_fetched_again(ccs_server: ServerProc, unique: str) -> None:
    """The live stream says "changed" once per change; a re-fetch that never reached the server
    (here: chromium told the connection was reset, as for ERR_NETWORK_CHANGED) must not leave the
    page showing the state from before the change. No node: the containers stay pending, and
    after the scale nothing changes again, so only the page's own retry can bring the new count."""
    with _client(ccs_server) as c:
        c.clusters.create(unique)
        c.applications.create(unique, "shop", V1.replace("replicas: 1", "replicas: 3"))
        polling.wait_for("3 containers", lambda: len(c.containers.list(unique)) == 3, timeout=60)
    base = ccs_server.http_url
    with browser() as b:
        page = sign_in(new_context(b), base, ccs_server.token)
        goto(page, f"{base}/console/c/{unique}/containers")
        page.wait_for_selector("#container-count >> text=/^3$/")
        refused: list[str] = []
        failing = True

        def fragment(route: Route) -> None:
            if failing and route.request.headers.get("hx-request") == "true":
                refused.append(route.request.url)
                route.abort("connectionreset")
            else:
                route.continue_()

        page.route(f"{base}/console/c/{unique}/containers*", fragment)
        mark_loaded(page)
        before = len(refused)
        with _client(ccs_server) as c:
            c.services.scale(unique, "shop", "web", 5)
            polling.wait_for("5 containers", lambda: len(c.containers.list(unique)) == 5, timeout=60)
        # The re-fetch after the scale failed (and its retries, while they fail) ...
        for _ in range(600):  # the route handler runs while playwright is called: wait in the page
            if len(refused) > before:
                break
            page.wait_for_timeout(100)
        assert len(refused) > before, "the page did not re-fetch after the scale"
        failing = False
        # ... and a later retry, with no change in between, shows the new count.
        page.wait_for_selector("#container-count >> text=/^5$/")
        assert not_reloaded(page)


def test_a_diff_that_failed_on_the_network_is_sent_again_and_an_apply_is_not(ccs_server: ServerProc,
                                                                             unique: str) -> None:
    """The diff only reads, so a diff request that never reached the server (chromium's
    ERR_NETWORK_CHANGED while Docker adds a bridge) is sent again by the page. Apply changes the
    cluster and may have landed before the connection broke, so it is not repeated behind the
    user's back: the flash says it did not reach the server, and nothing was created."""
    with _client(ccs_server) as c:
        c.clusters.create(unique)
    base, cl = ccs_server.http_url, f"/console/c/{unique}"
    with browser() as b:
        page = sign_in(new_context(b), base, ccs_server.token)
        aborted: list[str] = []

        def once(route: Route) -> None:
            step = route.request.url.rsplit("/", 1)[1]
            if step not in aborted:
                aborted.append(step)
                route.abort("internetdisconnected")
            else:
                route.continue_()

        page.route(f"{base}{cl}/deploy/*", once)
        goto(page, f"{base}{cl}/deploy")
        page.fill("#app-name", "shop")
        page.fill("#template", V1)
        page.click("#show-diff")
        page.wait_for_selector("#diff-text >> text=new application")
        assert aborted == ["diff"]
        # The flash that said "sending it again" is gone once the diff arrived.
        assert page.locator("#flash-message").count() == 0

        page.click("#apply")
        page.wait_for_selector("#flash-message >> text=/did not reach the server.*not sent again/")
        assert aborted == ["diff", "apply"]
        page.wait_for_timeout(3000)  # longer than the first retry's delay: none may come
        with _client(ccs_server) as c:
            assert [a.meta.name for a in c.applications.list(unique)] == []
        page.click("#apply")
        page.wait_for_selector("#flash-message >> text=shop: deployed")
        with _client(ccs_server) as c:
            assert [a.meta.name for a in c.applications.list(unique)] == ["shop"]
