"""Whose credentials ``--build --push-to`` pushes with: the cluster's registry login, else the
local ``docker login``.

Issue 13 asks that the push go "with the cluster's credentials": the login an operator stored
with ``ccs registry login`` (encrypted at rest, the one the nodes pull with). The CLI asks the
server for it per registry host (``RegistryService/GetPushCredential``: the ``push`` permission,
audited, TLS only; ``controlplane.api.registry`` says why a credential handed to the client and
not a push made by the server) and hands it to the docker SDK's push as ``auth_config``: in this
process's memory only, never written to a docker config file, never printed (``PushAuth``'s repr
leaves the password out). When the cluster has no login for the host (NOT_FOUND), or the server
cannot give one (an older server without the call; a plaintext server, which refuses to send a
password in clear), the push uses the local ``docker login`` as ``docker push`` would, and the
progress says which was used and why.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import grpc

from ccs import errors
from ccs.v1 import api_pb2

__all__ = ["PushAuth", "push_auths"]

Fetch = Callable[[str], Awaitable[api_pb2.PushCredential]]


@dataclass(frozen=True)
class PushAuth:
    """How the pushes to one registry host authenticate: the cluster's login (``username`` set)
    or the local docker login (``why`` says why not the cluster's)."""

    host: str
    username: str = ""
    password: str = field(default="", repr=False)
    why: str = ""

    def auth_config(self) -> dict[str, str] | None:
        """The docker SDK's ``auth_config`` for the push; None: the SDK reads the local config."""
        return {"username": self.username, "password": self.password} if self.username else None

    def describe(self) -> str:
        if self.username:
            return f"pushing to {self.host} with the cluster's registry login (user {self.username})"
        return f"pushing to {self.host} with the local docker login ({self.why})"


async def push_auths(hosts: Iterable[str], fetch: Fetch | None) -> dict[str, PushAuth]:
    """Each host's ``PushAuth``: the cluster's login when it has one, else the local login.
    A refusal that is not "no login here" (no permission, a bad host) is raised: a push must not
    quietly go with other credentials than the ones the caller was refused."""
    out: dict[str, PushAuth] = {}
    for host in sorted(set(hosts)):
        if fetch is None:
            out[host] = PushAuth(host, why="no cluster to ask")
            continue
        try:
            cred = await fetch(host)
        except errors.NotFound:
            out[host] = PushAuth(host, why=f"the cluster has no login for {host}")
            continue
        except errors.FailedPrecondition as exc:  # a plaintext server never sends a password
            out[host] = PushAuth(host, why=f"the server did not give the cluster's: {exc.message}")
            continue
        except errors.CcsError as exc:
            if exc.code is grpc.StatusCode.UNIMPLEMENTED:
                out[host] = PushAuth(host, why="the server is older and gives no push credentials")
                continue
            raise
        out[host] = PushAuth(host, cred.username, cred.password)
    return out
