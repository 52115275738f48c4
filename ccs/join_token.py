"""The join token's format: one definition for the server that issues it, the agent that
presents it and the CLI that prints it.

A token is ``CCSJOIN-2-<ca fingerprint>-<cluster>-<secret>``, as Swarm's
``SWMTKN-1-<ca digest>-<secret>``:

- ``<ca fingerprint>``: the SHA-256 of the DER of the CA that signs the API's serving
  certificate (64 hex digits). An agent holding only the token checks the server against it
  on first contact, before it sends the token: a server that cannot show that CA never sees
  the secret.
- ``<cluster>``: which cluster the token joins (a DNS label, so it may hold ``-``; the parts
  around it have fixed lengths, so it is unambiguous).
- ``<secret>``: 256 random bits (``secrets.token_urlsafe(32)``, 43 characters); the server
  compares it with the stored one in constant time.

Optionally the token ends with the API servers to join through, ``@a:7443,b:7443`` (host:port,
comma-separated; IPv6 hosts in brackets): an agent given the token alone then knows every replica
and fails over among them. A token without that suffix parses as before; the server compares only
cluster and secret (``stored()``), so the suffix never changes what the token admits. An agent of
the release before the suffix refuses such a token: cut ``@...`` off for it.

Tokens of the previous release (``CCSJOIN-<cluster>-<secret>``) carry no fingerprint. They
are recognised (``version == 1``) so that the server can refuse them with a reason rather
than as garbage: an agent given one could not check whom it talks to. The secret stays the
same across the format change, so ``ccs cluster join-token C`` prints the new form of the
same token and nothing has to be rotated. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PREFIX = "CCSJOIN-"
VERSION = 2
SECRET_LEN = 43  # secrets.token_urlsafe(32)
FINGERPRINT_LEN = 64
_HEX = re.compile(r"[0-9a-f]{64}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")
_CLUSTER = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_SERVER = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):[0-9]{1,5}")
SERVERS_SEP = "@"


class JoinTokenError(ValueError):
    """The text is not a join token; the message says what is wrong with it."""


@dataclass(frozen=True, slots=True)
class JoinToken:
    cluster: str
    secret: str
    ca_fingerprint: str = ""  # "" in a version-1 token
    version: int = VERSION
    servers: tuple[str, ...] = ()  # API servers (host:port) to join through; () when not given

    def render(self) -> str:
        if self.version == 1:
            return f"{PREFIX}{self.cluster}-{self.secret}"
        tail = SERVERS_SEP + ",".join(self.servers) if self.servers else ""
        return f"{PREFIX}{VERSION}-{self.ca_fingerprint}-{self.cluster}-{self.secret}{tail}"

    def stored(self) -> str:
        """What etcd keeps (the version-1 form: cluster and secret, no fingerprint), so the
        token follows the CA without being rewritten."""
        return f"{PREFIX}{self.cluster}-{self.secret}"


def parse(text: str) -> JoinToken:
    """A token of either version; JoinTokenError says why the text is not one."""
    text = text.strip()
    if not text.startswith(PREFIX):
        raise JoinTokenError(f"a join token starts with {PREFIX!r}")
    text, sep, tail = text.partition(SERVERS_SEP)
    servers = parse_servers(tail, "the server list after '@'") if sep else ()
    body = text[len(PREFIX):]
    if len(body) < SECRET_LEN + 2 or body[-SECRET_LEN - 1] != "-":
        raise JoinTokenError("too short or malformed: expected CCSJOIN-2-<ca fingerprint>-<cluster>-<secret>")
    secret = body[-SECRET_LEN:]
    if not _SECRET.fullmatch(secret):
        raise JoinTokenError("the secret part is malformed")
    head = body[: -SECRET_LEN - 1]
    fp_part = head[2 : 2 + FINGERPRINT_LEN]
    dash_after_fp = head[2 + FINGERPRINT_LEN : 3 + FINGERPRINT_LEN] == "-"
    if head.startswith(f"{VERSION}-") and _HEX.fullmatch(fp_part) and dash_after_fp:
        cluster = head[3 + FINGERPRINT_LEN :]
        if _CLUSTER.fullmatch(cluster):
            return JoinToken(cluster, secret, fp_part, VERSION, servers)
    if _CLUSTER.fullmatch(head):
        if servers:
            raise JoinTokenError("a token of the previous format (no CA fingerprint) carries no server list")
        return JoinToken(head, secret, "", 1)
    raise JoinTokenError("the cluster part is not a valid cluster name")


def parse_servers(text: str, what: str = "servers") -> tuple[str, ...]:
    """``a:7443,b:7443`` -> ("a:7443", "b:7443"), duplicates dropped, order kept; JoinTokenError
    names the entry that is not host:port."""
    out: list[str] = []
    for item in text.split(","):
        item = item.strip()
        if not _SERVER.fullmatch(item) or not 0 < int(item.rsplit(":", 1)[1]) < 65536:
            raise JoinTokenError(f"{what}: {item[:80]!r} is not host:port")
        if item not in out:
            out.append(item)
    return tuple(out)


def cluster_of(text: str) -> str | None:
    """The cluster a token names, or None when it is not a token."""
    try:
        return parse(text).cluster
    except JoinTokenError:
        return None
