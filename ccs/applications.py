"""Typed calls for applications (every ApplicationService RPC); their services and containers
are in :mod:`ccs.workloads`."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping

from ccs._transport import Listing, Transport, collect
from ccs.apply_outcome import ApplyResult, same_as_stored
from ccs.errors import AlreadyExists, InvalidArgument, NotFound
from ccs.models import CanaryOptions
from ccs.v1 import api_pb2, resources_pb2
from ccs.wait import Progress, ProgressCallback, Waiter

__all__ = ["Applications"]


class Applications:
    """An application is one Compose template deployed into a cluster."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    async def create(
        self,
        cluster: str,
        name: str,
        template: str,
        *,
        env: Mapping[str, str] | None = None,
        files: Mapping[str, str] | None = None,
        version: str = "",
        labels: Mapping[str, str] | None = None,
        dry_run: bool = False,
        profiles: Iterable[str] = (),
    ) -> resources_pb2.Application:
        """Deploy ``template``; ``files`` are ``.env``/env_file contents keyed by their path
        relative to the template (see ``ccs.template.load_bundle``); ``env`` wins over them.
        ``profiles`` are the Compose profiles to deploy besides the services without one
        (kept with the application). ``dry_run`` validates and returns the application
        without writing it."""
        req = api_pb2.CreateApplicationRequest(
            cluster=cluster,
            name=name,
            template=template,
            env=env,
            files=files,
            version=version,
            labels=labels,
            dry_run=dry_run,
            profiles=list(profiles),
        )
        return await self._t.unary(
            self._t.applications.CreateApplication, req, resources_pb2.Application
        )

    async def get(self, cluster: str, name: str) -> api_pb2.GetApplicationResponse:
        """The application and its services (``.application``, ``.services``)."""
        req = api_pb2.GetApplicationRequest(cluster=cluster, name=name)
        return await self._t.unary(
            self._t.applications.GetApplication, req, api_pb2.GetApplicationResponse
        )

    async def list(
        self, cluster: str, *, page_size: int = 0
    ) -> Listing[resources_pb2.Application]:
        async def page(token: str) -> api_pb2.ListApplicationsResponse:
            req = api_pb2.ListApplicationsRequest(
                cluster=cluster, page_size=page_size, page_token=token
            )
            return await self._t.unary(
                self._t.applications.ListApplications, req, api_pb2.ListApplicationsResponse
            )

        return await collect(page, lambda r: r.applications)

    async def update(
        self,
        cluster: str,
        name: str,
        *,
        template: str = "",
        files: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        replace_env: bool = False,
        version: str = "",
        labels: Mapping[str, str] | None = None,
        strategy: str = "",
        canary: CanaryOptions | None = None,
        resource_version: int = 0,
        dry_run: bool = False,
        profiles: Iterable[str] = (),
        clear_profiles: bool = False,
    ) -> resources_pb2.Application:
        """Release a new template, environment or version. Empty ``template``/``version``
        keep the current ones; ``env`` merges unless ``replace_env``; ``profiles`` replace
        the chosen Compose profiles (none given keeps them; ``clear_profiles`` clears them); ``strategy`` is
        rolling, blue-green or canary (empty: as the template says). ``canary``
        (:class:`ccs.models.CanaryOptions`) needs ``strategy="canary"``; a bad option raises
        ``ValueError`` naming it. The update creates a release: ``client.releases.get``
        returns it as the latest, ``client.releases.wait`` follows it."""
        req = _update_request(
            cluster, name, template=template, files=files, env=env, replace_env=replace_env, version=version,
            labels=labels, strategy=strategy, canary=canary, resource_version=resource_version,
            dry_run=dry_run, profiles=profiles, clear_profiles=clear_profiles,
        )
        return await self._t.unary(
            self._t.applications.UpdateApplication, req, resources_pb2.Application
        )

    async def apply(
        self,
        cluster: str,
        name: str,
        template: str,
        *,
        env: Mapping[str, str] | None = None,
        files: Mapping[str, str] | None = None,
        version: str = "",
        labels: Mapping[str, str] | None = None,
        profiles: Iterable[str] = (),
        strategy: str = "",
    ) -> ApplyResult:
        """Create the application, or make it what these arguments say: one idempotent call for CI.

        Declarative, unlike ``update``: ``env`` and ``profiles`` replace the stored ones
        (``env={}`` clears them). When the stored application already is what they say (see
        ``ccs.apply_outcome``) nothing is written and the outcome is ``"unchanged"``: no
        revision, no release. Otherwise ``"created"`` or ``"updated"`` (the update is made to the
        latest version, as ``update`` without ``resource_version``: the control plane's own status
        writes to the services would otherwise make it fail at random). ``strategy`` applies to an
        update's release. An update the server finds to change nothing (a template whose own
        secret values it keeps apart) also comes back ``"unchanged"`` (same revision)."""
        env, files, labels = dict(env or {}), dict(files or {}), dict(labels or {})
        profiles = builtins.list(dict.fromkeys(profiles))
        try:
            current = (await self.get(cluster, name)).application
        except NotFound:
            try:
                created = await self.create(cluster, name, template, env=env, files=files, version=version,
                                            labels=labels, profiles=profiles)
                return ApplyResult(created, "created")
            except AlreadyExists:  # created meanwhile by someone else: compare with theirs
                current = (await self.get(cluster, name)).application
        if same_as_stored(current, template=template, files=files, env=env, version=version, labels=labels,
                          profiles=profiles):
            return ApplyResult(current, "unchanged")
        updated = await self.update(
            cluster, name, template=template, files=files, env=env, replace_env=True, version=version,
            labels=labels, strategy=strategy, profiles=profiles, clear_profiles=not profiles,
        )
        return ApplyResult(updated, "unchanged" if updated.revision == current.revision else "updated")

    async def diff(
        self,
        cluster: str,
        name: str,
        *,
        template: str = "",
        files: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        replace_env: bool = False,
        version: str = "",
        labels: Mapping[str, str] | None = None,
        strategy: str = "",
        canary: CanaryOptions | None = None,
        resource_version: int = 0,
        profiles: Iterable[str] = (),
        clear_profiles: bool = False,
    ) -> api_pb2.DiffApplicationResponse:
        """What :meth:`update` with the same arguments would change, service by service
        (``.services``: each with its ``change`` - added, removed, changed or unchanged - and
        the ``before``/``after`` specs as the update would store them), computed by the
        server as a dry run of that update: it refuses what the update would refuse, and
        writes nothing. ``ccs.spec_diff`` renders it as a unified diff."""
        req = _update_request(
            cluster, name, template=template, files=files, env=env, replace_env=replace_env, version=version,
            labels=labels, strategy=strategy, canary=canary, resource_version=resource_version,
            dry_run=True, profiles=profiles, clear_profiles=clear_profiles,
        )
        return await self._t.unary(
            self._t.applications.DiffApplication, req, api_pb2.DiffApplicationResponse
        )

    async def delete(
        self, cluster: str, name: str, *, keep_volumes: bool = False, resource_version: int = 0
    ) -> None:
        req = api_pb2.DeleteApplicationRequest(
            cluster=cluster, name=name, keep_volumes=keep_volumes,
            resource_version=resource_version,
        )
        await self._t.unary(
            self._t.applications.DeleteApplication, req, api_pb2.DeleteApplicationResponse
        )

    async def start(self, cluster: str, name: str) -> resources_pb2.Application:
        req = api_pb2.StartApplicationRequest(cluster=cluster, name=name)
        return await self._t.unary(
            self._t.applications.StartApplication, req, resources_pb2.Application
        )

    async def stop(self, cluster: str, name: str) -> resources_pb2.Application:
        req = api_pb2.StopApplicationRequest(cluster=cluster, name=name)
        return await self._t.unary(
            self._t.applications.StopApplication, req, resources_pb2.Application
        )

    async def rollback(
        self, cluster: str, name: str, to_revision: int = 0, strategy: str = ""
    ) -> resources_pb2.Application:
        """Restore every service to revision ``to_revision`` (0: the one before the
        current) in one step; the control plane releases it with ``strategy``."""
        if to_revision < 0:
            raise InvalidArgument(f"to_revision: must be >= 0 (0: the previous), got {to_revision}")
        req = api_pb2.RollbackApplicationRequest(
            cluster=cluster, name=name, to_revision=to_revision, strategy=strategy
        )
        return await self._t.unary(
            self._t.applications.RollbackApplication, req, resources_pb2.Application
        )

    async def revisions(
        self, cluster: str, name: str
    ) -> builtins.list[resources_pb2.ApplicationRevision]:
        """The application's stored revisions, oldest first; each names its ``author`` (the token
        that made it; empty before ccs recorded it) and ``template_digest`` (sha256 of its template)."""
        req = api_pb2.ListRevisionsRequest(cluster=cluster, name=name)
        resp = await self._t.unary(
            self._t.applications.ListRevisions, req, api_pb2.ListRevisionsResponse
        )
        return sorted(resp.revisions, key=lambda r: r.revision)

    async def wait(
        self,
        cluster: str,
        name: str,
        *,
        timeout: float,
        on_progress: ProgressCallback | None = None,
        unschedulable_grace: float = 5.0,
        resync_interval: float = 30.0,
        min_ready: float = 1.0,
    ) -> Progress:
        """Wait until every service of the application runs its current generation with
        ``desired`` healthy containers; return the final ``ccs.wait.Progress``.

        ``on_progress(progress)`` is called (and awaited if it returns an awaitable) whenever
        the progress changes; with the blocking ``Client`` it runs on the client's thread.
        Raises ``DeployFailed`` (image not found, crash loop, or no node fits for longer than
        ``unschedulable_grace`` seconds), ``WaitTimeout`` after ``timeout`` seconds, and
        ``NotFound`` if the application does not exist or is deleted. A container counts as
        ready once it has stayed ready for ``min_ready`` seconds (0: at once), so one that exits
        at once is a crash loop, not a success. See ``ccs.wait``.
        """
        waiter = Waiter(
            self._t, cluster, name, timeout=timeout, on_progress=on_progress,
            unschedulable_grace=unschedulable_grace, resync_interval=resync_interval, min_ready=min_ready,
        )
        return await waiter.run()


def _update_request(
    cluster: str,
    name: str,
    *,
    template: str,
    files: Mapping[str, str] | None,
    env: Mapping[str, str] | None,
    replace_env: bool,
    version: str,
    labels: Mapping[str, str] | None,
    strategy: str,
    canary: CanaryOptions | None,
    resource_version: int,
    dry_run: bool,
    profiles: Iterable[str],
    clear_profiles: bool,
) -> api_pb2.UpdateApplicationRequest:
    """The request of ``update`` and ``diff`` (one builder: a diff is that update's dry run)."""
    if canary is not None and strategy != "canary":
        raise ValueError("strategy: canary options need strategy canary")
    req = api_pb2.UpdateApplicationRequest(
        cluster=cluster,
        name=name,
        template=template,
        files=files,
        env=env,
        replace_env=replace_env,
        version=version,
        labels=labels,
        strategy=strategy,
        resource_version=resource_version,
        dry_run=dry_run,
        profiles=list(profiles),
        clear_profiles=clear_profiles,
    )
    if canary is not None:
        canary.apply(req)
    return req
