"""A template's secrets and configs at deploy, update and rollback: fill every service's FileRefs
with the version they use (and its digest), and write the application's own values.

Unpinned refs get the latest version, so re-applying the same template after ``ccs secret
update`` changes the services' specs (a new generation, a rolling release); pinned ones
(``name: db@3``) must exist as asked. An external secret that does not exist refuses the
template, naming the field and the command that makes it.

A route's certificate (``x-ccs.routes[].tls.secret``) is resolved the same way (an external
secret, latest version unless pinned) and checked before anything is stored: it must parse,
hold the leaf's key and cover the route's domain (``ccs.route_certificates``); the message
names the field, never a byte of the value.

The application's own values (``file:``, ``environment:``, ``content:``) become versions of
``{app}_{key}`` written **in the application's own transaction** (:func:`resolve` returns what
adds them; an unchanged value adds nothing), so a refused or dry-run deploy stores none and an
accepted one stores them with the services that mount them. The transaction's size is measured
with them (values are at most 500 KiB each). A concurrent writer of the same version number
makes the write fail (ALREADY_EXISTS naming ``APP_KEY@N``), and so does a rotation that
deleted the data key they were sealed under meanwhile (NOT_FOUND naming the generation); deploy
again.
"""
from __future__ import annotations

import datetime
from collections.abc import Callable

from ccs.route_certificates import check_certificate
from ccs.v1 import resources_pb2 as pb
from controlplane.api.secret_owners import owner
from controlplane.compose import ParsedTemplate
from controlplane.compose.service import normalize_path
from controlplane.grpc_errors import InvalidArgument
from controlplane.secrets.store import SecretStore, Version, write_version
from controlplane.store import NotFound, keys
from controlplane.store.codec import decode
from controlplane.store.etcd import Etcd
from controlplane.store.txn import Txn


async def resolve(store: SecretStore | None, cluster: str, app: str, parsed: ParsedTemplate
                  ) -> Callable[[Txn], object]:
    """Fill the FileRefs; return what adds the application's new values to its transaction.

    An external name another application owns (:mod:`controlplane.api.secret_owners`) is
    refused: only its owner's template mounts it. A template's own value goes to
    ``{app}_{key}`` only if that name holds nothing but this application's versions (a name
    made beforehand by someone else is refused rather than given the application's value)."""
    refs = [(kind, ref) for spec in parsed.services.values()
            for kind, group in (("secret", spec.secrets), ("config", spec.configs)) for ref in group]
    routes = [(svc, route) for svc, spec in parsed.services.items() for route in spec.routes if route.HasField("tls")]
    if not refs and not parsed.file_sources and not routes:
        return _nothing
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
            belongs = await owner(store.etcd, cluster, ref.name, await store.versions(cluster, kind, ref.name))
            if belongs and belongs != app:
                problems.append((f"{kind}s.{ref.key}.external",
                                 f"{kind} {ref.name!r} belongs to application {belongs!r}; only its template "
                                 f"may mount it (use a {kind} of your own or a shared one)"))
        except NotFound:
            at = f"@{ref.version}" if ref.version else ""
            problems.append((f"{kind}s.{ref.key}.external",
                             f"{kind} {ref.name + at!r} does not exist in cluster {cluster!r}; create it with "
                             f"`ccs {kind} create {ref.name} -c {cluster} -f FILE`"))
    problems += await _route_certificates(store, cluster, app, routes)
    if problems:
        seen = dict(problems)
        first, *rest = seen.items()
        raise InvalidArgument(first[0], "; ".join([first[1], *(f"{f}: {p}" for f, p in rest)]))
    stored = {}
    new: list[Version] = []
    for key, source in own.items():
        if source.value is None:  # a re-parse of the stored template: the value is the latest stored
            try:
                v = await store.get(cluster, source.kind, source.name, None)
            except NotFound:
                how = "file" if source.path else "environment"
                raise InvalidArgument(f"{source.kind}s.{source.key}.{how}", f"{source.kind} {source.name!r} is no "
                                      "longer stored; deploy the template again with its value") from None
            stored[key] = (v.version, v.digest)
        else:
            foreign = {x.application for x in await store.versions(cluster, source.kind, source.name)} - {app}
            if foreign:
                how = "file" if source.path else "environment" if source.variable else "content"
                made = (f"by hand (ccs {source.kind} create)" if "" in foreign
                        else f"by application {sorted(foreign)[0]!r}")
                raise InvalidArgument(f"{source.kind}s.{source.key}.{how}",
                                      f"{source.kind} {source.name!r} already exists and was made {made}, not by "
                                      f"application {app!r}: remove it (ccs {source.kind} rm) or rename the key")
            v, is_new = await store.prepare(cluster, source.kind, source.name, source.value, app)
            stored[key] = (v.version, v.digest)
            if is_new:
                new.append(v)
    for kind, ref in refs:
        if (kind, ref.name) in stored:
            ref.version, ref.digest = stored[(kind, ref.name)]

    def write(txn: Txn) -> None:
        for v in new:
            write_version(txn, v)

    return write


