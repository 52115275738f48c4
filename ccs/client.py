"""``AsyncClient`` (the core) and ``Client`` (a thin blocking wrapper over it).

Resources hang off the client as namespaces with the same verbs everywhere, as in the
server's stores: ``client.clusters.create(...)``, ``client.applications.get(...)``,
``client.events.watch(...)``. List methods follow page tokens and return a ``Listing`` (a
``list`` that also carries the revision to watch from).

``Client`` does not repeat any of that. It runs one private event loop in a daemon thread and
holds blocking twins of the ``AsyncClient``'s namespaces (``ccs._sync``): each method is the
async one run to completion on that loop, with the same signature as far as a type checker
sees, and async iterators become blocking iterators.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator
from types import TracebackType
from typing import Any, TypeVar

import grpc.aio

from ccs._sync import (
    SyncApplications,
    SyncAudit,
    SyncClusters,
    SyncConfigs,
    SyncContainers,
    SyncEvents,
    SyncNetworks,
    SyncNodes,
    SyncRegistries,
    SyncReleases,
    SyncRoutes,
    SyncSecrets,
    SyncServices,
    SyncTokens,
    SyncTriggers,
)
from ccs._transport import Transport, make_channel
from ccs.access import Audit, Tokens
from ccs.applications import Applications
from ccs.clusters import Clusters, Networks, Nodes
from ccs.config import load_config
from ccs.events import Events
from ccs.registries import Registries
from ccs.releases import Releases, Routes
from ccs.secrets import Configs, Secrets
from ccs.triggers import Triggers
from ccs.workloads import Containers, Services

__all__ = ["AsyncClient", "Client"]

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0


class AsyncClient:
    """A connection to one ccs control plane.

    ``channel`` is the transport seam: pass any ``grpc.aio.Channel`` (an in-process server's,
    one with your own interceptors) and the client uses it without owning it.

    TLS is the default, as on the server: the server must chain to ``ca_pem``/``ca_file``
    (``from_config`` passes the CA the context pinned) or to the system roots. ``tls=False``
    talks to a server started with ``--insecure`` only (the token then travels in clear).
    """

    def __init__(
        self,
        address: str,
        token: str | None = None,
        *,
        tls: bool = True,
        ca_file: str | os.PathLike[str] | None = None,
        ca_pem: str | bytes | None = None,
        client_cert: str | os.PathLike[str] | None = None,
        client_key: str | os.PathLike[str] | None = None,
        channel: grpc.aio.Channel | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> None:
        self.address = address
        self._owns_channel = channel is None
        self._channel = channel if channel is not None else make_channel(
            address, tls=tls, ca_file=ca_file, ca_pem=ca_pem, client_cert=client_cert,
            client_key=client_key,
        )
        transport = Transport(self._channel, token, timeout)
        self.clusters = Clusters(transport)
        self.nodes = Nodes(transport)
        self.applications = Applications(transport)
        self.services = Services(transport)
        self.containers = Containers(transport)
        self.events = Events(transport)
        self.releases = Releases(transport)
        self.routes = Routes(transport)
        self.networks = Networks(transport)
        self.tokens = Tokens(transport)
        self.secrets = Secrets(transport)
        self.configs = Configs(transport)
        self.triggers = Triggers(transport)
        self.registries = Registries(transport)
        self.audit = Audit(transport)

    @classmethod
    def from_config(
        cls, context: str | None = None, path: str | os.PathLike[str] | None = None
    ) -> AsyncClient:
        """A client for ``context`` (default: the current one) of the config at ``path``
        (default: ``$CCS_CONFIG`` or ``~/.config/ccs/config.yaml``)."""
        _, ctx = load_config(path).context(context)
        return cls(ctx.server, ctx.token, tls=ctx.tls, ca_file=ctx.ca_file, ca_pem=ctx.ca_pem,
                   client_cert=ctx.client_cert, client_key=ctx.client_key)

    async def close(self) -> None:
        """Close the channel if the client created it."""
        if self._owns_channel:
            await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class Client:
    """The blocking client: the same namespaces and methods as ``AsyncClient``, run on a
    private event loop in a background thread. Use as a context manager or call ``close``."""

    def __init__(
        self,
        address: str,
        token: str | None = None,
        *,
        tls: bool = True,
        ca_file: str | os.PathLike[str] | None = None,
        ca_pem: str | bytes | None = None,
        client_cert: str | os.PathLike[str] | None = None,
        client_key: str | os.PathLike[str] | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="ccs-client-loop", daemon=True
        )
        self._thread.start()

        async def make() -> AsyncClient:  # grpc.aio binds a channel to the loop creating it
            return AsyncClient(address, token, tls=tls, ca_file=ca_file, ca_pem=ca_pem,
                               client_cert=client_cert, client_key=client_key, timeout=timeout)

        try:
            self.aio: AsyncClient = self.run(make())
        except BaseException:
            self._stop_loop()
            raise
        aio = self.aio
        self.clusters = SyncClusters(aio.clusters, self)
        self.nodes = SyncNodes(aio.nodes, self)
        self.applications = SyncApplications(aio.applications, self)
        self.services = SyncServices(aio.services, self)
        self.containers = SyncContainers(aio.containers, self)
        self.events = SyncEvents(aio.events, self)
        self.releases = SyncReleases(aio.releases, self)
        self.routes = SyncRoutes(aio.routes, self)
        self.networks = SyncNetworks(aio.networks, self)
        self.tokens = SyncTokens(aio.tokens, self)
        self.secrets = SyncSecrets(aio.secrets, self)
        self.configs = SyncConfigs(aio.configs, self)
        self.triggers = SyncTriggers(aio.triggers, self)
        self.registries = SyncRegistries(aio.registries, self)
        self.audit = SyncAudit(aio.audit, self)

    @classmethod
    def from_config(
        cls, context: str | None = None, path: str | os.PathLike[str] | None = None
    ) -> Client:
        """As ``AsyncClient.from_config``."""
        _, ctx = load_config(path).context(context)
        return cls(ctx.server, ctx.token, tls=ctx.tls, ca_file=ctx.ca_file, ca_pem=ctx.ca_pem,
                   client_cert=ctx.client_cert, client_key=ctx.client_key)

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run ``awaitable`` on the client's loop and return its result (fully typed), e.g.
        ``client.run(client.aio.clusters.get("prod"))``."""

        async def wrap() -> T:
            return await awaitable

        coro: Coroutine[Any, Any, T] = wrap()
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except BaseException:  # e.g. KeyboardInterrupt: do not leave the call running
            future.cancel()
            raise

    def iterate(self, aiter: AsyncIterator[T]) -> Generator[T, None, None]:
        """Turn an async iterator on the client's loop into a blocking one; closing the
        iterator (or breaking out of a for loop) closes the async one."""
        try:
            while True:
                try:
                    yield self.run(aiter.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            aclose: Callable[[], Awaitable[None]] | None = getattr(aiter, "aclose", None)
            if aclose is not None and self._loop.is_running():
                self.run(aclose())

    def close(self) -> None:
        """Close the channel and stop the background loop; idempotent."""
        if not self._loop.is_running():
            return
        try:
            self.run(self.aio.close())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
