"""Typed calls for an application's services (ServiceService) and containers (ContainerService:
reads, logs, exec)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

from ccs._transport import Listing, Transport, collect
from ccs.container_exec import ExecResult, ExecSession, open_session
from ccs.container_exec import collect as collect_exec
from ccs.v1 import api_pb2, resources_pb2

__all__ = ["Containers", "Services"]


class Services:
    """Services are written by application create/update; the API reads and scales them."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    async def get(self, cluster: str, application: str, name: str) -> resources_pb2.Service:
        req = api_pb2.GetServiceRequest(cluster=cluster, application=application, name=name)
        return await self._t.unary(self._t.services.GetService, req, resources_pb2.Service)

    async def list(
        self, cluster: str, application: str = "", *, page_size: int = 0
    ) -> Listing[resources_pb2.Service]:
        """Services of one application, or of every application when it is empty."""

        async def page(token: str) -> api_pb2.ListServicesResponse:
            req = api_pb2.ListServicesRequest(
                cluster=cluster, application=application, page_size=page_size, page_token=token
            )
            return await self._t.unary(
                self._t.services.ListServices, req, api_pb2.ListServicesResponse
            )

        return await collect(page, lambda r: r.services)

    async def scale(
        self, cluster: str, application: str, name: str, replicas: int, *,
        resource_version: int = 0,
    ) -> resources_pb2.Service:
        req = api_pb2.ScaleServiceRequest(
            cluster=cluster, application=application, name=name, replicas=replicas,
            resource_version=resource_version,
        )
        return await self._t.unary(self._t.services.ScaleService, req, resources_pb2.Service)


class Containers:
    """Containers are read-only through the API: the control plane and agents write them."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    async def get(
        self, cluster: str, application: str, service: str, name: str
    ) -> resources_pb2.Container:
        req = api_pb2.GetContainerRequest(
            cluster=cluster, application=application, service=service, name=name
        )
        return await self._t.unary(self._t.containers.GetContainer, req, resources_pb2.Container)

    async def list(
        self,
        cluster: str,
        *,
        application: str = "",
        service: str = "",
        node: str = "",
        name: str = "",
        page_size: int = 0,
    ) -> Listing[resources_pb2.Container]:
        """Containers of the cluster, optionally filtered (``service`` needs ``application``);
        ``name`` picks the container of that name, matched on the server (only it comes back)."""

        async def page(token: str) -> api_pb2.ListContainersResponse:
            req = api_pb2.ListContainersRequest(
                cluster=cluster, application=application, service=service, node=node, name=name,
                page_size=page_size, page_token=token,
            )
            return await self._t.unary(
                self._t.containers.ListContainers, req, api_pb2.ListContainersResponse
            )

        return await collect(page, lambda r: r.containers)

    async def page(
        self, cluster: str, *, application: str = "", service: str = "", offset: int = 0, size: int = 0,
    ) -> api_pb2.ListContainersResponse:
        """One page: the ``size`` containers (the server's default page when 0) after the first
        ``offset`` the filters match, in name order, read now, and ``.total``, how many match.
        For a view that shows a page and reads it again as the cluster changes; ``list`` walks
        the whole list at one revision instead."""
        req = api_pb2.ListContainersRequest(cluster=cluster, application=application, service=service,
                                            offset=offset, page_size=size, with_total=True)
        return await self._t.unary(self._t.containers.ListContainers, req, api_pb2.ListContainersResponse)

    async def logs(
        self,
        cluster: str,
        application: str,
        service: str,
        container: str = "",
        *,
        follow: bool = False,
        tail: int = 0,
        since: float = 0.0,
    ) -> AsyncGenerator[api_pb2.LogsResponse, None]:
        """Log chunks of one container (by name) or of every container of the service,
        relayed from the agents; each chunk names its container. ``tail`` lines from the
        end of each log (0: all), ``since`` in Unix seconds, ``follow`` to keep streaming."""
        req = api_pb2.LogsRequest(
            cluster=cluster, application=application, service=service, container=container,
            follow=follow, tail=tail, since=since,
        )
        async for chunk in self._t.stream(self._t.containers.Logs, req, api_pb2.LogsResponse):
            yield chunk

    async def exec(
        self,
        cluster: str,
        application: str,
        service: str,
        container: str,
        command: Sequence[str],
        *,
        tty: bool = False,
        stdin: bool = False,
        rows: int = 0,
        cols: int = 0,
    ) -> ExecSession:
        """Start ``command`` in a running container; iterate the session for its output,
        ``write``/``close_stdin`` with ``stdin=True``, ``resize`` with ``tty=True``, then read
        ``exit_code``. Use it as ``async with``: leaving it ends the command (``ccs.container_exec``)."""
        return await open_session(
            self._t.containers.Exec, self._t.metadata, cluster, application, service, container, command,
            tty=tty, stdin=stdin, rows=rows, cols=cols)

    async def exec_run(
        self,
        cluster: str,
        application: str,
        service: str,
        container: str,
        command: Sequence[str],
        *,
        input: bytes | None = None,
    ) -> ExecResult:
        """Run ``command`` to its end (stdin from ``input``, if given) and return its exit code,
        stdout and stderr."""
        session = await self.exec(cluster, application, service, container, command, stdin=input is not None)
        return await collect_exec(session, input)
