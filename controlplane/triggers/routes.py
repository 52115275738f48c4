"""The triggers' HTTPS routes (mounted on the port of :mod:`controlplane.http.server`).

- ``POST /v1/triggers/{cluster}/{app}/{name}``: a signed call (:mod:`.invoke` says in which
  order it is checked). 200 with ``{"trigger", "action", "delivery", "result", "release",
  "revision", "status_url", "message"}``; 400/401/403/404/409/429/503 with ``{"error"}``
  (an action the API refuses answers the status its gRPC code maps to,
  ``controlplane.grpc_errors.HTTP_STATUS``).
- ``GET /v1/status/{cluster}/{app}/{release}/{token}``: the release's phase as JSON. The token
  is an HMAC the server made for that release (:func:`.invoke.status_token`): the URL is the
  credential, like a pre-signed URL, so a CI job can poll it with plain curl; it shows one
  release's phase and progress, and nothing else. A wrong token answers 404, as an unknown
  release does, so a guess learns nothing.
"""

from __future__ import annotations

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ccs.models import phase_name
from ccs.release_phases import TERMINAL_PHASES
from ccs.v1 import resources_pb2 as pb
from controlplane.store import NotFound, StoreUnavailable, keys, reads
from controlplane.triggers.invoke import Invoker, Refused, action_name
from controlplane.triggers.rules import MAX_BODY
from controlplane.triggers.signature import DELIVERY

log = structlog.get_logger("ccs.triggers")


def _error(status: int, message: str, retry_after: float = 0.0) -> JSONResponse:
    headers = {"retry-after": str(max(1, round(retry_after)))} if status == 429 else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _peer(request: Request) -> str:
    client = request.client
    return f"{client.host}:{client.port}" if client else ""


def routes(invoker: Invoker) -> list[Route]:
    async def call(request: Request) -> Response:
        cluster, app, name = (request.path_params[k] for k in ("cluster", "app", "name"))
        size = request.headers.get("content-length", "")
        if size.isdigit() and int(size) > MAX_BODY:
            return _error(413, f"body: more than {MAX_BODY} bytes")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return _error(413, f"body: more than {MAX_BODY} bytes")
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            done = await invoker.signed_call(cluster, app, name, headers, body, _peer(request))
        except Refused as r:
            return _error(r.status, r.message, r.retry_after)
        except StoreUnavailable:
            return _error(503, "etcd is unavailable; try again")
        except Exception as e:  # logged with its stack; the caller gets the type only
            log.exception("trigger call failed", cluster=cluster, app=app, trigger=name)
            return _error(500, f"internal error: {type(e).__name__}")
        t, o = done.trigger, done.outcome
        return JSONResponse({"trigger": t.meta.name, "cluster": t.cluster, "application": t.application,
                             "action": action_name(t), "delivery": done.delivery, "result": o.result,
                             "release": o.release, "revision": o.revision, "status_url": done.status_url,
                             "message": o.message})

    async def status(request: Request) -> Response:
        cluster, app, release, token = (request.path_params[k] for k in ("cluster", "app", "release", "token"))
        unknown = f"no release {release} of {app} in cluster {cluster} for this token"
        if not (release.startswith("r") and release[1:].isdigit() and len(release) < 20 and DELIVERY.fullmatch(token)
                and invoker.check_status_token(cluster, app, release, token)):
            return _error(404, unknown)
        try:
            rel = await reads.get(invoker.store.etcd, keys.release(cluster, app, int(release[1:])), pb.Release,
                                  "release", release)
        except NotFound:
            return _error(404, unknown)
        except StoreUnavailable:
            return _error(503, "etcd is unavailable; try again")
        st = rel.status
        return JSONResponse({"cluster": cluster, "application": app, "release": release,
                             "phase": phase_name(st.phase), "done": st.phase in TERMINAL_PHASES,
                             "succeeded": st.phase == pb.RELEASE_PHASE_SUCCEEDED, "message": st.message,
                             "updated": st.updated, "total": st.total, "weight": st.weight,
                             "strategy": rel.spec.strategy})

    return [
        Route("/v1/triggers/{cluster}/{app}/{name}", call, methods=["POST"]),
        Route("/v1/status/{cluster}/{app}/{release}/{token}", status, methods=["GET"]),
    ]
