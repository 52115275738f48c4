"""The console's pages (GET): sign-in, the clusters, and each page of a cluster.

Each page is read with the signed-in token through :mod:`.api` and laid out by :mod:`.views`;
htmx asks for the same URL again (``HX-Request``) when the live stream says the cluster changed
and gets the fragment alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ccs import errors
from ccs.client import AsyncClient
from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.console import paging, views
from controlplane.console.api import Loopback
from controlplane.console.web import failed, page, sign_in_again, templates, token_of

#: Lines of a log tail.
LOG_TAIL = 200

T = TypeVar("T")
Loader = Callable[[AsyncClient, str, Request, float], Awaitable[dict[str, Any]]]


def _window(request: Request, total: int) -> paging.Window:
    """The page of ``total`` rows the request's ``?offset=&size=`` asks for (InvalidArgument, a
    400 naming the field, for a bad one)."""
    q = request.query_params
    try:
        return paging.window(total, q.get("offset", ""), q.get("size", ""))
    except ValueError as e:
        raise errors.InvalidArgument(str(e)) from None


def _page(request: Request, items: Sequence[T]) -> tuple[Sequence[T], dict[str, Any]]:
    """The rows of ``items`` the request asks for, and the pager."""
    win = _window(request, len(items))
    return win.rows(items), _pager(request, win)


def _pager(request: Request, win: paging.Window) -> dict[str, Any]:
    """The pager's count and links (the same URL with another offset or size: the application
    filter stays)."""

    def link(**params: int) -> str:
        url = request.url.include_query_params(**params)
        return f"{url.path}?{url.query}"

    return {"pager": {"win": win, "prev": "" if win.previous is None else link(offset=win.previous),
                      "next": "" if win.next is None else link(offset=win.next),
                      "sizes": [(n, link(offset=win.offset, size=n)) for n in sorted(paging.SIZES)]}}


async def _nodes(c: AsyncClient, cluster: str, request: Request, now: float) -> dict[str, Any]:
    shown, pager = _page(request, await c.nodes.list(cluster))
    return {"rows": views.node_rows(shown, now), **pager}


async def _allowed(c: AsyncClient, cluster: str, apps: list[str]) -> dict[str, list[str]]:
    """Per application, the calls the API's policy admits from this token on it (WhoAmI)."""
    answers = await asyncio.gather(*(c.tokens.whoami(cluster, a) for a in apps))
    return {a: list(me.allowed) for a, me in zip(apps, answers, strict=True)}


async def _applications(c: AsyncClient, cluster: str, request: Request, now: float) -> dict[str, Any]:
    apps, pager = _page(request, await c.applications.list(cluster))
    allowed = await _allowed(c, cluster, [a.meta.name for a in apps])
    rows = views.application_rows(apps, now)
    for r in rows:
        r["may_update"] = "yes" if views.may("update", allowed[r["name"]]) else ""
    return {"rows": rows, **pager}


async def _services(c: AsyncClient, cluster: str, request: Request, now: float) -> dict[str, Any]:
    shown, pager = _page(request, await c.services.list(cluster, request.query_params.get("app", "")))
    return {"rows": views.service_rows(shown), **pager}


async def _containers(c: AsyncClient, cluster: str, request: Request, now: float) -> dict[str, Any]:
    """The API reads this page alone (``offset``, ``with_total``), not the whole list."""
    q, app = request.query_params, request.query_params.get("app", "")
    try:
        offset, size = paging.asked(q.get("offset", ""), q.get("size", ""))
    except ValueError as e:
        raise errors.InvalidArgument(str(e)) from None
    found = await c.containers.page(cluster, application=app, offset=offset, size=size)
    win = _window(request, found.total)
    if win.offset != offset:  # the list shrank under this page: its last page instead
        found = await c.containers.page(cluster, application=app, offset=win.offset, size=size)
        win = paging.window(found.total, str(win.offset), str(size))
    return {"rows": views.container_rows(found.containers, now), **_pager(request, win)}


async def _releases(c: AsyncClient, cluster: str, request: Request, now: float) -> dict[str, Any]:
    names = [app.meta.name for app in await c.applications.list(cluster)]
    lists, allowed = await asyncio.gather(asyncio.gather(*(c.releases.list(cluster, n) for n in names)),
                                          _allowed(c, cluster, names))
    releases: list[pb.Release] = [r for found in lists for r in found]
    return {"apps": views.releases_by_app(releases, allowed)}


