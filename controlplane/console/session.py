"""The console's sign-in cookie and its CSRF token. Pure: no clock, no I/O.

The cookie holds the API token itself (``HttpOnly``: no script reads it; ``Secure`` on HTTPS;
``SameSite=Strict``: no other site's page sends it; ``Path=/console``). Why the token and not a
server-side session id: an API server holds no state a restart or another replica could lose,
and the token is already the credential every call is checked with, revocation and expiry
included, so signing out everywhere is ``ccs token revoke``.

CSRF: every POST but the sign-in carries ``X-CSRF-Token`` (htmx sends it from ``hx-headers``) or
a ``csrf`` form field equal to an HMAC of the cookie's token. A page of another site can neither
read the cookie nor the page that holds the value, so it cannot forge the field (the signed
double-submit pattern; SameSite=Strict is the second line).
"""

from __future__ import annotations

import hashlib
import hmac

COOKIE = "ccs_console"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
PATH = "/console"
#: A session cookie's lifetime (seconds); the token's own expiry still applies.
MAX_AGE = 12 * 3600
_CSRF_KEY = b"ccs-console-csrf-v1"


def csrf_token(api_token: str) -> str:
    """The CSRF value for the session of ``api_token`` (stable for the token's life)."""
    return hmac.new(_CSRF_KEY, api_token.encode(), hashlib.sha256).hexdigest()


def csrf_ok(api_token: str, submitted: str) -> bool:
    return bool(api_token) and bool(submitted) and hmac.compare_digest(csrf_token(api_token), submitted)


def cookie_header(api_token: str, *, secure: bool, max_age: int = MAX_AGE) -> str:
    """The ``Set-Cookie`` value that signs in (``api_token`` empty: signs out)."""
    parts = [f"{COOKIE}={api_token}", f"Path={PATH}", "HttpOnly", "SameSite=Strict", f"Max-Age={max_age}"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def plausible_token(text: str) -> str | None:
    """Why ``text`` cannot be an API token, or None (tokens are URL-safe, no spaces)."""
    if not text:
        return "token: empty"
    if len(text) > 512:
        return "token: longer than 512 characters"
    if not all(c.isalnum() or c in "-_." for c in text):
        return "token: only letters, digits, '-', '_' and '.' can be in a token"
    return None
