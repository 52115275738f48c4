"""Deleting an application: its records, its own secrets and configs, in one transaction.

Apart from ``apps.py`` because deleting reads raw values (records that may not decode) and
follows rules of its own (containers stop first; files another application mounts stay).
"""

from __future__ import annotations

from ccs.labels import KEEP_VOLUMES
from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.api.secret_refs import mounting
from controlplane.names import check_name
from controlplane.secrets.store import SecretStore
from controlplane.store import Corrupt, NotFound, keys
from controlplane.store.codec import decode
from controlplane.store.etcd import Etcd
from controlplane.store.events import record_event
from controlplane.store.meta import new_meta, touch
from controlplane.store.txn import Txn


async def delete_application(
    etcd: Etcd, secrets: SecretStore | None, request: api_pb2.DeleteApplicationRequest
) -> api_pb2.DeleteApplicationResponse:
    """Delete an application, also when some of its records do not decode.

    Deleting is how an operator recovers from a damaged record (Kubernetes lets a corrupt
    object be deleted for the same reason, KEP-3926), so it reads raw values: an
    application record that does not decode is replaced by a bare one marked for removal,
    and service or container records that do not decode are deleted in the same
    transaction (each guarded by its revision), after which the reconciler retires their
    containers as those of a deleted service and the agents drop what is no longer assigned.
    """
    cluster = check_name("cluster", request.cluster)
    name = check_name("name", request.name)
    key = keys.app(cluster, name)
    kv = await etcd.get(key)
    if kv is None:
        raise NotFound("application", name)
    try:
        app: pb.Application | None = decode(kv, pb.Application)
    except Corrupt:
        app = None
    rv = request.resource_version or kv.mod_revision
    damaged = await _damaged(etcd, keys.services(cluster, name), pb.Service)
    damaged |= await _damaged(etcd, keys.containers(cluster, name), pb.Container)
    has_containers = await etcd.count(keys.containers(cluster, name)) > 0
    txn = Txn()
    await _drop_own_files(etcd, secrets, txn, cluster, name)
    for bad_key, bad_rv in sorted(damaged.items()):
        txn.require_revision(bad_key, "record", bad_key, bad_rv).delete(bad_key)
    dropped = sorted(damaged) + ([key] if app is None else [])
    note = f"; dropped the records that did not decode: {', '.join(dropped)}" if dropped else ""
    if has_containers:
        # Containers must stop on their nodes first: mark the application for
        # removal; the application reconciler deletes the keys once they are gone.
        if app is None:
            app = pb.Application(meta=new_meta(name), cluster=cluster)
        app.spec.desired_state = pb.DESIRED_STATE_REMOVED
        app.status.phase = "Deleting"
        if request.keep_volumes:
            app.meta.labels[KEEP_VOLUMES] = "true"
        touch(app.meta)
        txn.update(key, app, "application", name, rv)
        record_event(txn, cluster, "application", name, "Deleting", "removing containers" + note)
    else:
        txn.require_revision(key, "application", name, rv)
        txn.require_empty(keys.containers(cluster, name), "containers", f"application {name!r}")
        txn.delete(key)
        for prefix in keys.owned_by_app(cluster, name):
            txn.delete_prefix(prefix)
        record_event(txn, cluster, "application", name, "Deleted", f"application {name} deleted" + note)
    await txn.commit(etcd)
    return api_pb2.DeleteApplicationResponse()

async def _drop_own_files(etcd: Etcd, secrets: SecretStore | None, txn: Txn, cluster: str, app: str) -> None:
    """The secrets and configs the application made from its template go with it (its
    running containers keep their files until they stop), unless another application
    mounts one: that one stays, as if made with ``ccs secret create``."""
    if secrets is None:
        return
    for kind, secret, prefix, revision in await secrets.owned(cluster, app):
        mounts, _, _ = await mounting(etcd, cluster, kind, secret)
        if set(mounts) - {app}:
            continue
        txn.require_unchanged(prefix, revision, kind, secret).delete_prefix(prefix)

async def _damaged(etcd: Etcd, prefix: str, cls: type[pb.Service] | type[pb.Container]) -> dict[str, int]:
    """Keys under ``prefix`` whose values do not decode as ``cls``, with their mod_revision."""
    out: dict[str, int] = {}
    for kv in (await etcd.range(prefix)).kvs:
        try:
            decode(kv, cls)
        except Corrupt:
            out[kv.key] = kv.mod_revision
    return out
