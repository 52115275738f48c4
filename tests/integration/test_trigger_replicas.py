"""Deploy triggers across server restarts and replicas, and with the HTTPS port off (issue 13).

Each test starts its own etcd and servers (``tests/conftest.py``); the calls and the state
checks are those of ``test_triggers.py``.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from controlplane.secrets.keyring import Keyring
from controlplane.secrets.store import SecretStore
from controlplane.store.etcd import Etcd
from controlplane.triggers.records import Replay, TriggerStore
from controlplane.triggers.signature import github_signature
from tests.conftest import EtcdProc, free_port, start_server
from tests.integration.trigger_helpers import (
    TEMPLATE,
    Setup,
    ccs_headers,
    own_etcd_fixture,  # noqa: F401  (the own_etcd fixture)
    post,
    prepare,
    state,
)

pytestmark = pytest.mark.etcd


async def test_a_replay_is_refused_after_a_restart_and_on_another_replica(tmp_path: Path, own_etcd: EtcdProc) -> None:
    a = start_server(tmp_path / "a", own_etcd.url, tmp_path / "a.yaml")
    b = start_server(tmp_path / "b", own_etcd.url, tmp_path / "b.yaml", extra=["--no-reconcilers"])
    try:
        s = await prepare(a, "c1")
        body = b'{"tag": "v2"}'
        secret = s.secrets["retag"]
        r = await post(s, "retag", body, ccs_headers(secret, body, delivery="gh-1"))
        assert r.status_code == 200, r.text
        before = await state(s)
        # Another replica, the same delivery freshly signed: refused.
        on_b = Setup(b, s.cluster, s.secrets)
        r = await post(on_b, "retag", b'{"tag": "v3"}', ccs_headers(secret, b'{"tag": "v3"}', delivery="gh-1"))
        assert r.status_code == 401 and "replay" in r.json()["error"]
        # The first replica restarted: still refused.
        assert a.stop() == 0  # SIGTERM still stops it cleanly (uvicorn leaves the handlers alone)
        a = start_server(tmp_path / "a", own_etcd.url, tmp_path / "a.yaml")
        s = Setup(a, s.cluster, s.secrets)
        r = await post(s, "retag", b'{"tag": "v3"}', ccs_headers(secret, b'{"tag": "v3"}', delivery="gh-1"))
        assert r.status_code == 401 and "replay" in r.json()["error"]
        assert await state(s) == before
        # A GitHub-form replay of a GitHub delivery, too.
        gh = {"x-github-delivery": "gh-2", "x-hub-signature-256": github_signature(secret.encode(), body)}
        assert (await post(s, "retag", body, gh)).status_code == 200
        assert (await post(on_b, "retag", body, gh)).status_code == 401
    finally:
        a.stop()
        b.stop()


async def test_the_same_delivery_sent_to_two_replicas_at_once_is_accepted_once(tmp_path: Path,
                                                                                own_etcd: EtcdProc) -> None:
    """Two replicas, each its own process, sent the same delivery id at the same moment: one
    accepts, the other answers a replay, whichever comes first; five deliveries in a row."""
    a = start_server(tmp_path / "a", own_etcd.url, tmp_path / "a.yaml")
    b = start_server(tmp_path / "b", own_etcd.url, tmp_path / "b.yaml", extra=["--no-reconcilers"])
    try:
        s = await prepare(a, "c1")
        on_b = Setup(b, s.cluster, s.secrets)
        for n in range(5):
            body = f'{{"replicas": {n + 2}}}'.encode()
            headers = ccs_headers(s.secrets["scale"], body, delivery=f"build-{n}")
            answers = await asyncio.gather(post(s, "scale", body, headers), post(on_b, "scale", body, headers))
            assert sorted(r.status_code for r in answers) == [200, 401], [r.text for r in answers]
            refused = next(r for r in answers if r.status_code == 401)
            assert "replay" in refused.json()["error"]
        assert (await state(s))[2:] == (6, 5)  # the last call's replicas; five claims, one each
    finally:
        a.stop()
        b.stop()


async def test_claims_made_at_the_same_moment_let_exactly_one_through(own_etcd: EtcdProc, tmp_path: Path) -> None:
    """The claim itself, with the overlap forced: two stores on two etcd connections (two
    replicas) both pass every check, wait for each other, then claim the same delivery. A
    check-then-write would let both through; the create-only transaction lets one."""
    srv = start_server(tmp_path / "s", own_etcd.url, tmp_path / "s.yaml", extra=["--no-reconcilers"])
    clients = [Etcd([own_etcd.url]), Etcd([own_etcd.url])]
    try:
        s = await prepare(srv, "c1")
        keyring = await Keyring.load_or_create(clients[0], srv.state_dir / "secrets.key")
        stores = [TriggerStore(e, SecretStore(e, keyring)) for e in clients]
        together = asyncio.Barrier(2)

        async def claim(store: TriggerStore, delivery: str) -> str:
            trigger, secret = await store.read(s.cluster, "shop", "scale")
            await together.wait()  # both have read and checked; neither has claimed
            try:
                return await store.claim(trigger, secret, delivery, 60)
            except Replay:
                return "replay"

        for n in range(5):
            got = await asyncio.gather(*(claim(st, f"d-{n}") for st in stores))
            assert got.count("replay") == 1, got
    finally:
        for e in clients:
            await e.close()
        srv.stop()


async def test_http_listen_off(tmp_path: Path, own_etcd: EtcdProc) -> None:
    srv = start_server(tmp_path / "s", own_etcd.url, tmp_path / "c.yaml", extra=["--http-listen", "off"])
    try:
        assert srv.http_url == ""
        async with srv.client() as cl:
            await cl.clusters.create("c1")
            await cl.applications.create("c1", "shop", TEMPLATE)
            made = await cl.triggers.create("c1", "shop", "again", "redeploy")
            assert made.trigger.url == ""
            done = await cl.triggers.invoke("c1", "shop", "again")
            assert done.result == "unchanged" and done.status_url == ""
    finally:
        srv.stop()


def test_a_taken_http_port_stops_the_start_naming_the_flag(tmp_path: Path, own_etcd: EtcdProc) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "controlplane.main", "--listen", f"127.0.0.1:{free_port()}", "--node-listen",
             f"127.0.0.1:{free_port()}", "--http-listen", f"127.0.0.1:{port}", "--state-dir", str(tmp_path / "s"),
             "--client-config", str(tmp_path / "c.yaml"), "--etcd", own_etcd.url, "--log-format", "json",
             "--metrics-listen", "127.0.0.1:0"],
            cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 1
    assert f"ccs-server: cannot listen on 127.0.0.1:{port} (--http-listen): Address already in use" in done.stderr
