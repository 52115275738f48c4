"""A template's secrets and configs at deploy, update and rollback: store the application's own,
then fill every service's FileRefs with the version they use (and its digest).

Unpinned refs get the latest version, so re-applying the same template after ``ccs secret
update`` changes the services' specs (a new generation, a rolling release); pinned ones
(``name: db@3``) must exist as asked. An external secret that does not exist refuses the
template, naming the field and the command that makes it.

The application's own values (``file:``, ``environment:``, ``content:``) are written before the
application's transaction, as versions of ``{app}_{key}``: one etcd transaction cannot hold
them with the application when they are large, and an unchanged value writes nothing (so a
refused deploy leaves at most a version nobody mounts yet, which the next deploy reuses).
A dry run writes none of them.
"""

from __future__ import annotations

from controlplane.compose import ParsedTemplate
from controlplane.grpc_errors import InvalidArgument
from controlplane.secrets.envelope import digest
from controlplane.secrets.store import SecretStore
from controlplane.store import NotFound


async def resolve(store: SecretStore | None, cluster: str, app: str, parsed: ParsedTemplate, *,
                  dry_run: bool = False) -> None:
    refs = [(kind, ref) for spec in parsed.services.values()
            for kind, group in (("secret", spec.secrets), ("config", spec.configs)) for ref in group]
    if not refs:
        return
    if store is None:
        raise InvalidArgument("secrets", "this server has no secrets store")
    own = {(s.kind, s.name): s for s in parsed.file_sources}
    if not dry_run:
        for s in parsed.file_sources:
            assert s.value is not None
            await store.add(cluster, s.kind, s.name, s.value, new=None, application=app)
    problems: list[tuple[str, str]] = []
    for kind, ref in refs:
        try:
            v = await store.get(cluster, kind, ref.name, ref.version or None)
            ref.version, ref.digest = v.version, v.digest
        except NotFound:
            source = own.get((kind, ref.name))
            if dry_run and source is not None and source.value is not None:
                ref.digest = digest(source.value)  # would be stored by the real deploy
                continue
            at = f"@{ref.version}" if ref.version else ""
            problems.append((f"{kind}s.{ref.key}.external",
                             f"{kind} {ref.name + at!r} does not exist in cluster {cluster!r}; create it with "
                             f"`ccs {kind} create {ref.name} -c {cluster} -f FILE`"))
    if problems:
        seen = dict(problems)
        first, *rest = seen.items()
        raise InvalidArgument(first[0], "; ".join([first[1], *(f"{f}: {p}" for f, p in rest)]))
