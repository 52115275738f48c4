"""How this node is known to the control plane: its identity, registration, renewal, channel.

`Enrollment` holds the node's identity (a node certificate under TLS, the default; a bearer
credential with `insecure` or a channel passed in, the test seam), loads it from the state dir,
registers with the join token when there is none or it was refused or expired (`node_tls`
checks the server against the token's CA fingerprint first), renews the certificate at two
thirds of its lifetime, and makes the channel node calls go on (mutual TLS with the current
certificate). `Agent` asks it for a channel and tells it when the identity was refused; the
renewal moves the client to a new channel and sets `renewed`, on which the agent reopens its
session (no restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grpc
import grpc.aio

from ccs.cancellation import raise_if_cancelled
from ccs.join_token import SERVERS_SEP
from ccs.tls import verification_hint
from ccs.v1 import agent_pb2, resources_pb2

from . import node_tls
from .backoff import Backoff
from .config import Identity, load_identity, save_identity
from .dispatcher_client import CHANNEL_OPTIONS, AgentError, DispatcherClient, describe
from .servers import ServerList


class Enrollment:
    def __init__(
        self, servers: ServerList, *, name: str, labels: Mapping[str, str], state_dir: Path | None,
        join_token: str | None, identity: Identity | None, channel: grpc.aio.Channel | None, tls: bool,
        reconnect: Backoff, log: Any,
    ) -> None:
        self.servers = servers
        self.name = name
        self.labels = labels
        self.state_dir = state_dir
        self._join_token = join_token
        self.identity = identity
        self._channel = channel
        self.tls = tls
        self._reconnect = reconnect
        self.log = log
        self.node_status = resources_pb2.NodeStatus()  # what registration reports (set by the agent)
        self.renewed = asyncio.Event()  # set when a renewal moved the client to a new channel
        self._retired: list[grpc.aio.Channel] = []  # channels of replaced certificates

    @property
    def server_address(self) -> str:
        """The API address of the replica in use."""
        return self.servers.api()

    def node_address(self, replica: str | None = None) -> str:
        """Where node calls to a replica go (the current one by default): its node port under
        TLS (learned, else the registered node port on its host), its API port otherwise."""
        entry = next((e for e in self.servers.entries() if e.api == replica), None) if replica else None
        entry = entry or self.servers.current
        if not self.tls:
            return entry.api
        assert self.identity is not None
        return entry.node or node_tls.node_address(entry.api, self.identity)

    @property
    def given_channel(self) -> bool:
        """A channel was passed in (the test seam): no failover, no channel of our own."""
        return self._channel is not None

    def open_channel(self, address: str | None = None) -> grpc.aio.Channel:
        """The channel node calls go on (to the current replica, or the node address given):
        mutual TLS with the current certificate, or plaintext."""
        if self._channel is not None:
            return self._channel
        address = address or self.node_address()
        if self.tls:
            assert self.identity is not None
            return node_tls.node_channel_at(address, self.identity)
        return grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)

    async def reregister(self, client: DispatcherClient, why: str) -> None:
        """Register again (the identity was refused or expired) and move `client` to the new one."""
        await self.ensure(fresh=True, why=why)
        assert self.identity is not None
        client.credential = self.identity.credential
        if self._channel is None:
            self._retired.append(client.use(self.open_channel()))
            await self.close_retired()

    async def fail_over(self, client: DispatcherClient, why: str) -> None:
        """Move ``client`` to the next API replica, if there is another (nodeagent.servers)."""
        if self._channel is not None or not self.servers.failover(why):
            return
        self._retired.append(client.use(self.open_channel()))
        await self.close_retired()

    async def close_retired(self) -> None:
        while self._retired:
            with contextlib.suppress(Exception):
                await self._retired.pop().close()

    def _usable(self, identity: Identity) -> bool:
        """Whether a saved identity fits this mode (a certificate under TLS, a credential without)."""
        if not self.tls:
            return bool(identity.credential)
        if not identity.has_certificate:
            self.log.warning("the saved identity has no node certificate (made by an older agent or an "
                             "--insecure server): registering again")
            return False
        if node_tls.expired(identity):
            self.log.warning("the saved node certificate expired", not_after=node_tls.describe_expiry(identity))
            return False
        return True

    async def ensure(self, *, fresh: bool, why: str = "") -> None:
        """Load or obtain the node identity; `fresh` means the current one is refused or expired."""
        if fresh:
            if not self._join_token:
                raise AgentError(f"{why}, and no join token was given to register again")
            self.log.warning("registering again with the join token", reason=why)
            self.identity = None
        if self.identity is None and self.state_dir is not None and not fresh:
            saved = load_identity(self.state_dir)
            self.identity = saved if saved is not None and self._usable(saved) else None
        if self.identity is None:
            if not self._join_token:
                raise AgentError(f"no usable saved identity in {self.state_dir} and no join token given")
            self.identity = await self._register(self._join_token)

    async def _register_once(self, join_token: str) -> tuple[agent_pb2.RegisterResponse, str]:
        """One registration attempt; the response and the key (TLS) it is for.

        The token goes to the server without its ``@servers`` tail: the server reads only the
        cluster and the secret, and a server of the previous release refuses a token with a
        tail ("invalid join token"), which would stop an agent from registering during a
        rolling upgrade of the replicas."""
        wire_token = without_servers(join_token)
        if not self.tls:
            channel = self._channel or grpc.aio.insecure_channel(self.server_address, options=CHANNEL_OPTIONS)
            try:
                return await DispatcherClient(channel).register(
                    wire_token, self.name, self.labels, self.node_status), ""
            finally:
                if self._channel is None:
                    await channel.close()
        ca_pem = await node_tls.server_ca(self.server_address, join_token)
        key_pem, csr_pem = await asyncio.to_thread(node_tls.new_key_and_csr, self.name)
        channel = node_tls.api_channel(self.server_address, ca_pem)
        try:
            response = await DispatcherClient(channel).register(
                wire_token, self.name, self.labels, self.node_status, csr_pem)
        finally:
            await channel.close()
        return response, key_pem

    async def _register(self, join_token: str) -> Identity:
        while True:
            try:
                response, key_pem = await self._register_once(join_token)
                break
            except AgentError:
                raise
            except Exception as exc:
                hint = verification_hint(describe(exc), self.server_address) if self.tls else ""
                if hint.startswith("the server's certificate does not name"):
                    raise AgentError(f"registration: {hint}") from None  # retrying cannot fix it
                delay = self._reconnect.next()
                self.log.warning("register failed", server=self.server_address, error=describe(exc),
                                 retry_in=round(delay, 2))
                if self._channel is None:
                    self.servers.failover(f"register failed: {describe(exc)}")
                await asyncio.sleep(delay)
        self.servers.learn(response.replicas)
        identity = Identity(
            response.cluster, response.node.meta.name or self.name, response.credential, self.server_address,
            key_pem, response.certificate_pem, response.ca_pem, response.node_port, time.time(),
        )
        if self.state_dir is not None:
            save_identity(self.state_dir, identity)
        self.log.info("registered", cluster=identity.cluster, node_id=response.node.meta.id,
                      certificate_until=node_tls.describe_expiry(identity) if identity.has_certificate else None)
        return identity

    async def renewals(self, client: DispatcherClient) -> None:
        """Renew the node certificate at two thirds of its lifetime, with a new key, and move
        the session to a channel presenting it (`CertificateRenewed` in the session)."""
        backoff = Backoff(base=1.0, cap=30.0)
        while True:
            assert self.identity is not None
            await asyncio.sleep(node_tls.renew_delay(self.identity))
            identity = self.identity
            try:
                key_pem, csr_pem = await asyncio.to_thread(node_tls.new_key_and_csr, self.name)
                response = await client.renew(csr_pem)
            except Exception as exc:
                raise_if_cancelled()
                delay = backoff.next()
                self.log.warning("certificate renewal failed", error=describe(exc), retry_in=round(delay, 2),
                                 not_after=node_tls.describe_expiry(identity))
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            if self.identity is not identity:
                continue  # registered again meanwhile: that identity is newer
            renewed = node_tls.with_certificate(identity, key_pem, response.certificate_pem, response.ca_pem)
            if self.state_dir is not None:
                save_identity(self.state_dir, renewed)
            self.identity = renewed
            self._retired.append(client.use(self.open_channel()))
            self.renewed.set()
            self.log.info("node certificate renewed", not_after=node_tls.describe_expiry(renewed))


def without_servers(join_token: str) -> str:
    """``join_token`` without the ``@a:7443,b:7443`` tail (the secret never holds ``@``)."""
    return join_token.partition(SERVERS_SEP)[0]
