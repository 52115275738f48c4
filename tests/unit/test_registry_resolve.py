"""The digest lookup's HTTP exchange (controlplane.registry.resolve), against httpx's in-memory
transport: URLs, Accept headers, which auth answers which challenge, and what a refusal says.
The same code against the real Debian registry: tests/integration/test_registry.py."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import httpx
import pytest

from ccs.image_refs import parse_image
from controlplane.registry.logins import Login
from controlplane.registry.resolve import ACCEPT, ResolveError, Resolver, manifest_url, parse_challenge, schemes

D = "sha256:" + "cd" * 32
LOGIN = Login("r.example.com", "ci", "pa55-word", "", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
BASIC = "Basic " + base64.b64encode(b"ci:pa55-word").decode()


def resolver(handler: httpx.MockTransport) -> Resolver:
    return Resolver(transport=handler)


def test_urls_and_schemes() -> None:
    ref = parse_image("r.example.com/shop/web:2")
    assert manifest_url("https", ref) == "https://r.example.com/v2/shop/web/manifests/2"
    assert manifest_url("https", parse_image("r.example.com/web")).endswith("/manifests/latest")
    assert schemes("r.example.com") == ("https",)
    assert schemes("127.0.0.1:5000") == ("https", "http")
    assert schemes("10.77.0.1:5000", insecure=True) == ("https", "http")


def test_challenges_parse() -> None:
    assert parse_challenge('Bearer realm="https://auth.example.com/token",service="registry",'
                           'scope="repository:web:pull"') == (
        "bearer", {"realm": "https://auth.example.com/token", "service": "registry", "scope": "repository:web:pull"})
    assert parse_challenge('Basic realm="Registry Realm"') == ("basic", {"realm": "Registry Realm"})
    assert parse_challenge("") == ("", {})


async def test_anonymous_head_gives_the_digest_header() -> None:
    seen: list[httpx.Request] = []

    def handle(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, headers={"Docker-Content-Digest": D})

    assert await resolver(httpx.MockTransport(handle)).digest(parse_image("r.example.com/web:2"), None) == D
    assert seen[0].method == "HEAD" and seen[0].headers["accept"] == ACCEPT
    assert "authorization" not in seen[0].headers


async def test_basic_challenge_is_answered_with_the_login() -> None:
    def handle(req: httpx.Request) -> httpx.Response:
        if req.headers.get("authorization") != BASIC:
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="Registry Realm"'})
        return httpx.Response(200, headers={"Docker-Content-Digest": D})

    assert await resolver(httpx.MockTransport(handle)).digest(parse_image("r.example.com/web:2"), LOGIN) == D


async def test_bearer_challenge_gets_a_pull_token_with_the_login() -> None:
    asked: list[httpx.Request] = []

    def handle(req: httpx.Request) -> httpx.Response:
        if req.url.host == "auth.example.com":
            asked.append(req)
            return httpx.Response(200, json={"token": "tok-123"})
        if req.headers.get("authorization") != "Bearer tok-123":
            return httpx.Response(401, headers={"WWW-Authenticate":
                                                'Bearer realm="https://auth.example.com/token",service="reg"'})
        return httpx.Response(200, headers={"Docker-Content-Digest": D})

    assert await resolver(httpx.MockTransport(handle)).digest(parse_image("r.example.com/shop/web:2"), LOGIN) == D
    assert asked[0].url.params["scope"] == "repository:shop/web:pull"
    assert asked[0].url.params["service"] == "reg"
    assert asked[0].headers["authorization"] == BASIC


async def test_no_digest_header_means_the_body_is_hashed() -> None:
    body = b'{"schemaVersion": 2}'

    def handle(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"" if req.method == "HEAD" else body)

    got = await resolver(httpx.MockTransport(handle)).digest(parse_image("r.example.com/web:2"), None)
    assert got == "sha256:" + hashlib.sha256(body).hexdigest()


async def test_loopback_falls_back_to_plain_http() -> None:
    def handle(req: httpx.Request) -> httpx.Response:
        if req.url.scheme == "https":
            raise httpx.ConnectError("TLS handshake failed")
        return httpx.Response(200, headers={"Docker-Content-Digest": D})

    assert await resolver(httpx.MockTransport(handle)).digest(parse_image("127.0.0.1:5000/web:2"), None) == D


@pytest.mark.parametrize(("status", "login", "says"), [
    (404, None, "r.example.com/web:2 is not in registry r.example.com"),
    (401, None, "needs credentials and the cluster has no login for it"),
    (401, LOGIN, "refused the credentials of login r.example.com (user 'ci')"),
    (500, None, "answered HTTP 500"),
])
async def test_refusals_say_why_and_never_the_password(status: int, login: Login | None, says: str) -> None:
    def handle(req: httpx.Request) -> httpx.Response:
        headers = {"WWW-Authenticate": 'Basic realm="r"'} if status == 401 else {}
        return httpx.Response(status, headers=headers)

    with pytest.raises(ResolveError) as exc:
        await resolver(httpx.MockTransport(handle)).digest(parse_image("r.example.com/web:2"), login)
    assert says in str(exc.value)
    assert "pa55-word" not in str(exc.value)
    assert "pa55-word" not in repr(login)


async def test_unreachable_registry_names_it() -> None:
    def handle(req: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with pytest.raises(ResolveError, match=r"cannot reach registry r\.example\.com"):
        await resolver(httpx.MockTransport(handle)).digest(parse_image("r.example.com/web:2"), None)
