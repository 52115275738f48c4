"""``cli.push_auth``: whose credentials ``--build --push-to`` pushes with, per registry host."""

from __future__ import annotations

import grpc
import pytest

from ccs import errors
from ccs.v1 import api_pb2
from cli.push_auth import PushAuth, push_auths


async def test_the_clusters_login_where_it_has_one_else_the_local_login_saying_why() -> None:
    asked: list[str] = []

    async def fetch(host: str) -> api_pb2.PushCredential:
        asked.append(host)
        if host == "r.example:5000":
            return api_pb2.PushCredential(host=host, username="ci", password="pw-1")
        if host == "plain.example":
            raise errors.FailedPrecondition("GetPushCredential answers only on a TLS connection")
        if host == "old.example":
            raise errors.CcsError("unimplemented", grpc.StatusCode.UNIMPLEMENTED)
        raise errors.NotFound(f"registry login {host!r} not found")

    got = await push_auths(["r.example:5000", "other.example", "r.example:5000", "plain.example", "old.example"],
                           fetch)
    assert sorted(asked) == ["old.example", "other.example", "plain.example", "r.example:5000"]  # once each
    assert got["r.example:5000"].auth_config() == {"username": "ci", "password": "pw-1"}
    assert got["r.example:5000"].describe() == "pushing to r.example:5000 with the cluster's registry login (user ci)"
    assert "pw-1" not in repr(got["r.example:5000"])
    assert got["other.example"].auth_config() is None
    assert got["other.example"].describe() == (
        "pushing to other.example with the local docker login (the cluster has no login for other.example)")
    assert "only on a TLS connection" in got["plain.example"].describe()
    assert "older" in got["old.example"].describe()


async def test_a_refusal_is_raised_not_answered_with_the_local_login() -> None:
    async def fetch(host: str) -> api_pb2.PushCredential:
        raise errors.PermissionDenied("token 'v' (role viewer) may not call RegistryService/GetPushCredential")

    with pytest.raises(errors.PermissionDenied):
        await push_auths(["r.example"], fetch)


async def test_without_a_cluster_to_ask_the_local_login() -> None:
    assert (await push_auths(["r.example"], None)) == {"r.example": PushAuth("r.example", why="no cluster to ask")}
