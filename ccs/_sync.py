"""The blocking namespaces of ``ccs.Client``: thin typed wrappers over the async core.

Why descriptors and not ``__getattr__``: forwarding by name made every sync call ``Any`` to a
type checker. Here each sync method is declared once, as ``get = blocking(Clusters.get)``;
``blocking`` captures the async method's parameters with a ``ParamSpec`` and its result type,
so mypy (strict) sees ``client.clusters.get(name: str) -> Cluster`` exactly as on the async
client, and a call with a wrong argument is a type error. Nothing is copied by hand, so the
two surfaces cannot drift (``tests/unit/test_sdk_sync_types.py`` checks that every public
async method has its blocking twin).

Coroutines run to completion on the client's private loop; async iterators (``watch``,
``logs``) become blocking iterators that close the async one when closed or left.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Coroutine, Generator
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, Self, TypeVar, overload

from ccs.access import Audit, Tokens
from ccs.applications import Applications
from ccs.clusters import Clusters, Networks, Nodes
from ccs.events import Events
from ccs.registries import Registries
from ccs.releases import Releases, Routes
from ccs.secrets import Configs, Secrets
from ccs.triggers import Triggers
from ccs.workloads import Containers, Services

__all__ = [
    "SyncApplications",
    "SyncAudit",
    "SyncClusters",
    "SyncConfigs",
    "SyncContainers",
    "SyncEvents",
    "SyncNetworks",
    "SyncNodes",
    "SyncRegistries",
    "SyncReleases",
    "SyncRoutes",
    "SyncSecrets",
    "SyncServices",
    "SyncTokens",
    "SyncTriggers",
]

P = ParamSpec("P")
T = TypeVar("T")
A = TypeVar("A")


class Runner(Protocol):
    """What the namespaces need of ``ccs.Client`` (a protocol, so this module does not import
    the client that imports it)."""

    def run(self, awaitable: Coroutine[Any, Any, T]) -> T: ...

    def iterate(self, aiter: AsyncIterator[T]) -> Generator[T, None, None]: ...


class _Namespace(Generic[A]):
    """One resource namespace of the blocking client, over its async twin."""

    def __init__(self, target: A, client: Runner) -> None:
        self._target = target
        self._client = client


class blocking(Generic[P, T]):
    """``name = blocking(AsyncClass.name)``: the method, run to completion on the client's loop."""

    def __init__(self, method: Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]) -> None:
        self._method = method
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...

    @overload
    def __get__(self, obj: _Namespace[Any], owner: type[Any]) -> Callable[P, T]: ...

    def __get__(self, obj: _Namespace[Any] | None, owner: type[Any]) -> Self | Callable[P, T]:
        if obj is None:
            return self
        bound = getattr(obj._target, self._method.__name__)
        client = obj._client

        @functools.wraps(bound)
        def call(*args: P.args, **kwargs: P.kwargs) -> T:
            result: T = client.run(bound(*args, **kwargs))
            return result

        return call


class iterating(Generic[P, T]):
    """``name = iterating(AsyncClass.name)``: the async iterator as a blocking one."""

    def __init__(self, method: Callable[Concatenate[Any, P], AsyncIterator[T]]) -> None:
        self._method = method
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...

    @overload
    def __get__(self, obj: _Namespace[Any], owner: type[Any]) -> Callable[P, Generator[T, None, None]]: ...

    def __get__(self, obj: _Namespace[Any] | None, owner: type[Any]) -> Self | Callable[P, Generator[T, None, None]]:
        if obj is None:
            return self
        bound = getattr(obj._target, self._method.__name__)
        client = obj._client

        @functools.wraps(bound)
        def call(*args: P.args, **kwargs: P.kwargs) -> Generator[T, None, None]:
            iterator: Generator[T, None, None] = client.iterate(bound(*args, **kwargs))
            return iterator

        return call


class SyncClusters(_Namespace[Clusters]):
    __doc__ = Clusters.__doc__
    create = blocking(Clusters.create)
    get = blocking(Clusters.get)
    list = blocking(Clusters.list)
    update = blocking(Clusters.update)
    delete = blocking(Clusters.delete)
    join_token = blocking(Clusters.join_token)
    server_info = blocking(Clusters.server_info)


