"""Where an application's template lives: stored once, in the revision that introduced it.

Why: etcd takes at most 1.5 MiB in one request (``--max-request-bytes``) and a template
(with its files) may be 1 MiB. Writing it into the application, its revision snapshot and
the release's ``previous_app_spec`` made a create carry it twice and an update three times,
so a template well under the limit could not be deployed. Now the ``ApplicationRevision``
of the revision that brought a new template (or files) holds it; the application record,
release records and later revisions that keep it store only ``template_revision``, a
pointer to that snapshot. A write therefore carries a template at most once, and an update
that changes only env or version carries none. Revision snapshots are removed only with
their application, so a pointer never dangles.

Records written before ``template_revision`` existed hold their template inline
(``template_revision`` 0) and are read as they are.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from ccs.v1 import resources_pb2 as pb
from controlplane.store import NotFound, keys
from controlplane.store.codec import decode
from controlplane.store.etcd import Etcd


def stored(spec: pb.ApplicationSpec) -> pb.ApplicationSpec:
    """The spec as an application or release record stores it: the template left out."""
    out = pb.ApplicationSpec()
    out.CopyFrom(spec)
    if out.template_revision:
        out.template = ""
        out.ClearField("files")
    return out


def stored_app(app: pb.Application) -> pb.Application:
    out = pb.Application()
    out.CopyFrom(app)
    out.spec.CopyFrom(stored(app.spec))
    return out


def for_revision(spec: pb.ApplicationSpec, revision: int) -> pb.ApplicationSpec:
    """The spec as revision ``revision``'s snapshot stores it: whole if it brought the template."""
    if spec.template_revision == revision or not spec.template_revision:
        out = pb.ApplicationSpec()
        out.CopyFrom(spec)
        return out
    return stored(spec)


def same_template(a: pb.ApplicationSpec, b: pb.ApplicationSpec) -> bool:
    return a.template == b.template and a.files == b.files


def _fill(spec: pb.ApplicationSpec, holder: pb.ApplicationSpec) -> None:
    spec.template = holder.template
    spec.files.clear()
    spec.files.update(holder.files)


def needs_template(spec: pb.ApplicationSpec) -> bool:
    return bool(spec.template_revision) and not spec.template


async def resolve(etcd: Etcd, cluster: str, app: str, spec: pb.ApplicationSpec) -> None:
    """Fill in ``spec``'s template and files (in place) from the snapshot that holds them."""
    if not needs_template(spec):
        return
    kv = await etcd.get(keys.revision(cluster, app, spec.template_revision))
    if kv is None:
        raise NotFound("revision", f"{app}@{spec.template_revision}")
    _fill(spec, decode(kv, pb.ApplicationRevision).spec)


async def resolve_all(etcd: Etcd, cluster: str, app: str, revisions: Iterable[pb.ApplicationRevision]) -> None:
    """Fill in every snapshot's template, from the list itself where the holder is in it."""
    holders = {r.revision: r.spec for r in revisions if not needs_template(r.spec)}
    for r in revisions:
        if needs_template(r.spec):
            holder = holders.get(r.spec.template_revision)
            if holder is not None:
                _fill(r.spec, holder)
            else:
                await resolve(etcd, cluster, app, r.spec)


class TemplateCache:
    """Templates already read, so a GetApplication served from the watch cache stays free of
    etcd round trips. A snapshot never changes, and the key includes the application's
    ``meta.id`` (new for a re-created application of the same name), so an entry is never
    stale. Bounded by bytes, least recently used first out.
    """

    def __init__(self, max_bytes: int = 16 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._bytes = 0
        self._entries: OrderedDict[tuple[str, str, int], pb.ApplicationSpec] = OrderedDict()

    async def resolve(self, etcd: Etcd, cluster: str, app: pb.Application) -> None:
        """Fill in ``app.spec``'s template and files, in place."""
        spec = app.spec
        if not needs_template(spec):
            return
        key = (cluster, app.meta.id, spec.template_revision)
        held = self._entries.get(key)
        if held is None:
            held = pb.ApplicationSpec(template_revision=spec.template_revision)
            await resolve(etcd, cluster, app.meta.name, held)
            self._entries[key] = held
            self._bytes += held.ByteSize()
            while self._bytes > self.max_bytes and len(self._entries) > 1:
                _, old = self._entries.popitem(last=False)
                self._bytes -= old.ByteSize()
        else:
            self._entries.move_to_end(key)
        _fill(spec, held)
