"""A session message on its way down a node's stream: the values it mounts and the logins its pulls need.

The hub queues one message object to every session of a node (and keeps the complete set it
sent), so what only this stream may carry is added to a copy: at most one copy per message,
made only when there is something to add (a message that mounts nothing and pulls from no
registry with a login goes as it is). What is added and why it never leaves this copy:
:mod:`.mounted_files` (secret and config values, route certificates) and :mod:`.pull_auth`
(registry logins).
"""

from __future__ import annotations

from ccs.v1 import agent_pb2
from controlplane.secrets.store import SecretStore

from . import mounted_files, pull_auth


def _copy(msg: agent_pb2.SessionMessage) -> agent_pb2.SessionMessage:
    out = agent_pb2.SessionMessage()
    out.CopyFrom(msg)
    return out


async def attach(files: SecretStore | None, logins: pull_auth.LoginSource | None, cluster: str,
                 msg: agent_pb2.SessionMessage) -> agent_pb2.SessionMessage:
    """``msg`` with its mounted values and pull logins: a copy when it has any, ``msg`` itself otherwise."""
    values = await mounted_files.read(files, cluster, msg)
    found = await pull_auth.read(logins, cluster, msg)
    if not found and not any(v is not None for v in values.values()):
        return msg
    out = _copy(msg)
    mounted_files.fill(out, values)
    pull_auth.fill(out, found)
    return out
