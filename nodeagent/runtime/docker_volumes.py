"""The named volumes of one Docker Engine: created as the template describes, or found (external).

Why a module of its own: like the application networks (docker_networks.py), a named volume
outlives its containers and has rules of its own. It shares the runtime's thread pool and locks
(`call`, `lock`), so every docker error is still mapped in one place (docker_engine.engine_error).

- A volume ccs creates goes to the engine's volume create with the template's driver,
  driver_opts and labels. The engine returns an existing volume of that name unchanged, so the
  answer is compared with the definition (`mounts.volume_differences`): a volume that exists
  with another driver, other options or without the template's labels fails the container
  (VolumeFailed) instead of mounting data kept somewhere else. The message names the keys that
  differ, never option values, which may hold credentials.
- A driver the node does not have (the engine answers 404, "plugin not found") and options the
  driver refuses (400) are permanent failures naming the volume, the driver and the node.
- A volume an older agent named `ccs-<app>-<volume>` (`mounts.NamedVolume.legacy`) is adopted
  when its labels name the same cluster, application and volume: renaming would mean moving the
  data. `ensure` returns the name to mount, and the runtime mounts that one.
- A volume ccs would create that exists with another owner's labels (or none) fails the
  container rather than mounting someone else's data (`mounts.volume_differences`).
- An external volume is only inspected: when it is missing the container waits (VolumeMissing,
  not permanent; the agent retries with backoff) with a message naming the volume and the node,
  and starts once someone creates it there. ccs never creates or removes an external volume.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import docker
import docker.errors

from .mounts import NamedVolume, volume_differences
from .naming import APP, CLUSTER, VOLUME
from .types import NotFound, RuntimeFailure, VolumeFailed, VolumeMissing

Call = Callable[..., Awaitable[Any]]  # (doing, fn, *args, **kwargs) -> fn's result, errors mapped


def _status(exc: RuntimeFailure) -> int:
    cause = exc.__cause__
    return int(cause.status_code or 0) if isinstance(cause, docker.errors.APIError) else 0


class Volumes:
    """Ensure the named volumes a container mounts exist on one engine, as their definitions say."""

    def __init__(self, api: docker.APIClient, call: Call, lock: Callable[[str], asyncio.Lock]) -> None:
        self._api = api
        self._call = call
        self._lock = lock

    async def ensure(self, volume: NamedVolume, node: str) -> str:
        """Create `volume` unless it exists as described; for an external one, check it exists.
        The engine name to mount: `volume.name`, or its `legacy` name when that one is adopted."""
        if volume.legacy and await self._owned_legacy(volume):
            return volume.legacy
        where = f"volume {volume.name!r} (volumes.{volume.key})" if volume.key else f"volume {volume.name!r}"
        on_node = f"on node {node}" if node else "on this node"
        async with self._lock(f"volume:{volume.name}"):
            if volume.external:
                await self._find(volume, where, on_node)
                return volume.name
            try:
                found = await self._call(
                    f"create volume {volume.name}",
                    self._api.create_volume,
                    volume.name,
                    driver=volume.driver or None,
                    driver_opts=volume.driver_opts or None,
                    labels=volume.labels,
                )
            except RuntimeFailure as exc:
                raise self._create_error(exc, volume, where, on_node) from exc
        differences = volume_differences(volume, found or {})
        if differences:
            raise VolumeFailed(
                f"{where} exists {on_node} but not as the template describes it: {'; '.join(differences)}. "
                "The engine cannot change a volume: remove it on the node (its data is lost) or give the "
                "volume another name"
            )
        return volume.name

    async def _owned_legacy(self, volume: NamedVolume) -> bool:
        """Whether a volume of the older name exists and its ccs labels are `volume`'s own."""
        try:
            found = await self._call(f"inspect volume {volume.legacy}", self._api.inspect_volume, volume.legacy)
        except NotFound:
            return False
        labels = found.get("Labels") or {}
        return all(labels.get(k) == volume.labels.get(k) for k in (CLUSTER, APP, VOLUME))

    async def _find(self, volume: NamedVolume, where: str, on_node: str) -> None:
        try:
            await self._call(f"inspect volume {volume.name}", self._api.inspect_volume, volume.name)
        except NotFound as exc:
            raise VolumeMissing(
                f"external {where} does not exist {on_node}; create it there "
                f"(docker volume create {volume.name}) and the container starts"
            ) from exc

    @staticmethod
    def _create_error(exc: RuntimeFailure, volume: NamedVolume, where: str, on_node: str) -> RuntimeFailure:
        status = _status(exc)
        if status == 404 or ("plugin" in exc.reason and "not found" in exc.reason):
            return VolumeFailed(
                f"{where}: volume driver {volume.driver!r} is not installed {on_node} ({exc.reason})"
            )
        if 400 <= status < 500:
            return VolumeFailed(f"{where}: driver {volume.driver or 'local'!r} refused it {on_node}: {exc.reason}")
        return exc
