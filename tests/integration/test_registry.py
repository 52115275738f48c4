"""Registry logins and digest pinning against the real Debian registry (htpasswd basic auth) and a
real ``ccs-server``; the moved-tag scale-up with a real ``ccs-agent`` on the root Engine (issue 13,
"Registry").

- ``ccs registry login|ls|rm`` store, list (never the password) and forget a cluster's login.
- A deploy resolves a registry image's tag to its digest through the registry's HTTP API and
  records ``tag@digest``; a local image stays unpinned. An unresolvable tag, a missing or wrong
  login, and an ``x-ccs.registry`` naming no login are refused, naming the field, nothing written.
- Different bytes pushed under the same tag: an update of the unchanged template is a new
  revision with the new digest; a rollback restores the old one; a scale-up on a node runs the
  digest the service records, not what the tag names now.
- The password is in none of: the server's log, the agent's log, events, the audit log, the CLI's
  ``-o json``, ``docker inspect`` of the containers.

Run under the Docker lock (BRIEFING): ``flock /run/ccs-docker.lock pytest ...``.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

import ccs
from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb
from tests.conftest import ServerProc
from tests.integration import polling
from tests.integration.agent_process import agent_process, create_cluster, remove_from_engine
from tests.integration.grpc_helpers import call

from .cli_process import checked, cli
from .docker_fixtures import TestImages, docker_client, test_image  # noqa: F401
from .registry_fixture import Registry, registry  # noqa: F401

pytestmark = [pytest.mark.etcd, pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(300)]

IDLE = """["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]"""


def template(image: str, extra: str = "", replicas: int = 1) -> str:
    return f"""
services:
  web:
    image: {image}
    command: {IDLE}
    deploy: {{replicas: {replicas}}}
  side:
    image: local/busybox:1
    command: {IDLE}
{extra}"""


async def refused(call_: object) -> ccs.CcsError:
    try:
        await call_  # type: ignore[misc]
    except ccs.CcsError as exc:
        return exc
    raise AssertionError("the call succeeded")


def test_login_pinning_refusals_and_moved_tags(
    ccs_server: ServerProc, unique: str, registry: Registry, test_image: TestImages,  # noqa: F811
) -> None:
    server, cluster, reg = ccs_server, unique, registry
    repo = f"{unique}/app"
    image = f"{reg.addr}/{repo}:1"
    d1 = reg.push("local/busybox:1", repo + ":1")
    d2 = ""

    async def scenario() -> None:
        async with server.client() as client:
            await client.clusters.create(cluster)
            # No login: the registry asks for credentials; refused, nothing written.
            e = await refused(client.applications.create(cluster, "shop", template(image)))
            assert isinstance(e, ccs.InvalidArgument)
            assert e.message.startswith(f"services.web.image: {image}: cannot resolve its tag to a digest: ")
            assert "has no login for it" in e.message
            assert isinstance(await refused(client.applications.get(cluster, "shop")), ccs.NotFound)
            # A wrong password: refused, naming the login and user, never the password.
            await client.registries.login(cluster, reg.addr, reg.user, "wrong-password-123")
            e = await refused(client.applications.create(cluster, "shop", template(image)))
            assert f"refused the credentials of login {reg.addr} (user 'ci')" in e.message
            assert "wrong-password-123" not in e.message
            await client.registries.login(cluster, reg.addr, reg.user, reg.password)
            # A tag the registry does not have.
            e = await refused(client.applications.create(cluster, "shop", template(f"{reg.addr}/{repo}:nope")))
            assert e.message.startswith("services.web.image: ") and "is not in registry" in e.message
            # x-ccs.registry naming no login.
            e = await refused(client.applications.create(
                cluster, "shop", template(image, "x-ccs:\n  registry: other.example.com\n")))
            assert e.message.startswith("x-ccs.registry: the cluster has no registry login for 'other.example.com'")
            assert isinstance(await refused(client.applications.get(cluster, "shop")), ccs.NotFound)

            # Pinned: the digest the push made; the local image unpinned.
            app = await client.applications.create(
                cluster, "shop", template(image, f"x-ccs:\n  registry: {reg.addr}\n"))
            assert dict(app.spec.pinned_images) == {"web": f"{image}@{d1}"}
            got = await client.applications.get(cluster, "shop")
            images = {s.meta.name: (s.spec.image, s.spec.registry_login) for s in got.services}
            assert images == {"web": (f"{image}@{d1}", reg.addr), "side": ("local/busybox:1", reg.addr)}
            # Unchanged tag, unchanged template: no new revision.
            same = await client.applications.update(cluster, "shop")
            assert same.revision == 1

            # Different bytes under the same tag: an update with the unchanged template is a change.
            nonlocal d2
            d2 = reg.push("local/webapp:v1", repo + ":1")
            assert d2 != d1
            moved = await client.applications.update(cluster, "shop")
            assert moved.revision == 2 and moved.spec.pinned_images["web"] == f"{image}@{d2}"
            releases = await client.releases.list(cluster, "shop")
            assert releases, "a moved tag starts a release"
            revisions = await client.applications.revisions(cluster, "shop")
            assert [r.spec.pinned_images["web"] for r in revisions] == [f"{image}@{d1}", f"{image}@{d2}"]
            # Rollback restores the recorded digest, though the tag names d2.
            back = await client.applications.rollback(cluster, "shop")
            assert back.spec.pinned_images["web"] == f"{image}@{d1}"
            web = await client.services.get(cluster, "shop", "web")
            assert web.spec.image == f"{image}@{d1}"

    asyncio.run(scenario())
    shown = json.loads(checked(server, "registry", "ls", "-c", cluster, "-o", "json").stdout)
    assert [(x["host"], x["username"]) for x in shown] == [(reg.addr, reg.user)]
    get = checked(server, "app", "get", "shop", "-c", cluster).stdout
    assert d1 in get and "unpinned" in get, get
    history = checked(server, "app", "history", "shop", "-c", cluster).stdout
    assert d1[:19] in history and d2[:19] in history, history
    for out in (checked(server, "registry", "ls", "-c", cluster, "-o", "json").stdout,
                checked(server, "app", "get", "shop", "-c", cluster, "-o", "json").stdout,
                cli(server, "events", "-c", cluster, "-o", "json").stdout,
                server.log_path.read_text(errors="replace")):
        assert reg.password not in out
    # A second login for the same host replaces the first; rm forgets it.
    assert "removed" in checked(server, "registry", "rm", reg.addr, "-c", cluster).stdout
    assert json.loads(checked(server, "registry", "ls", "-c", cluster, "-o", "json").stdout) == []
    assert cli(server, "registry", "rm", reg.addr, "-c", cluster).returncode != 0


@pytest.fixture
def node(ccs_server: ServerProc, unique: str, tmp_path: Path, test_image: TestImages) -> Iterator[Path]:  # noqa: F811
    """One real agent on the root Engine, joined to cluster ``unique``; yields its log's path."""
    log = tmp_path / "agent.log"
    token = create_cluster(ccs_server, unique)
    try:
        with agent_process(ccs_server.address, token, f"{unique}-n1", tmp_path / "agent", log):
            polling.wait_for("the node READY", lambda: call(ccs_server, lambda s: s.nodes.GetNode(
                api_pb2.GetNodeRequest(cluster=unique, name=f"{unique}-n1"), metadata=s.metadata,
                timeout=10)).status.state == pb.NODE_STATE_READY, timeout=90)
            yield log
    finally:
        remove_from_engine(unique)


def pushed_tags(reg: Registry, repository: str) -> list[str]:
    """The tags the registry holds for ``repository``, asked with its login."""
    auth = base64.b64encode(f"{reg.user}:{reg.password}".encode()).decode()
    req = urllib.request.Request(f"http://{reg.addr}/v2/{repository}/tags/list",
                                 headers={"Authorization": f"Basic {auth}"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=10) as resp:
        return list(json.loads(resp.read()).get("tags") or [])


def running(server: ServerProc, cluster: str, app: str) -> list[pb.Container]:
    resp = call(server, lambda s: s.containers.ListContainers(api_pb2.ListContainersRequest(
        cluster=cluster, application=app, service="web"), metadata=s.metadata, timeout=10))
    return [c for c in resp.containers if c.status.state == pb.CONTAINER_STATE_RUNNING]


def test_moved_tag_scale_up_runs_the_recorded_digest_and_the_password_is_nowhere(
    ccs_server: ServerProc, unique: str, registry: Registry, node: Path,  # noqa: F811
    docker_client: docker.DockerClient, tmp_path: Path,  # noqa: F811
) -> None:
    server, cluster, reg = ccs_server, unique, registry
    repo = f"{unique}/app"
    image = f"{reg.addr}/{repo}:1"
    d1 = reg.push("local/busybox:1", repo + ":1")
    old_id = docker_client.api.inspect_image("local/busybox:1")["Id"]
    # The login goes in through the CLI, from stdin.
    checked(server, "registry", "login", reg.addr, "-u", reg.user, "--password-stdin", "-c", cluster,
        stdin=reg.password + "\n")

    async def deploy() -> None:
        async with server.client() as client:
            await client.applications.create(cluster, "shop", template(image))

    asyncio.run(deploy())
    # The Engine has no credentials for the registry (the pushes used a private docker config):
    # the container runs because the agent pulled with the cluster's login.
    (first,) = polling.wait_for("web running", lambda: running(server, cluster, "shop"), timeout=120)
    assert first.spec.image == f"{image}@{d1}"
    assert docker_client.api.inspect_container(first.status.docker_id)["Image"] == old_id

    # Different bytes under the same tag, then a scale-up: the new replica runs the old digest.
    d2 = reg.push("local/webapp:v1", repo + ":1")
    assert d2 != d1

    async def scale() -> None:
        async with server.client() as client:
            await client.services.scale(cluster, "shop", "web", 2)

    asyncio.run(scale())
    both: list[pb.Container] = polling.wait_for(
        "two replicas running", lambda: r if len(r := running(server, cluster, "shop")) == 2 else [], timeout=120)
    for c in both:
        assert c.spec.image == f"{image}@{d1}"
        assert docker_client.api.inspect_container(c.status.docker_id)["Image"] == old_id

    # --build --push-to pushes with the cluster's login: the CLI's HOME has no docker login for the
    # registry (a push with the local login is refused), and none is written.
    src = tmp_path / "built"
    src.mkdir()
    (src / "Dockerfile").write_text(f"FROM local/busybox:1\nRUN echo {unique} > /built\n")
    (src / "compose.yaml").write_text(f"services:\n  web:\n    build: .\n    command: {IDLE}\n")
    built = checked(server, "app", "deploy", "-c", cluster, "--name", "built", "-f", str(src / "compose.yaml"),
                "--build", "--push-to", reg.addr, "--version", "b1", timeout=300)
    assert f"pushing to {reg.addr} with the cluster's registry login (user {reg.user})" in built.stderr
    assert "b1" in pushed_tags(reg, "built/web")
    assert not (server.config_path.parent / ".docker").exists()
    docker_client.images.remove(f"{reg.addr}/built/web:b1", force=True)  # the tag only: the node may run it

    async def push_audit() -> list[pb.AuditRecord]:
        async with server.client() as client:
            return [r for r in await client.audit.list() if r.method == "RegistryService/GetPushCredential"
                    and r.target == f"registry login {cluster}/{reg.addr}"]  # the server is the session's

    [audited] = asyncio.run(push_audit())
    assert audited.result == "OK"

    # The password is nowhere: logs, events, audit, -o json, docker inspect, the CLI's output.
    outputs = [
        built.stdout, built.stderr,
        server.log_path.read_text(errors="replace"),
        node.read_text(errors="replace"),
        checked(server, "events", "-c", cluster, "-o", "json").stdout,
        checked(server, "audit", "ls", "-o", "json").stdout,
        checked(server, "registry", "ls", "-c", cluster, "-o", "json").stdout,
        checked(server, "container", "ls", "-c", cluster, "-a", "shop", "-o", "json").stdout,
        checked(server, "app", "get", "shop", "-c", cluster, "-o", "json").stdout,
        checked(server, "app", "history", "shop", "-c", cluster, "-o", "json").stdout,
        *(json.dumps(docker_client.api.inspect_container(c.status.docker_id)) for c in both),
    ]
    for text in outputs:
        assert reg.password not in text


def test_node_prune_collects_what_no_container_and_no_recent_revision_uses(
    ccs_server: ServerProc, unique: str, registry: Registry, node: Path,  # noqa: F811
    docker_client: docker.DockerClient,  # noqa: F811
) -> None:
    """Issue 13, "Images on nodes": a registry image the node ran four images ago, which no
    container uses, is removed by ``ccs node prune`` (space freed reported); the last 3 each
    service ran stay (rollback), and an image without a registry is never touched."""
    server, cluster, reg = ccs_server, unique, registry
    repo = f"{unique}/gc"
    image = f"{reg.addr}/{repo}:1"
    # An image of its own (only the registry holds it once pushed), so removing it frees space.
    docker_client.images.build(fileobj=io.BytesIO(f"FROM local/busybox:1\nRUN echo {unique} > /unique\n".encode()),
                               tag=f"local/{unique}:1", rm=True)
    first = reg.push(f"local/{unique}:1", repo + ":1")
    docker_client.images.remove(f"local/{unique}:1", noprune=False)
    checked(server, "registry", "login", reg.addr, "-u", reg.user, "--password-stdin", "-c", cluster, stdin=reg.password)

    async def apply(create: bool) -> None:
        async with server.client() as client:
            if create:
                await client.applications.create(cluster, "shop", template(image))
            else:
                await client.applications.update(cluster, "shop")

    def runs(digest: str) -> list[pb.Container]:
        return [c for c in running(server, cluster, "shop") if c.spec.image.endswith(digest)]

    def only(digest: str) -> bool:
        return bool(runs(digest)) and len(running(server, cluster, "shop")) == 1

    asyncio.run(apply(True))
    polling.wait_for("the first image running", lambda: runs(first), timeout=120)
    kept = []
    for local in ("local/busybox:1", "local/webapp:v1", "local/webapp:v2"):  # three newer images
        digest = reg.push(local, repo + ":1")
        kept.append(f"{image}@{digest}")
        asyncio.run(apply(False))
        polling.wait_for(f"{local} running", functools.partial(only, digest), timeout=120)
    old = f"{image}@{first}"
    docker_client.api.inspect_image(old)  # still on the node before the prune

    out = json.loads(checked(server, "node", "prune", f"{cluster}-n1", "-c", cluster, "-o", "json").stdout)
    assert out["images"] == [old], out
    assert int(out["bytes_freed"]) > 0 and out["images_removed"] == 1
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.api.inspect_image(old)
    for ref in kept:  # the last three the service ran stay, for rollback
        docker_client.api.inspect_image(ref)
    docker_client.api.inspect_image("local/busybox:1")  # no registry: never collected
    shown = checked(server, "node", "prune", f"{cluster}-n1", "-c", cluster).stdout
    assert "0 image(s) removed" in shown
