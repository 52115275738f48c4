"""Images on the node's engine: pulled when missing (or always, when the service asks), with
the pull's registry login given to the Engine for that pull only; removed when collected.

Apart from :mod:`docker_engine` like the networks and volumes helpers: the runtime's calls and
per-key locks are passed in, so every Engine call still goes through one thread pool with its
errors mapped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import docker
import docker.errors
from docker.utils import parse_repository_tag

from ccs.v1 import agent_pb2

from .docker_volumes import Call
from .shared_calls import SharedCalls
from .types import NotFound, PullCallback, pull_failure


class Images:
    def __init__(self, api: docker.APIClient, call: Call, lock: Callable[[str], asyncio.Lock]) -> None:
        self._api, self._call, self._lock = api, call, lock
        self._checks = SharedCalls()  # concurrent "is it here?" of one image: one inspect

    async def _exists(self, image: str) -> bool:
        try:
            await self._call(f"inspect image {image}", self._api.inspect_image, image)
        except NotFound:
            return False
        return True

    async def ensure(self, image: str, *, always: bool, on_pull: PullCallback | None,
                            auth: agent_pb2.PullAuth | None = None) -> None:
        """Pull `image` when it is missing (or `always`). The presence check runs outside the
        image's lock, shared by the containers asking at the same moment (shared_calls): a
        deploy's containers no longer check one after the other. Only a pull is serialized."""
        if not always and await self._checks.run(image, lambda: self._exists(image)):
            return
        async with self._lock(f"image:{image}"):
            present = await self._exists(image)
            if present and not always:
                return
            if on_pull is not None:
                on_pull(image)
            detail = await self._call(f"pull {image}", self._pull, image, auth)
            if present or await self._exists(image):
                # Like Swarm: a failed pull of an image that is present locally is not fatal,
                # so a registry outage does not stop restarts of what already runs here.
                return
            raise pull_failure(image, detail)

    def _pull(self, image: str, auth: agent_pb2.PullAuth | None = None) -> str:
        """Pull in the calling thread; return the engine's error text ("" on success). ``auth``
        goes to the Engine as the pull's ``X-Registry-Auth`` header (the SDK's ``auth_config``)
        and nowhere else: not the Engine's config file, not a log line."""
        repository, tag = parse_repository_tag(image)
        auth_config = {"username": auth.username, "password": auth.password,
                       "serveraddress": auth.registry} if auth is not None and auth.password else None
        try:
            for message in self._api.pull(repository, tag=tag or "latest", stream=True, decode=True,
                                          auth_config=auth_config):
                if "error" in message:
                    return str(message["error"])
        except docker.errors.APIError as exc:
            return f"pull failed: {exc.explanation or exc}"
        return ""

    async def remove(self, image: str) -> bool:
        try:
            result = await self._call(f"remove image {image}", self._api.remove_image, image)
        except NotFound:
            return False
        return any("Deleted" in entry for entry in (result or ()) if isinstance(entry, dict))

    async def disk_usage(self) -> int:
        usage = await self._call("disk usage", self._api.df)
        return int(usage.get("LayersSize") or 0)