def _nothing(txn: Txn) -> None:
    return None


async def _route_certificates(
    store: SecretStore, cluster: str, app: str, routes: list[tuple[str, pb.Route]]
) -> list[tuple[str, str]]:
    """Fill each HTTPS route's certificate version; (field, problem) for each that cannot serve
    its domain. A domain has one certificate secret in the cluster (the routers pick it by SNI,
    and skip a domain whose routes name two): another one than another application's routes
    name for the domain is refused. Read without a guard: two deploys racing for one domain
    can both pass, and the routers then skip it, logging why."""
    if not routes:
        return []
    problems: list[tuple[str, str]] = []
    by_domain: dict[str, tuple[str, int]] = {}
    now = datetime.datetime.now(datetime.UTC)
    elsewhere: dict[str, tuple[str, str]] = {}  # domain -> (application, secret) of other applications
    for kv in (await store.etcd.range(keys.subtree(cluster) + "services/")).kvs:
        other = decode(kv, pb.Service)
        if other.application != app:
            for r in other.spec.routes:
                if r.HasField("tls"):
                    elsewhere.setdefault(r.domain, (other.application, r.tls.secret))
    for svc, route in routes:
        where = f"services.{svc}.x-ccs.routes.tls.secret"
        at = f"@{route.tls.version}" if route.tls.pinned else ""
        label = f"secret {route.tls.secret + at!r} (route {route.domain}{route.path or '/'})"
        try:
            v = await store.get(cluster, "secret", route.tls.secret, route.tls.version if route.tls.pinned else None)
        except NotFound:
            problems.append((where, f"{label} does not exist in cluster {cluster!r}; create it with "
                                    f"`ccs secret create {route.tls.secret} -c {cluster} -f CHAIN_AND_KEY.pem`"))
            continue
        route.tls.version = v.version
        belongs = await owner(store.etcd, cluster, v.name, await store.versions(cluster, "secret", v.name))
        if belongs and belongs != app:
            problems.append((where, f"{label} belongs to application {belongs!r}; only its template may use it"))
            continue
        theirs = elsewhere.get(route.domain)
        if theirs is not None and theirs[1] != v.name:
            problems.append((where, f"{label}: domain {route.domain} is served by application {theirs[0]!r} with "
                                    f"certificate secret {theirs[1]!r}; a domain has one certificate"))
            continue
        first = by_domain.setdefault(route.domain, (v.name, v.version))
        if first != (v.name, v.version):
            problems.append((where, f"{label}: domain {route.domain} already has certificate "
                                    f"{first[0]}@{first[1]} in this template; a domain has one certificate"))
            continue
        try:
            check_certificate(await store.value(v), route.domain, now, f"secret {v.name}@{v.version}")
        except ValueError as exc:
            problems.append((where, str(exc)))
    return problems


async def mounting(
    etcd: Etcd, cluster: str, kind: str, name: str
) -> tuple[dict[str, list[str]], dict[str, set[str]], int]:
    """(application -> its services mounting ``name``, application -> those mounting it unpinned,
    the revision read at). A service record that does not decode fails the read (DATA_LOSS)."""
    res = await etcd.range(keys.subtree(cluster) + "services/")
    mounts: dict[str, list[str]] = {}
    unpinned: dict[str, set[str]] = {}
    for kv in res.kvs:
        svc = decode(kv, pb.Service)
        refs = svc.spec.secrets if kind == "secret" else svc.spec.configs
        uses = [ref.pinned for ref in refs if ref.name == name]
        if kind == "secret":  # a route's certificate: removing it would break the route too
            uses += [r.tls.pinned for r in svc.spec.routes if r.HasField("tls") and r.tls.secret == name]
        for pinned in uses:
            mounts.setdefault(svc.application, []).append(svc.meta.name)
            if not pinned:
                unpinned.setdefault(svc.application, set()).add(svc.meta.name)
    return mounts, unpinned, res.revision


async def stored_values(store: SecretStore | None, cluster: str, app: str) -> frozenset[str]:
    """The names of ``app``'s own secrets and configs already stored (for ``parse_template``)."""
    if store is None:
        return frozenset()
    return frozenset(name for _, name, _, _ in await store.owned(cluster, app))


def keep_out(spec: pb.ApplicationSpec, parsed: ParsedTemplate) -> None:
    """Leave the values of the template's own secrets out of the application as stored (and
    answered): the bundled file of each ``file:`` secret and the ``--env`` variable of each
    ``environment:`` one (unless the template interpolates it too: then it is in its specs
    anyway). They live in the secrets store; a re-parse names them (``stored_values``)."""
    paths = {source.path for source in parsed.file_sources if source.kind == "secret" and source.path}
    # The parse looked the file up under its normalized path (``./db.txt`` -> ``db.txt``); the
    # client may have bundled it under any spelling of it (an SDK caller, say).
    for sent in [p for p in spec.files if normalize_path(p) in paths]:
        del spec.files[sent]
    for source in parsed.file_sources:
        if source.kind != "secret":
            continue
        if source.variable and source.variable in spec.env:
            del spec.env[source.variable]

