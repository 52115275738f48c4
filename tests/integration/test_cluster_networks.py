"""Cluster networks through a real ccs-server on a real etcd, by the CLI as a user runs it and by
the SDK: create, list with the applications joining each, the refusal of a template joining a
network that does not exist (naming the field and the fix), and ``rm`` refused while an
application joins the network (naming it), with the race between the two closed by etcd guards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import ccs
from ccs.v1 import resources_pb2 as pb
from controlplane.store import Conflict, keys
from controlplane.store.etcd import Etcd
from controlplane.store.txn import Txn

from .cli_process import cli, ok

pytestmark = [pytest.mark.etcd, pytest.mark.timeout(180)]


def template(network: str = "team", key: str = "shared") -> str:
    return f"""
services:
  web:
    image: local/busybox:1
    command: ["sleep", "600"]
    networks: [{key}, default]
networks:
  {key}: {{external: true, name: {network}}}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "compose.yaml").write_text(text)
    return d / "compose.yaml"


def test_a_template_joining_a_missing_cluster_network_is_refused_naming_the_field_and_the_fix(
    ccs_server: Any, unique: str, tmp_path: Path
) -> None:
    c = unique
    ok(ccs_server, "cluster", "create", c)
    shop = write(tmp_path, "shop", template())
    res = cli(ccs_server, "app", "deploy", "-c", c, "-f", str(shop), "--name", "shop")
    assert res.returncode == 4, (res.stdout, res.stderr)
    assert res.stderr.strip() == (
        f"error: networks.shared.external: network 'team' does not exist in cluster '{c}'; create it with "
        f"`ccs network create team -c {c}`, or remove external: true to give the application a network of its own")
    assert cli(ccs_server, "app", "get", "shop", "-c", c).returncode == 3  # nothing was written

    ok(ccs_server, "network", "create", "team", "-c", c, "--description", "shop and blog")
    ok(ccs_server, "app", "deploy", "-c", c, "-f", str(shop), "--name", "shop")
    ok(ccs_server, "app", "deploy", "-c", c, "-f", str(write(tmp_path, "blog", template(key="net"))), "--name", "blog")
    listed = json.loads(ok(ccs_server, "network", "ls", "-c", c, "-o", "json"))
    assert [(n["meta"]["name"], n["applications"], n["description"]) for n in listed] == [
        ("team", ["blog", "shop"], "shop and blog")]
    assert "blog,shop" in ok(ccs_server, "network", "ls", "-c", c)

    # rm is refused while applications join the network, naming them (exit 5).
    res = cli(ccs_server, "network", "rm", "team", "-c", c)
    assert res.returncode == 5, (res.stdout, res.stderr)
    assert "network 'team' is used by application(s) blog, shop" in res.stderr
    # An update that leaves the network, and a removal, free it.
    ok(ccs_server, "app", "update", "shop", "-c", c, "-f", str(write(tmp_path, "shop2", "services: {web: {image: x}}\n")))
    ok(ccs_server, "app", "rm", "blog", "-c", c)
    assert json.loads(ok(ccs_server, "network", "get", "team", "-c", c, "-o", "json")).get("applications", []) == []
    ok(ccs_server, "network", "rm", "team", "-c", c)
    assert cli(ccs_server, "network", "get", "team", "-c", c).returncode == 3
    # Gone again: an update that joins it is refused the same way.
    res = cli(ccs_server, "app", "update", "shop", "-c", c, "-f", str(shop))
    assert res.returncode == 4 and "networks.shared.external: network 'team' does not exist" in res.stderr


async def test_the_sdk_manages_cluster_networks(ccs_server: Any, unique: str) -> None:
    async with ccs_server.client() as client:
        await client.clusters.create(unique)
        made = await client.networks.create(unique, "ops", labels={"team": "ops"})
        assert (made.meta.name, made.cluster, dict(made.meta.labels)) == ("ops", unique, {"team": "ops"})
        with pytest.raises(ccs.AlreadyExists):
            await client.networks.create(unique, "ops")
        with pytest.raises(ccs.InvalidArgument, match="name"):
            await client.networks.create(unique, "Not_A_Label")
        with pytest.raises(ccs.NotFound):
            await client.networks.create(f"{unique}-none", "ops")  # no such cluster
        await client.applications.create(unique, "a1", template(network="ops"))
        assert list((await client.networks.get(unique, "ops")).applications) == ["a1"]
        with pytest.raises(ccs.FailedPrecondition, match="used by application"):
            await client.networks.delete(unique, "ops")
        assert [n.meta.name for n in await client.networks.list(unique)] == ["ops"]


async def test_rm_and_a_deploy_racing_for_a_network_cannot_both_win(ccs_server: Any, etcd: Any, unique: str) -> None:
    """The two guards, made to meet deterministically: a delete whose read of the applications
    is older than an application that joined meanwhile fails (and ``rm`` retries it against the
    new state); an accepting write whose network was removed after the check fails."""
    async with ccs_server.client() as client:
        await client.clusters.create(unique)
        await client.networks.create(unique, "team")
        store = Etcd([etcd.url])
        await store.connect()
        try:
            read_at = (await store.range(keys.apps(unique))).revision
            await client.applications.create(unique, "late", template())  # lands after that read
            stale = Txn().require_unchanged(keys.apps(unique), read_at, "applications", unique)
            with pytest.raises(Conflict):
                await stale.delete(keys.network(unique, "team")).commit(store)
            assert await store.get(keys.network(unique, "team")) is not None
            with pytest.raises(ccs.FailedPrecondition, match="late"):
                await client.networks.delete(unique, "team")  # the real rm sees it

            kv = await store.get(keys.network(unique, "team"))
            assert kv is not None
            await client.applications.update(unique, "late", template="services: {web: {image: x}}\n")  # leaves it
            await client.networks.delete(unique, "team")
            guarded = Txn().require_revision(kv.key, "network", "team", kv.mod_revision)
            with pytest.raises(Exception, match="network 'team' not found"):
                await guarded.put(keys.app(unique, "x"), pb.Application()).commit(store)
        finally:
            await store.close()
