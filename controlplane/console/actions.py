"""The console's actions (POST): sign in and out, release controls, deploy and update.

Every action but sign-in needs the session cookie and its CSRF token (:mod:`.session`); the API
call itself is made with the signed-in token, so the access policy decides, and audits, as for
the CLI: a viewer's "confirm" is refused by the API with PERMISSION_DENIED, shown as a 403.
"""

from __future__ import annotations

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ccs import errors
from controlplane.console import session, views
from controlplane.console.api import Loopback
from controlplane.console.web import failed, flash, sign_in_again, templates, token_of

#: The largest Compose file the deploy form takes (the API has its own, larger limit).
MAX_TEMPLATE = 1 << 20
RELEASE_ACTIONS = ("shift", "confirm", "rollback", "promote", "abort")
STRATEGIES = ("", "rolling", "blue-green", "canary")


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _checked(request: Request) -> tuple[str, FormData]:
    """The session's token and the form, once the CSRF token matches; Refused otherwise."""
    token = token_of(request)
    if not token:
        raise Refused(401, "not signed in")
    form = await request.form(max_files=1, max_fields=20)
    submitted = request.headers.get(session.CSRF_HEADER) or str(form.get(session.CSRF_FIELD) or "")
    if not session.csrf_ok(token, submitted):
        raise Refused(403, "csrf: missing or wrong CSRF token; reload the page and try again")
    return token, form


async def _template(form: FormData) -> str:
    """The Compose file: the uploaded one if any, else the pasted text."""
    upload = form.get("compose_file")
    if isinstance(upload, UploadFile) and upload.filename:
        raw = await upload.read(MAX_TEMPLATE + 1)
        if len(raw) > MAX_TEMPLATE:
            raise Refused(413, f"compose_file: larger than {MAX_TEMPLATE} bytes")
        try:
            return raw.decode()
        except UnicodeDecodeError:
            raise Refused(400, "compose_file: not UTF-8 text") from None
    text = str(form.get("template") or "")
    if len(text) > MAX_TEMPLATE:
        raise Refused(413, f"template: larger than {MAX_TEMPLATE} bytes")
    if not text.strip():
        raise Refused(400, "template: paste a Compose file or choose one to upload")
    return text


def _name(form: FormData) -> str:
    name = str(form.get("name") or "").strip()
    if not name:
        raise Refused(400, "name: the application's name is required")
    return name


def _strategy(form: FormData) -> str:
    strategy = str(form.get("strategy") or "")
    if strategy not in STRATEGIES:
        raise Refused(400, f"strategy: {strategy!r} is not one of rolling, blue-green, canary")
    return strategy


def _params(form: FormData) -> dict[str, str]:
    try:
        return views.parse_params(str(form.get("params") or ""))
    except ValueError as e:
        raise Refused(400, str(e)) from None


def routes(api: Loopback, *, secure: bool) -> list[Route]:
    async def login(request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=5)
        token = str(form.get("token") or "").strip()
        why = session.plausible_token(token)
        if why is None:
            try:
                await api.client(token).clusters.list()
            except errors.Unauthenticated:
                why = "token: not accepted (unknown, expired or revoked)"
            except errors.PermissionDenied:
                pass  # authenticated; a token scoped to some clusters may not list them all
            except errors.CcsError as e:
                why = f"the API answered {type(e).__name__}: {e}"
        if why is not None:
            return templates.TemplateResponse(request, "login.html", {"error": why}, status_code=401)
        response = RedirectResponse("/console/clusters", status_code=303)
        response.headers["set-cookie"] = session.cookie_header(token, secure=secure)
        return response

    async def logout(request: Request) -> Response:
        try:
            await _checked(request)
        except Refused as r:
            return flash(request, r.args[0], r.status, "error")
        response = RedirectResponse("/console/login", status_code=303)
        response.headers["set-cookie"] = session.cookie_header("", secure=secure, max_age=0)
        return response

    async def release(request: Request) -> Response:
        cluster, app, action = (request.path_params[k] for k in ("cluster", "app", "action"))
        try:
            token, form = await _checked(request)
            if action not in RELEASE_ACTIONS:
                raise Refused(404, f"action: {action!r} is not one of {', '.join(RELEASE_ACTIONS)}")
            client = api.client(token)
            if action == "shift":
                try:
                    weight = views.parse_weight(str(form.get("weight") or ""))
                except ValueError as e:
                    raise Refused(400, str(e)) from None
                r = await client.releases.shift(cluster, app, weight)
            else:
                r = await getattr(client.releases, action)(cluster, app)
        except Refused as ref:
            return sign_in_again(request) if ref.status == 401 else flash(request, ref.args[0], ref.status, "error")
        except errors.CcsError as e:
            return failed(request, e)
        v = views.release_view(r)
        return flash(request, f"{app}: release r{v.number} {action} done; phase {v.phase}, weight {v.weight}")

    async def deploy(request: Request) -> Response:
        """``diff``: what the deploy or update would do (the API's dry run); ``apply``: do it."""
        cluster, step = request.path_params["cluster"], request.path_params["step"]
        try:
            token, form = await _checked(request)
            if step not in ("diff", "apply"):
                raise Refused(404, f"step: {step!r} is not diff or apply")
            name, template, strategy = _name(form), await _template(form), _strategy(form)
            params = _params(form)
            client = api.client(token)
            try:
                await client.applications.get(cluster, name)
                exists = True
            except errors.NotFound:
                exists = False
            if step == "apply":
                if exists:
                    app = await client.applications.update(cluster, name, template=template, env=params,
                                                              strategy=strategy)
                    done = f"{name}: updated to revision {app.revision}"
                else:
                    app = await client.applications.create(cluster, name, template, env=params)
                    done = f"{name}: deployed (revision {app.revision})"
                return flash(request, done)
            if exists:
                resp = await client.applications.diff(cluster, name, template=template, env=params,
                                                         strategy=strategy)
                lines = views.diff_lines(resp)
            else:
                app = await client.applications.create(cluster, name, template, env=params, dry_run=True)
                lines = views.created_lines(app)
        except Refused as ref:
            return sign_in_again(request) if ref.status == 401 else flash(request, ref.args[0], ref.status, "error")
        except errors.CcsError as e:
            return failed(request, e)
        return templates.TemplateResponse(request, "_diff.html", {
            "cluster": cluster, "name": name, "template": template, "strategy": strategy, "exists": exists,
            "params": str(form.get("params") or ""),
            "lines": lines, "csrf": session.csrf_token(token)})

    return [
        Route("/console/login", login, methods=["POST"]),
        Route("/console/logout", logout, methods=["POST"]),
        Route("/console/c/{cluster}/apps/{app}/release/{action}", release, methods=["POST"]),
        Route("/console/c/{cluster}/deploy/{step}", deploy, methods=["POST"]),
    ]
