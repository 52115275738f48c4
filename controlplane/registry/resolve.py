"""A tag's digest, from the registry's HTTP API (Docker Registry HTTP API v2, OCI distribution).

``HEAD /v2/<name>/manifests/<tag>`` with the Accept headers of every manifest kind the Engine
pulls (OCI index, Docker manifest list, Docker v2 and OCI manifests), so a multi-platform tag
answers its index's digest — the one the Engine records and pulls by, whatever the node's
platform — and a registry answers without converting to the old schema 1. The digest is the
``Docker-Content-Digest`` header; a registry that does not send it on HEAD is asked with GET and
the body's SHA-256 is the digest (the manifest bytes are what the digest names).

Auth, as the Engine does it: the first request goes without credentials; a 401 names the scheme
in ``WWW-Authenticate``. ``Basic`` (Distribution with htpasswd) repeats the request with the
login; ``Bearer`` (Docker Hub, Harbor, GitLab, Distribution with token auth) asks the realm for
a token for ``repository:<name>:pull`` (with the login as Basic auth when there is one) and
repeats with it. The password goes only into an ``Authorization`` header, never into a URL, a
log line or an error message.

TLS: HTTPS, verified against the system's roots, or against the login's CA (``ccs registry login
--ca-file``) when it has one. A loopback registry (``localhost``, 127.0.0.0/8, ``[::1]``) is tried
over HTTPS and, when that cannot connect, over plain HTTP — the Engine treats those as insecure
registries by default, and the test registry runs so. A login made with ``--insecure`` allows the
same for its registry (what an Engine started with ``--insecure-registry HOST`` does).

Why httpx: asyncio-native (a lookup does not take a thread, as ``requests`` would), per-call
TLS contexts and timeouts, maintained, and a transport seam (``transport=``) for unit tests.
"""

from __future__ import annotations

import base64
import hashlib
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from ccs.image_refs import ImageRef, is_loopback
from controlplane.registry.logins import Login

ACCEPT = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
))
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
TIMEOUT = 10.0


class ResolveError(Exception):
    """The tag has no digest to be had; the message says why (never a credential)."""


def manifest_url(scheme: str, ref: ImageRef) -> str:
    return f"{scheme}://{ref.host}/v2/{ref.path}/manifests/{ref.reference}"


def schemes(host: str, insecure: bool = False) -> tuple[str, ...]:
    """HTTPS; then plain HTTP for a loopback registry or a login marked insecure."""
    return ("https", "http") if insecure or is_loopback(host) else ("https",)


_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``WWW-Authenticate: Bearer realm="...",service="...",scope="..."`` -> ("bearer", params)."""
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
                            for m in _PARAM.finditer(rest)}


def basic(login: Login) -> str:
    return "Basic " + base64.b64encode(f"{login.username}:{login.password}".encode()).decode()


def token_request(params: Mapping[str, str], ref: ImageRef) -> tuple[str, dict[str, str]]:
    """The realm to ask and its query for a pull token of ``ref``'s repository."""
    query = {"scope": f"repository:{ref.path}:pull"}
    if params.get("service"):
        query["service"] = params["service"]
    return params["realm"], query


@dataclass
class Resolver:
    """Resolves tags; ``transport`` replaces the network in unit tests."""

    timeout: float = TIMEOUT
    transport: httpx.AsyncBaseTransport | None = None

    def _client(self, login: Login | None) -> httpx.AsyncClient:
        verify: ssl.SSLContext = ssl.create_default_context()
        if login is not None and login.ca_pem:
            verify = ssl.create_default_context(cadata=login.ca_pem)
        return httpx.AsyncClient(verify=verify, timeout=self.timeout, transport=self.transport,
                                 follow_redirects=True)

    async def digest(self, ref: ImageRef, login: Login | None) -> str:
        """The digest ``ref``'s tag names now. ResolveError naming the registry and why."""
        tried: list[str] = []
        for scheme in schemes(ref.host, login is not None and login.insecure):
            try:
                async with self._client(login) as client:
                    return await self._digest(client, scheme, ref, login)
            except httpx.ConnectError as exc:
                tried.append(f"{scheme}: {_short(exc)}")
            except httpx.HTTPError as exc:
                raise ResolveError(f"registry {ref.host}: {_short(exc)}") from None
        raise ResolveError(f"cannot reach registry {ref.host} ({'; '.join(tried)})")

    async def _digest(self, client: httpx.AsyncClient, scheme: str, ref: ImageRef, login: Login | None) -> str:
        url = manifest_url(scheme, ref)
        headers = {"Accept": ACCEPT}
        r = await client.head(url, headers=headers)
        if r.status_code == 401:
            headers["Authorization"] = await self._authorization(client, r, ref, login)
            r = await client.head(url, headers=headers)
        if r.status_code == 200 and not DIGEST_RE.match(r.headers.get("docker-content-digest", "")):
            r = await client.get(url, headers=headers)
            if r.status_code == 200:
                return "sha256:" + hashlib.sha256(r.content).hexdigest()
        if r.status_code == 200:
            return str(r.headers["docker-content-digest"])
        raise ResolveError(_refusal(r.status_code, ref, login))

    async def _authorization(self, client: httpx.AsyncClient, r: httpx.Response, ref: ImageRef,
                             login: Login | None) -> str:
        scheme, params = parse_challenge(r.headers.get("www-authenticate", ""))
        if scheme == "basic":
            if login is None:
                raise ResolveError(_no_login(ref))
            return basic(login)
        if scheme != "bearer" or not params.get("realm"):
            raise ResolveError(f"registry {ref.host} asks for an authentication ccs does not speak "
                               f"({scheme or 'none given'}; Basic and Bearer are)")
        realm, query = token_request(params, ref)
        auth = {"Authorization": basic(login)} if login is not None else {}
        t = await client.get(realm, params=query, headers=auth)
        if t.status_code in (401, 403):
            raise ResolveError(_no_login(ref) if login is None else
                               f"registry {ref.host} refused the credentials of login {login.host} "
                               f"(user {login.username!r}) for a pull token")
        if t.status_code != 200:
            raise ResolveError(f"registry {ref.host}: its token service answered HTTP {t.status_code}")
        try:
            doc = t.json()
            token = doc.get("token") or doc.get("access_token")
        except ValueError:
            token = None
        if not isinstance(token, str) or not token:
            raise ResolveError(f"registry {ref.host}: its token service answered no token")
        return f"Bearer {token}"


def _no_login(ref: ImageRef) -> str:
    return (f"registry {ref.host} needs credentials and the cluster has no login for it "
            f"(ccs registry login -c CLUSTER {ref.host} -u USER --password-stdin)")


def _refusal(status: int, ref: ImageRef, login: Login | None) -> str:
    if status == 404:
        return f"{ref.name}:{ref.reference} is not in registry {ref.host} (no such repository or tag)"
    if status in (401, 403):
        if login is None:
            return _no_login(ref)
        return f"registry {ref.host} refused the credentials of login {login.host} (user {login.username!r})"
    return f"registry {ref.host} answered HTTP {status} for {ref.name}:{ref.reference}"


def _short(exc: Exception) -> str:
    """An httpx error's text, cut; it holds the URL (host and path), never a header."""
    return (str(exc) or type(exc).__name__)[:200]
