"""The registry login an assignment's image pull needs, added on its way out (as mounted values).

The hub builds session messages from the informer cache, which holds no credentials (logins are
sealed in the secrets store, outside the cluster's subtree). Just before a message goes down a
node's stream, :func:`read` and :func:`fill` (called by :mod:`.outgoing`) set
``Assignment.pull_auth`` on each ACTION_UPDATE assignment whose image names a registry the
cluster has a login for: only the agent that will pull the image receives the password, beside
that one assignment, and nothing stores it — not the container record, not the assignment
set the hub keeps, not an event. The agent passes it to the Engine's pull and nowhere else. The logins come
from a cache (:class:`controlplane.registry.login_cache.LoginCache`), not from etcd per message.

An image without a registry host (``local/busybox:1``) gets no login (a password is only ever
sent to the registry it belongs to): it is pulled with the node's own ``docker login``, if any, as before. A login that
cannot be read (damaged record, lost data key) is logged by host, never its value, and the pull
goes without it (the Engine's refusal then names the registry in the container's status).
"""

from __future__ import annotations

from typing import Protocol

import structlog

from ccs.image_refs import parse_image
from ccs.v1 import agent_pb2
from controlplane.registry.logins import Login
from controlplane.store import Corrupt

log = structlog.get_logger("ccs.dispatcher")

UPDATE = agent_pb2.Assignment.ACTION_UPDATE


def login_host(image: str, registry_login: str) -> str:
    """The login a pull of ``image`` uses: the one of the image's own registry host; "" for an
    image without a registry or that does not parse. A password goes to its own registry only:
    an ``x-ccs.registry`` naming another host gives no login (the deploy refuses such an image
    already; this is the second lock, so a record written otherwise cannot leak one)."""
    try:
        host = parse_image(image).host
    except ValueError:
        return ""
    return host if not registry_login or registry_login == host else ""


class LoginSource(Protocol):
    """Where logins are read: :class:`controlplane.registry.login_cache.LoginCache` on a server."""

    async def get(self, cluster: str, host: str) -> Login | None: ...


async def read(logins: LoginSource | None, cluster: str, msg: agent_pb2.SessionMessage) -> dict[str, Login]:
    """Container id -> the login its pull needs, for the ACTION_UPDATE assignments of ``msg``;
    each host asked once. Nothing is read for a message without a registry image."""
    wanted = {a.container.meta.id: host for a in msg.assignments if a.action == UPDATE
              and (host := login_host(a.container.spec.image, a.container.spec.registry_login))}
    if logins is None or not wanted:
        return {}
    found: dict[str, Login | None] = {}
    for host in sorted(set(wanted.values())):
        try:
            found[host] = await logins.get(cluster, host)
        except Corrupt as exc:
            log.warning("a registry login cannot be read", cluster=cluster, host=host, error=str(exc)[:300])
            found[host] = None
    return {cid: login for cid, host in wanted.items() if (login := found[host]) is not None}


def fill(out: agent_pb2.SessionMessage, found: dict[str, Login]) -> None:
    """Set ``pull_auth`` on the assignments of ``out`` (the caller's copy) that :func:`read` found one for."""
    for a in out.assignments:
        login = found.get(a.container.meta.id)
        if a.action == UPDATE and login is not None:
            a.pull_auth.CopyFrom(agent_pb2.PullAuth(registry=login.host, username=login.username,
                                                    password=login.password))