class SyncNodes(_Namespace[Nodes]):
    __doc__ = Nodes.__doc__
    get = blocking(Nodes.get)
    list = blocking(Nodes.list)
    update = blocking(Nodes.update)
    delete = blocking(Nodes.delete)
    revoke = blocking(Nodes.revoke)
    prune = blocking(Nodes.prune)


class SyncSecrets(_Namespace[Secrets]):
    __doc__ = Secrets.__doc__
    create = blocking(Secrets.create)
    update = blocking(Secrets.update)
    get = blocking(Secrets.get)
    list = blocking(Secrets.list)
    delete = blocking(Secrets.delete)
    rotate_key = blocking(Secrets.rotate_key)


class SyncTriggers(_Namespace[Triggers]):
    __doc__ = Triggers.__doc__
    create = blocking(Triggers.create)
    list = blocking(Triggers.list)
    delete = blocking(Triggers.delete)
    rotate = blocking(Triggers.rotate)
    invoke = blocking(Triggers.invoke)
class SyncRegistries(_Namespace[Registries]):
    __doc__ = Registries.__doc__
    login = blocking(Registries.login)
    list = blocking(Registries.list)
    delete = blocking(Registries.delete)


class SyncConfigs(_Namespace[Configs]):
    __doc__ = Configs.__doc__
    create = blocking(Configs.create)
    update = blocking(Configs.update)
    get = blocking(Configs.get)
    list = blocking(Configs.list)
    delete = blocking(Configs.delete)


class SyncNetworks(_Namespace[Networks]):
    __doc__ = Networks.__doc__
    create = blocking(Networks.create)
    get = blocking(Networks.get)
    list = blocking(Networks.list)
    delete = blocking(Networks.delete)


class SyncApplications(_Namespace[Applications]):
    __doc__ = Applications.__doc__
    create = blocking(Applications.create)
    get = blocking(Applications.get)
    list = blocking(Applications.list)
    update = blocking(Applications.update)
    apply = blocking(Applications.apply)
    delete = blocking(Applications.delete)
    start = blocking(Applications.start)
    stop = blocking(Applications.stop)
    rollback = blocking(Applications.rollback)
    revisions = blocking(Applications.revisions)
    diff = blocking(Applications.diff)
    wait = blocking(Applications.wait)


class SyncServices(_Namespace[Services]):
    __doc__ = Services.__doc__
    get = blocking(Services.get)
    list = blocking(Services.list)
    scale = blocking(Services.scale)


class SyncContainers(_Namespace[Containers]):
    __doc__ = Containers.__doc__
    get = blocking(Containers.get)
    list = blocking(Containers.list)
    page = blocking(Containers.page)
    logs = iterating(Containers.logs)
    exec_run = blocking(Containers.exec_run)

    def exec(self, *args: object, **kwargs: object) -> None:
        """Interactive sessions are async only: use ``exec_run`` here, or ``ccs.AsyncClient``."""
        raise TypeError("containers.exec is an interactive session: use containers.exec_run with the "
                        "blocking client, or containers.exec on ccs.AsyncClient")


class SyncEvents(_Namespace[Events]):
    __doc__ = Events.__doc__
    list = blocking(Events.list)
    current_revision = blocking(Events.current_revision)
    watch = iterating(Events.watch)


class SyncReleases(_Namespace[Releases]):
    __doc__ = Releases.__doc__
    list = blocking(Releases.list)
    get = blocking(Releases.get)
    shift = blocking(Releases.shift)
    confirm = blocking(Releases.confirm)
    rollback = blocking(Releases.rollback)
    promote = blocking(Releases.promote)
    abort = blocking(Releases.abort)
    wait = blocking(Releases.wait)


class SyncRoutes(_Namespace[Routes]):
    __doc__ = Routes.__doc__
    list = blocking(Routes.list)


class SyncTokens(_Namespace[Tokens]):
    __doc__ = Tokens.__doc__
    create = blocking(Tokens.create)
    list = blocking(Tokens.list)
    revoke = blocking(Tokens.revoke)
    whoami = blocking(Tokens.whoami)


class SyncAudit(_Namespace[Audit]):
    __doc__ = Audit.__doc__
    list = blocking(Audit.list)
    current_revision = blocking(Audit.current_revision)
    watch = iterating(Audit.watch)
