"""The contract suite (see test_sdk_contract.py), cluster-level resources: clusters, secrets and
configs, registry logins, node prune, cluster networks and the cluster policy, on the SDK's fake
and on a real server alike."""

from __future__ import annotations

import pytest

import ccs

from .backends import V1, error

pytestmark = [pytest.mark.timeout(60), pytest.mark.etcd]

async def test_cluster_errors(client: ccs.AsyncClient, unique: str) -> None:
    e = await error(client.clusters.get(unique))
    assert isinstance(e, ccs.NotFound) and e.message == f"cluster {unique!r} not found"
    await client.clusters.create(unique)
    e = await error(client.clusters.create(unique))
    assert isinstance(e, ccs.AlreadyExists) and e.message == f"cluster {unique!r} already exists"
    e = await error(client.clusters.create(""))
    assert isinstance(e, ccs.InvalidArgument) and e.message == "name: is required"
    await client.applications.create(unique, "shop", V1)
    e = await error(client.clusters.delete(unique))
    assert isinstance(e, ccs.FailedPrecondition)
    assert e.message == (f"cluster {unique!r} still has 1 application(s) and 0 node(s); "
                         "remove them first or delete with force")
    await client.clusters.delete(unique, force=True)
    assert isinstance(await error(client.clusters.get(unique)), ccs.NotFound)


# ---------------------------------------------------------------- secrets and configs


async def test_secret_and_config_answers_and_errors(client: ccs.AsyncClient, unique: str) -> None:
    e = await error(client.secrets.create(unique, "db", b"pw"))
    assert isinstance(e, ccs.NotFound) and e.message == f"cluster {unique!r} not found"
    await client.clusters.create(unique)
    made = await client.secrets.create(unique, "db", b"pw")
    assert (made.name, made.version, list(made.versions), made.size) == ("db", 1, [1], 2)
    # Keyed (HMAC-SHA256 under a key the server holds): not the plain SHA-256 of b"pw".
    assert made.digest.startswith("hmac-sha256:") and len(made.digest) == len("hmac-sha256:") + 64
    assert "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4" not in made.digest
    e = await error(client.secrets.create(unique, "db", b"other"))
    assert isinstance(e, ccs.AlreadyExists) and e.message == "secret 'db' already exists"
    e = await error(client.secrets.update(unique, "nope", b"x"))
    assert isinstance(e, ccs.NotFound) and e.message == "secret 'nope' not found"
    e = await error(client.secrets.create(unique, "a b", b"x"))
    assert isinstance(e, ccs.InvalidArgument) and e.message == (
        "name: 'a b' is not a valid name: 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit")
    e = await error(client.secrets.create(unique, "empty", b""))
    assert isinstance(e, ccs.InvalidArgument) and e.message == "data: is empty"
    assert (await client.secrets.update(unique, "db", b"pw2")).version == 2
    got = await client.secrets.get(unique, "db@1")
    assert (got.version, list(got.versions), got.digest) == (1, [1, 2], made.digest)
    e = await error(client.secrets.get(unique, "db@9"))
    assert isinstance(e, ccs.NotFound) and e.message == "secret 'db@9' not found"
    e = await error(client.secrets.get(unique, "db@0"))
    assert isinstance(e, ccs.InvalidArgument) and e.message == "name: 'db@0': the version after '@' must be a positive number"
    assert [(s.name, s.version) for s in await client.secrets.list(unique)] == [("db", 2)]
    conf = await client.configs.create(unique, "conf", b"a=1")
    assert (await client.configs.get(unique, "conf")).data == b"a=1" and not conf.data
    await client.secrets.delete(unique, "db")
    e = await error(client.secrets.delete(unique, "db"))
    assert isinstance(e, ccs.NotFound) and e.message == "secret 'db' not found"
    assert [c.name for c in await client.configs.list(unique)] == ["conf"]
    assert await client.secrets.list(unique) == []



async def test_registry_login_answers_and_errors(client: ccs.AsyncClient, unique: str) -> None:
    e = await error(client.registries.login(unique, "127.0.0.1:5000", "ci", "s3cret-pw"))
    assert isinstance(e, ccs.NotFound) and e.message == f"cluster {unique!r} not found"
    await client.clusters.create(unique)
    made = await client.registries.login(unique, "127.0.0.1:5000", "ci", "s3cret-pw")
    assert (made.cluster, made.host, made.username, made.has_ca) == (unique, "127.0.0.1:5000", "ci", False)
    assert "s3cret-pw" not in str(made)
    e = await error(client.registries.login(unique, "https://r.example.com", "ci", "pw"))
    assert isinstance(e, ccs.InvalidArgument) and e.message == (
        "host: 'https://r.example.com' is not a registry host: give host[:port], without a scheme or a path")
    e = await error(client.registries.login(unique, "r.example.com", "", "pw"))
    assert isinstance(e, ccs.InvalidArgument) and e.message == "username: is empty"
    e = await error(client.registries.login(unique, "r.example.com", "ci", ""))
    assert isinstance(e, ccs.InvalidArgument) and e.message == "password: is empty"
    again = await client.registries.login(unique, "127.0.0.1:5000", "ci2", "other-pw")  # replaces it
    assert again.username == "ci2"
    listed = await client.registries.list(unique)
    assert [(x.host, x.username) for x in listed] == [("127.0.0.1:5000", "ci2")]
    assert "other-pw" not in str(listed)
    await client.registries.delete(unique, "127.0.0.1:5000")
    e = await error(client.registries.delete(unique, "127.0.0.1:5000"))
    assert isinstance(e, ccs.NotFound) and e.message == "registry login '127.0.0.1:5000' not found"
    assert await client.registries.list(unique) == []