async def _routes(c: AsyncClient, cluster: str, request: Request, now: float) -> dict[str, Any]:
    shown, pager = _page(request, views.route_rows(await c.routes.list(cluster)))
    return {"rows": shown, **pager}


async def _events(c: AsyncClient, cluster: str, request: Request, now: float) -> dict[str, Any]:
    shown, pager = _page(request, views.newest_first(await c.events.list(cluster)))
    return {"rows": views.event_rows(shown, now), **pager}


async def _logs(c: AsyncClient, cluster: str, request: Request, now: float) -> dict[str, Any]:
    """The last lines of one service's containers (or one container): ``?app=&service=&container=``."""
    q = request.query_params
    app, service, container = q.get("app", ""), q.get("service", ""), q.get("container", "")
    lines: list[tuple[str, str]] = []
    if app and service:
        async for chunk in c.containers.logs(cluster, app, service, container, tail=LOG_TAIL):
            text = chunk.data.decode("utf-8", "replace")
            lines += [(chunk.container, line) for line in text.splitlines()]
    services = [] if app and service else views.service_rows(await c.services.list(cluster))
    return {"app": app, "service": service, "container": container, "lines": lines[-LOG_TAIL:],
            "services": services}


LOADERS: dict[str, Loader] = {
    "nodes": _nodes, "applications": _applications, "services": _services, "containers": _containers,
    "releases": _releases, "routes": _routes, "events": _events, "logs": _logs,
}


def _who(me: api_pb2.WhoAmIResponse) -> dict[str, Any]:
    """Who is signed in, and whether the deploy form is theirs to use (the API's answer)."""
    return {"me": f"{me.token.meta.name} ({me.token.role})",
            "may_deploy": views.may("deploy", me.allowed) or views.may("update", me.allowed)}


def routes(api: Loopback) -> list[Route]:
    async def login_form(request: Request) -> Response:
        return templates.TemplateResponse(request, "login.html", {"error": ""})

    async def clusters(request: Request) -> Response:
        token = token_of(request)
        if not token:
            return sign_in_again(request)
        note = ""
        try:
            found = list(await api.client(token).clusters.list())
        except errors.PermissionDenied as e:  # a token scoped to clusters: it opens them by name
            found, note = [], str(e)
        except errors.CcsError as e:
            return failed(request, e)
        return page(request, "clusters", {"cluster": "", "current": "clusters", "note": note,
                                          "rows": views.cluster_rows(found, time.time())})

    async def open_cluster(request: Request) -> Response:
        name = request.query_params.get("cluster", "").strip()
        if not name or not all(ch.isalnum() or ch == "-" for ch in name):
            return failed(request, errors.InvalidArgument(f"cluster: {name!r} is not a cluster name"))
        return RedirectResponse(f"/console/c/{name}/applications", status_code=303)

    async def cluster_page(request: Request) -> Response:
        token = token_of(request)
        if not token:
            return sign_in_again(request)
        cluster, name = request.path_params["cluster"], request.path_params["page"]
        loader = LOADERS.get(name)
        if loader is None:
            return failed(request, errors.NotFound(f"page: no page {name!r}; one of {', '.join(views.PAGES)}"))
        client = api.client(token)
        try:
            data, me = await asyncio.gather(loader(client, cluster, request, time.time()),
                                            client.tokens.whoami(cluster))
        except errors.CcsError as e:
            return failed(request, e)
        url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return page(request, name, {"cluster": cluster, "current": name, "pages": views.PAGES, "url": url,
                                    **_who(me), **data})

    async def deploy_form(request: Request) -> Response:
        token = token_of(request)
        if not token:
            return sign_in_again(request)
        cluster, name = request.path_params["cluster"], request.query_params.get("app", "")
        try:
            me = await api.client(token).tokens.whoami(cluster, name)
        except errors.CcsError as e:
            return failed(request, e)
        return page(request, "deploy", {"cluster": cluster, "current": "deploy", "pages": views.PAGES,
                                        "name": name, **_who(me)})

    async def home(request: Request) -> Response:
        return RedirectResponse("/console/clusters", status_code=303)

    return [
        Route("/console", home), Route("/console/", home),
        Route("/console/login", login_form, methods=["GET"]),
        Route("/console/clusters", clusters),
        Route("/console/open", open_cluster, methods=["GET"]),
        Route("/console/c/{cluster}/deploy", deploy_form, methods=["GET"]),
        Route("/console/c/{cluster}/{page}", cluster_page, methods=["GET"]),
    ]
