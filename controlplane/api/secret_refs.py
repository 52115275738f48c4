"""A template's secrets and configs at deploy, update and rollback: store the application's own,
then fill every service's FileRefs with the version they use (and its digest).

Unpinned refs get the latest version, so re-applying the same template after ``ccs secret
update`` changes the services' specs (a new generation, a rolling release); pinned ones
(``name: db@3``) must exist as asked. An external secret that does not exist refuses the
template, naming the field and the command that makes it.

The application's own values (``file:``, ``environment:``, ``content:``) are written before the
application's transaction, as versions of ``{app}_{key}``: one etcd transaction cannot hold
them with the application when they are large, and an unchanged value writes nothing (so a
refused deploy (the API refuses after this step: the cluster policy, a missing network) leaves
at most a version nobody mounts yet, which the next deploy reuses; a missing external secret is
found before anything is stored).
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
    # Everything is checked before anything is stored: a refused template stores nothing.
    problems: list[tuple[str, str]] = []
    for kind, ref in refs:
        if (kind, ref.name) in own:
            continue
        try:
            v = await store.get(cluster, kind, ref.name, ref.version or None)
            ref.version, ref.digest = v.version, v.digest
        except NotFound:
            at = f"@{ref.version}" if ref.version else ""
            problems.append((f"{kind}s.{ref.key}.external",
                             f"{kind} {ref.name + at!r} does not exist in cluster {cluster!r}; create it with "
                             f"`ccs {kind} create {ref.name} -c {cluster} -f FILE`"))
    if problems:
        seen = dict(problems)
        first, *rest = seen.items()
        raise InvalidArgument(first[0], "; ".join([first[1], *(f"{f}: {p}" for f, p in rest)]))
    stored = {}
    for key, source in own.items():
        assert source.value is not None
        if dry_run:
            stored[key] = (0, digest(source.value))  # the version a real deploy makes is not known yet
        else:
            v = await store.add(cluster, source.kind, source.name, source.value, new=None, application=app)
            stored[key] = (v.version, v.digest)
    for kind, ref in refs:
        if (kind, ref.name) in stored:
            ref.version, ref.digest = stored[(kind, ref.name)]
