"""Trigger calls under load: 50 signed HTTPS calls at once, how long each takes to be answered.

Issue 13's goal: a trigger answers in < 100 ms p99 under 50 concurrent calls. A real etcd and a
real ccs-server (no reconcilers: only the calls write); 50 ``scale`` triggers, each on its own
service, so the calls do not conflict on one record (a real CI fleet triggers different
applications); every call is signed in ccs's form with a fresh delivery id (so each costs the
full path: secret read and decrypt, HMAC, delivery claim, the scale's guarded write, audit).
One keep-alive httpx client, as a CI fleet behind one proxy would look. Sequential calls are
measured first for the unloaded figure.

    .venv/bin/python tests/bench/triggers.py [--calls 50] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys
import time
import uuid
from pathlib import Path

import httpx

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from controlplane.triggers.signature import ccs_signature
from tests.bench._common import percentile, stack


def template(services: int) -> str:
    return "services:\n" + "".join(f"  s{i}:\n    image: local/busybox:1\n" for i in range(services))


async def bench(calls: int, rounds: int) -> None:
    with stack(["--no-reconcilers"]) as s:
        srv = s.server
        async with srv.client() as cl:
            await cl.clusters.create("bench")
            await cl.applications.create("bench", "app", template(calls))
            secrets = {}
            for i in range(calls):
                made = await cl.triggers.create("bench", "app", f"t{i}", "scale", service=f"s{i}")
                secrets[i] = made.secret.encode()
        ctx = ssl.create_default_context(cadata=srv.ca_pem)
        limits = httpx.Limits(max_connections=calls, max_keepalive_connections=calls)
        async with httpx.AsyncClient(base_url=srv.http_url, verify=ctx, limits=limits, timeout=30) as h:

            async def call(i: int, replicas: int) -> float:
                body = f'{{"replicas": {replicas}}}'.encode()
                stamp = str(int(time.time()))
                headers = {"x-ccs-timestamp": stamp, "x-ccs-delivery": uuid.uuid4().hex,
                           "x-ccs-signature": ccs_signature(secrets[i], stamp, body)}
                t0 = time.perf_counter()
                r = await h.post(f"/v1/triggers/bench/app/t{i}", content=body, headers=headers)
                took = time.perf_counter() - t0
                if r.status_code != 200:
                    raise RuntimeError(f"t{i}: {r.status_code} {r.text}")
                return took

            alone = sorted([await call(i % calls, 1) for i in range(min(calls, 20))])
            loaded: list[float] = []
            for rnd in range(rounds):
                loaded += await asyncio.gather(*(call(i, 2 + rnd) for i in range(calls)))
                await asyncio.sleep(1.0)  # the per-trigger bucket refills (1 a second, bursts of 10)
            loaded.sort()

        def ms(v: float) -> str:
            return f"{v * 1000:.1f} ms"

        print(f"one at a time ({len(alone)} calls): p50 {ms(percentile(alone, 50))}, p99 {ms(percentile(alone, 99))}")
        print(f"{calls} at once x {rounds} rounds ({len(loaded)} calls): p50 {ms(percentile(loaded, 50))}, "
              f"p99 {ms(percentile(loaded, 99))}, max {ms(loaded[-1])}  (goal: p99 < 100 ms)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=50)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    asyncio.run(bench(a.calls, a.rounds))


if __name__ == "__main__":
    main()
