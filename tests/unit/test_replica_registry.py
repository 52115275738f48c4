"""The replica registry's own record (controlplane/replicas.py) and the token an agent sends,
without etcd: a fake that fails on purpose makes each failure happen, not race."""

from __future__ import annotations

import asyncio
from typing import Any

from ccs.join_token import JoinToken
from controlplane.replicas import PREFIX, ReplicaRegistry, advertised_host
from nodeagent.enrollment import without_servers


def test_an_advertised_name_with_a_port_gives_the_host_alone() -> None:
    # It became "[api.example.com:7443]:7443", and every token named an unparsable server.
    assert advertised_host("0.0.0.0:7443", ["api.example.com:7443"], []) == "api.example.com"
    assert advertised_host("0.0.0.0:7443", ["[fd00::1]:7443"], []) == "fd00::1"
    assert advertised_host("0.0.0.0:7443", ["10.0.0.5"], []) == "10.0.0.5"


class _Client:
    def __init__(self) -> None:
        self.revoked: list[int] = []

    async def revoke_lease(self, lease: int) -> None:
        self.revoked.append(lease)


class _Etcd:
    """Grants leases; the first ``failures`` record writes fail as an etcd timeout would."""

    def __init__(self, failures: int) -> None:
        self.failures, self.leases = failures, 0
        self.records: dict[str, int] = {}
        self.client = _Client()

    async def grant_lease(self, ttl: int) -> int:
        self.leases += 1
        return self.leases

    async def txn(self, compare: list[Any], success: list[Any]) -> None:
        if self.failures:
            self.failures -= 1
            raise TimeoutError("etcd did not answer")
        for op in success:
            self.records[op.request_put.key.decode()] = op.request_put.lease

    async def range(self, prefix: str) -> Any:
        class _R:
            kvs: list[Any] = []
        return _R()


async def test_a_record_whose_first_write_failed_is_written_on_the_next_round() -> None:
    # The lease was kept before the write: the loop then only refreshed it, and the record
    # stayed missing for as long as the replica ran (other replicas' lists left it out).
    etcd = _Etcd(failures=1)
    registry = ReplicaRegistry(etcd, "10.0.0.5:7443", "10.0.0.5:7444", ttl=1)  # type: ignore[arg-type]
    await registry.start()
    assert etcd.records == {} and etcd.client.revoked == [1]  # the unused lease is given back
    for _ in range(100):  # rounds every ttl/3 s: until the record is there
        if etcd.records:
            break
        await asyncio.sleep(0.05)
    await registry.stop()
    assert etcd.records == {PREFIX + registry.id: 2}


def test_the_agent_sends_its_token_without_the_server_list() -> None:
    # A replica of the previous release refuses a token with a tail ("invalid join token").
    token = JoinToken("c1", "s3cr3t", ca_fingerprint="ab" * 32, servers=("a:7443", "b:7443")).render()
    assert "@" in token
    assert without_servers(token) == JoinToken("c1", "s3cr3t", ca_fingerprint="ab" * 32).render()
    assert without_servers("CCSJOIN-1-c1-s3cr3t") == "CCSJOIN-1-c1-s3cr3t"
