"""The values of the secrets and configs an assignment's container mounts, added on its way out.

The hub builds session messages from the informer cache, which holds no values (they live
outside the cluster's subtree, encrypted). Just before a message goes down a node's stream,
:func:`read` and :func:`fill` (called by :mod:`.outgoing`) add to each ACTION_UPDATE
assignment the decrypted values its container's spec names (``spec.secrets`` then
``spec.configs``, as (kind, name, version)), so an agent receives exactly the values of the
containers assigned to it and nothing else. Versions never change once stored, so the
plaintexts of one message are read once each.

The same goes for the certificates of HTTPS routes: a message carrying the routing table gets
the PEM (chain and key) of every secret version a route names (``RouteEntry.tls``) as
``route_certificates``. Routers run on every node and each serves every route, so every node
that gets the table gets them; they are never in the table itself (which ``ccs route ls`` and
``-o json`` show).

A value that cannot be read (deleted meanwhile, it does not decrypt, or its data key is gone:
all Corrupt, see ``SecretStore.value``) leaves the assignment
without it; the agent then fails that container with a message naming the secret, never its
value (nodeagent/mounted_files.py), and the rest of the message goes through.
"""

from __future__ import annotations

import structlog

from ccs.v1 import agent_pb2
from controlplane.secrets.store import SecretStore
from controlplane.store import Corrupt, NotFound

log = structlog.get_logger("ccs.dispatcher")

UPDATE = agent_pb2.Assignment.ACTION_UPDATE


Values = dict[tuple[str, str, int], bytes | None]  # (kind, name, version) -> plaintext, None: unreadable


def _certificates(msg: agent_pb2.SessionMessage) -> list[tuple[str, int]]:
    """(secret, version) of the certificate each routed domain uses: its newest one named."""
    newest: dict[tuple[str, str], int] = {}  # (domain, secret) -> version: what the routers use
    for e in msg.routing.routes:
        if e.HasField("tls"):
            named = (e.domain.lower(), e.tls.secret)
            newest[named] = max(newest.get(named, 0), e.tls.version)
    return sorted({(secret, version) for (_, secret), version in newest.items()})


async def read(store: SecretStore | None, cluster: str, msg: agent_pb2.SessionMessage) -> Values:
    """The values ``msg`` mounts (assignments' files, route certificates), each read once;
    empty when it mounts none. Versions never change once stored."""
    wanted = [("secret", name, version) for name, version in _certificates(msg)]
    for a in msg.assignments:
        if a.action == UPDATE:
            wanted += [(kind, ref.name, ref.version) for kind, refs in
                       (("secret", a.container.spec.secrets), ("config", a.container.spec.configs)) for ref in refs]
    values: Values = {}
    if store is None:
        return values
    for key in wanted:
        if key not in values:
            values[key] = await _read(store, cluster, *key)
    return values


def fill(out: agent_pb2.SessionMessage, values: Values) -> None:
    """Add to ``out`` (the caller's copy) the files and route certificates :func:`read` found."""
    for a in out.assignments:
        if a.action != UPDATE:
            continue
        spec = a.container.spec
        for kind, refs in (("secret", spec.secrets), ("config", spec.configs)):
            for ref in refs:
                data = values.get((kind, ref.name, ref.version))
                if data is not None:
                    a.files.append(agent_pb2.MountedFile(kind=kind, name=ref.name, version=ref.version, data=data))
    for name, version in _certificates(out):
        data = values.get(("secret", name, version))
        if data is not None:  # else the routers skip that domain, naming it (router/config.py)
            out.route_certificates.append(agent_pb2.MountedFile(kind="secret", name=name, version=version, data=data))


async def _read(store: SecretStore, cluster: str, kind: str, name: str, version: int) -> bytes | None:
    """The value, or None (logged, naming it) when it is gone or does not decrypt. An etcd
    outage raises: the session ends and the agent reconnects, as for any store error."""
    try:
        return await store.value(await store.get(cluster, kind, name, version or None))
    except (NotFound, Corrupt) as exc:
        log.warning("a mounted value cannot be sent", cluster=cluster, kind=kind, name=name, version=version,
                    error=str(exc)[:300])
        return None
