"""``deploy/ci/pipeline.sh``'s trigger and wait stages against a real ccs-server on a real etcd.

The script signs with openssl and calls with curl, as a CI job does. The server runs without
reconcilers, so a release's phase moves only when the test writes it (as the release reconciler
would): the wait stage's outcome is decided by the test, not by a race. The build and push
stages need a registry and the engine (tests/integration/e2e/test_pipeline.py runs them all on the testbed).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccs.v1 import resources_pb2 as pb
from controlplane.store import keys
from controlplane.store.etcd import Etcd
from controlplane.store.txn import Txn
from tests.conftest import EtcdProc, ServerProc, start_etcd, start_server

pytestmark = pytest.mark.etcd

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "ci" / "pipeline.sh"
TEMPLATE = "services:\n  web:\n    image: local/webapp:v1\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    base = tmp_path_factory.mktemp("pipeline")
    etcd: EtcdProc = start_etcd(base)
    srv = start_server(base / "state", etcd.url, base / "c.yaml", extra=["--no-reconcilers"])
    yield srv
    srv.stop()
    etcd.stop()


async def trigger_env(server: ServerProc, cluster: str, tmp_path: Path) -> dict[str, str]:
    async with server.client() as cl:
        await cl.clusters.create(cluster)
        await cl.applications.create(cluster, "shop", TEMPLATE)
        made = await cl.triggers.create(cluster, "shop", "ci", "update-image", service="web")
    ca = tmp_path / "ca.crt"
    ca.write_text(server.ca_pem or "")
    return {"PATH": os.environ["PATH"], "CCS_TRIGGER_URL": made.trigger.url, "CCS_TRIGGER_SECRET": made.secret,
            "CCS_CA_FILE": str(ca), "PIPELINE_STATE": str(tmp_path / "state"), "POLL": "0.2"}


def run(env: dict[str, str], *stages: str, **more: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *stages], env={**env, **more}, cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)


async def set_phase(server: ServerProc, cluster: str, number: int, phase: pb.ReleasePhase) -> None:
    """What the release reconciler would write when the release ends."""
    etcd = Etcd([server.etcd_url])
    try:
        key = keys.release(cluster, "shop", number)
        kv = await etcd.get(key)
        assert kv is not None
        rel = pb.Release.FromString(kv.value)
        rel.status.phase = phase
        rel.status.message = "ended by the test"
        await Txn().update(key, rel, "release", rel.meta.name, kv.mod_revision).commit(etcd)
    finally:
        await etcd.close()


async def test_trigger_then_wait_exits_0_when_the_release_succeeds_and_10_when_it_fails(
        server: ServerProc, unique: str, tmp_path: Path) -> None:
    env = await trigger_env(server, unique, tmp_path)
    done = run(env, "trigger", VERSION="v2")
    assert done.returncode == 0, done.stderr
    assert '"release":"r000001"' in done.stderr and env["CCS_TRIGGER_SECRET"] not in done.stderr + done.stdout
    timed_out = run(env, "wait", WAIT_TIMEOUT="0")
    assert timed_out.returncode == 9 and "still not done" in timed_out.stderr
    await set_phase(server, unique, 1, pb.RELEASE_PHASE_SUCCEEDED)
    waited = run(env, "wait")
    assert waited.returncode == 0, waited.stderr
    assert "release r000001 succeeded" in waited.stderr
    async with server.client() as cl:
        assert (await cl.services.get(unique, "shop", "web")).spec.image == "local/webapp:v2"

    assert run(env, "trigger", VERSION="v3").returncode == 0
    await set_phase(server, unique, 2, pb.RELEASE_PHASE_ROLLED_BACK)
    failed = run(env, "wait")
    assert failed.returncode == 10 and "release r000002 rolled-back: ended by the test" in failed.stderr


async def test_a_failing_unit_test_stops_the_pipeline_with_nothing_deployed(
        server: ServerProc, unique: str, tmp_path: Path) -> None:
    env = await trigger_env(server, unique, tmp_path)
    done = run(env, "test", "trigger", "wait", TEST_CMD="echo 1 test failed; exit 1", VERSION="v2")
    assert done.returncode == 1 and "unit tests failed: nothing was built or deployed" in done.stderr
    async with server.client() as cl:
        got = await cl.applications.get(unique, "shop")
        assert got.application.revision == 1 and not await cl.releases.list(unique, "shop")


async def test_a_repeated_delivery_is_refused_by_the_trigger_stage(
        server: ServerProc, unique: str, tmp_path: Path) -> None:
    env = await trigger_env(server, unique, tmp_path)
    assert run(env, "trigger", VERSION="v2", CCS_DELIVERY="build-9").returncode == 0
    again = run(env, "trigger", VERSION="v3", CCS_DELIVERY="build-9")
    assert again.returncode == 1 and "the trigger answered 401" in again.stderr and "replay" in again.stderr