async def test_push_credential_gives_the_login_to_push_with_and_its_refusals(client: ccs.AsyncClient,
                                                                            unique: str) -> None:
    """The one call that answers with the password (``ccs app deploy --build --push-to``)."""
    e = await error(client.registries.push_credential(unique, "127.0.0.1:5000"))
    assert isinstance(e, ccs.NotFound) and e.message == f"cluster {unique!r} not found"
    await client.clusters.create(unique)
    e = await error(client.registries.push_credential(unique, "127.0.0.1:5000"))
    assert isinstance(e, ccs.NotFound) and e.message == "registry login '127.0.0.1:5000' not found"
    e = await error(client.registries.push_credential(unique, "https://r.example.com"))
    assert isinstance(e, ccs.InvalidArgument) and e.message == (
        "host: 'https://r.example.com' is not a registry host: give host[:port], without a scheme or a path")
    await client.registries.login(unique, "127.0.0.1:5000", "ci", "s3cret-pw")
    got = await client.registries.push_credential(unique, "127.0.0.1:5000")
    assert (got.host, got.username, got.password) == ("127.0.0.1:5000", "ci", "s3cret-pw")
    await client.registries.login(unique, "127.0.0.1:5000", "ci2", "other-pw")  # the latest login
    got = await client.registries.push_credential(unique, "127.0.0.1:5000")
    assert (got.username, got.password) == ("ci2", "other-pw")
    await client.registries.delete(unique, "127.0.0.1:5000")
    e = await error(client.registries.push_credential(unique, "127.0.0.1:5000"))
    assert isinstance(e, ccs.NotFound)


async def test_node_prune_of_an_unknown_node(client: ccs.AsyncClient, unique: str) -> None:
    await client.clusters.create(unique)
    e = await error(client.nodes.prune(unique, "nope"))
    assert isinstance(e, ccs.NotFound) and e.message == "node 'nope' not found"

SHARING = """
services:
  web:
    image: local/busybox:1
    networks: [default, pub]
networks:
  pub: {external: true, name: team}
"""


async def test_cluster_network_errors(client: ccs.AsyncClient, unique: str) -> None:
    e = await error(client.networks.create(unique, "team"))
    assert isinstance(e, ccs.NotFound) and e.message == f"cluster {unique!r} not found"
    await client.clusters.create(unique)
    e = await error(client.applications.create(unique, "shop", SHARING))
    assert isinstance(e, ccs.InvalidArgument)
    assert e.message == (f"networks.pub.external: network 'team' does not exist in cluster {unique!r}; create it "
                         f"with `ccs network create team -c {unique}`, or remove external: true to give the "
                         "application a network of its own")
    made = await client.networks.create(unique, "team", description="shared", labels={"a": "b"})
    assert (made.meta.name, made.cluster, made.description, dict(made.meta.labels)) == ("team", unique, "shared",
                                                                                         {"a": "b"})
    e = await error(client.networks.create(unique, "team"))
    assert isinstance(e, ccs.AlreadyExists) and e.message == "network 'team' already exists"
    e = await error(client.networks.create(unique, "Team_1"))
    assert isinstance(e, ccs.InvalidArgument) and e.message.startswith("name: 'Team_1' is not a valid name")
    e = await error(client.networks.get(unique, "other"))
    assert isinstance(e, ccs.NotFound) and e.message == "network 'other' not found"
    await client.applications.create(unique, "shop", SHARING)
    assert list((await client.networks.get(unique, "team")).applications) == ["shop"]
    assert [(n.meta.name, list(n.applications)) for n in await client.networks.list(unique)] == [("team", ["shop"])]
    e = await error(client.networks.delete(unique, "team"))
    assert isinstance(e, ccs.FailedPrecondition)
    assert e.message == ("network 'team' is used by application(s) shop: remove it from their templates "
                         "(ccs app update) or remove them (ccs app rm) first")
    await client.applications.update(unique, "shop", template=V1)
    await client.networks.delete(unique, "team")
    assert isinstance(await error(client.networks.get(unique, "team")), ccs.NotFound)


async def test_cluster_policy_updates(client: ccs.AsyncClient, unique: str) -> None:
    e = await error(client.clusters.update(unique, allow=["pid"]))
    assert isinstance(e, ccs.NotFound) and e.message == f"cluster {unique!r} not found"
    await client.clusters.create(unique)
    cluster = await client.clusters.update(unique, allow=["privileged", "cap_add"])
    assert list(cluster.policy.allow) == ["cap_add", "privileged"]
    cluster = await client.clusters.update(unique, deny=["cap_add"])
    assert list((await client.clusters.get(unique)).policy.allow) == ["privileged"] == list(cluster.policy.allow)
    e = await error(client.clusters.update(unique, allow=["root"]))
    assert isinstance(e, ccs.InvalidArgument)
    assert e.message == ("allow[0]: 'root' is not a policy name; use one of privileged, cap_add, devices, "
                         "network_mode, pid, security_opt, oom_score_adj")
    e = await error(client.clusters.update(unique, allow=["pid"], deny=["pid"]))
    assert isinstance(e, ccs.InvalidArgument) and e.message == "deny: pid also in allow; say one or the other"


# ---------------------------------------------------------------- applications
