"""What every console route shares: the templates, who is signed in, and error answers.

Jinja2 (through starlette's ``Jinja2Templates``) renders the pages with autoescaping on: every
name, label and message the API returns is escaped, so a hostile container name cannot script
the console.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from ccs import errors
from controlplane.console import session
from controlplane.console.api import http_status

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


def token_of(request: Request) -> str:
    return request.cookies.get(session.COOKIE, "")


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """A whole page, or only its fragment when htmx asks (a live refresh or an action)."""
    token = token_of(request)
    ctx = {"csrf": session.csrf_token(token) if token else "", "fragment": f"_{name}.html", **context}
    return templates.TemplateResponse(request, f"_{name}.html" if is_htmx(request) else "page.html", ctx,
                                      status_code=status)


def flash(request: Request, message: str, status: int = 200, kind: str = "ok") -> HTMLResponse:
    return templates.TemplateResponse(request, "_flash.html", {"message": message, "kind": kind},
                                      status_code=status)


def sign_in_again(request: Request) -> Response:
    if is_htmx(request):  # htmx follows this header with a full navigation
        return Response(status_code=401, headers={"hx-redirect": "/console/login"})
    return RedirectResponse("/console/login", status_code=303)


def failed(request: Request, e: errors.CcsError) -> Response:
    """An API refusal shown where the answer goes, with the API's own message and status."""
    status = http_status(e)
    if status == 401:
        return sign_in_again(request)
    return flash(request, f"{type(e).__name__}: {e}", status, "error")
