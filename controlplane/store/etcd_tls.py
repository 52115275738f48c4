"""aetcd's client over TLS (``--etcd-cacert --etcd-cert --etcd-key``).

aetcd 1.0.0 builds its channel with ``grpc.aio.insecure_channel`` inside ``Client.connect``
and has no TLS option. :class:`TlsClient` overrides only that method: the same steps as
aetcd's (channel, optional user/password authentication, stubs, watcher), with a secure
channel. Kept here, beside the only module that uses the client, so an aetcd upgrade that
adds TLS itself is a one-file change; ``tests/integration/test_etcd_tls.py`` runs it against
a real etcd member with client-certificate authentication.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aetcd
import grpc
from aetcd import rpc, watcher


class EtcdTlsError(ValueError):
    """A certificate file for etcd is missing or unreadable; the message names the flag."""


@dataclass(frozen=True)
class EtcdTls:
    """PEM material for the etcd connection; ``cert``/``key`` only with client-cert auth."""

    ca: bytes | None
    cert: bytes | None
    key: bytes | None
    #: The name the members' certificates are checked against when several endpoints share
    #: one channel (gRPC's ``ipv4:`` target has no host name of its own).
    server_name: str | None = None

    @staticmethod
    def load(cacert: Path | None, cert: Path | None, key: Path | None) -> EtcdTls:
        if (cert is None) != (key is None):
            raise EtcdTlsError("--etcd-cert and --etcd-key: give both or neither")

        def read(path: Path | None, flag: str) -> bytes | None:
            if path is None:
                return None
            try:
                return path.read_bytes()
            except OSError as exc:
                raise EtcdTlsError(f"{flag}: cannot read {path}: {exc.strerror}") from None

        return EtcdTls(read(cacert, "--etcd-cacert"), read(cert, "--etcd-cert"), read(key, "--etcd-key"))

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(root_certificates=self.ca, private_key=self.key,
                                            certificate_chain=self.cert)


class TlsClient(aetcd.Client):
    """``aetcd.Client`` whose ``connect`` opens a TLS channel."""

    def __init__(self, *args: Any, tls: EtcdTls, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tls = tls

    async def connect(self) -> None:
        # Mirrors aetcd.Client.connect (1.0.0) but for the channel's credentials.
        if self._connected.is_set():
            return
        if getattr(self, "_is_connecting", False):  # aetcd's own attribute (untyped)
            async with asyncio.timeout(self._connect_wait_timeout):
                await self._connected.wait()
            return
        try:
            self._is_connecting = True
            options = list(self._options.items())
            if self._tls.server_name:
                options.append(("grpc.ssl_target_name_override", self._tls.server_name))
            self.channel = rpc.secure_channel(f"{self._host}:{self._port}", self._tls.credentials(),
                                              options=options)
            if self._username is not None and self._password is not None:
                self.auth_stub = rpc.AuthStub(self.channel)
                resp = await self.auth_stub.Authenticate(
                    rpc.AuthenticateRequest(name=self._username, password=self._password), timeout=self._timeout)
                self.metadata = (("token", resp.token),)
            self.kvstub = rpc.KVStub(self.channel)
            self.clusterstub = rpc.ClusterStub(self.channel)
            self.leasestub = rpc.LeaseStub(self.channel)
            self.maintenancestub = rpc.MaintenanceStub(self.channel)
            self._watcher = watcher.Watcher(rpc.WatchStub(self.channel), timeout=self._timeout,
                                            metadata=self.metadata)
            self._connected.set()
        except grpc.RpcError as exc:
            raise aetcd.exceptions.ClientError(str(exc)) from exc
        finally:
            self._is_connecting = False
