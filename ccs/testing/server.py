"""Serving a ``FakeApi``: on the running loop (``start_server``) or from a background thread
(``serve_in_thread``, for synchronous callers such as a CLI runner)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc.aio

from ccs.testing.api import FakeApi
from ccs.v1 import api_pb2_grpc, triggers_pb2_grpc

__all__ = ["ThreadedServer", "serve_in_thread", "start_server"]

T = TypeVar("T")


async def start_server(api: FakeApi, address: str = "127.0.0.1:0") -> tuple[grpc.aio.Server, str]:
    """Start a grpc.aio server for ``api`` on the running loop; returns it and host:port."""
    server = grpc.aio.server()
    for add in (
        api_pb2_grpc.add_ClusterServiceServicer_to_server,
        api_pb2_grpc.add_NodeServiceServicer_to_server,
        api_pb2_grpc.add_ApplicationServiceServicer_to_server,
        api_pb2_grpc.add_ServiceServiceServicer_to_server,
        api_pb2_grpc.add_ContainerServiceServicer_to_server,
        api_pb2_grpc.add_EventServiceServicer_to_server,
        api_pb2_grpc.add_ReleaseServiceServicer_to_server,
        api_pb2_grpc.add_RouteServiceServicer_to_server,
        api_pb2_grpc.add_NetworkServiceServicer_to_server,
        api_pb2_grpc.add_SecretServiceServicer_to_server,
        api_pb2_grpc.add_ConfigServiceServicer_to_server,
        triggers_pb2_grpc.add_TriggerServiceServicer_to_server,
        api_pb2_grpc.add_RegistryServiceServicer_to_server,
        api_pb2_grpc.add_TokenServiceServicer_to_server,
    ):
        add(api, server)
    port = server.add_insecure_port(address)
    await server.start()
    return server, f"{address.rsplit(':', 1)[0]}:{port}"


@dataclass
class ThreadedServer:
    """A fake served from a background thread: its address, and a way to run code on the
    server's loop (the fake is not thread-safe)."""

    address: str
    loop: asyncio.AbstractEventLoop

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the server's loop and return its result."""

        async def run() -> T:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result()


@contextmanager
def serve_in_thread(api: FakeApi) -> Iterator[ThreadedServer]:
    """Serve ``api`` from a background thread's loop; stops the server on exit."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="ccs-fake-api", daemon=True)
    thread.start()
    server, address = asyncio.run_coroutine_threadsafe(start_server(api), loop).result()
    try:
        yield ThreadedServer(address, loop)
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(None), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
