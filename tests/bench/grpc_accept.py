"""How many new RPCs a grpc.aio server takes in when its event loop is busy.

Run: ``.venv/bin/python tests/bench/grpc_accept.py [--seconds 8] [--callers 50]``

Why (issue 15): at 500 hollow nodes the server handled a heartbeat in under 1 ms, yet the agents'
heartbeat calls ran into their 5 s deadline by the thousand, nodes were declared down and their
containers rescheduled, and the sessions churned. This measures the mechanism without ccs: a
grpc.aio server with one unary method that does nothing, in a process whose event loop also
runs ``busy`` tasks (each burns ``burn`` microseconds, then yields), so each loop iteration takes
``busy x burn``: what a saturated ccs-server's loop looks like (hundreds of sessions' sends, the
reconciler, the informer). 50 callers on their own connections call it back to back for
``--seconds``, with a 5 s deadline as the agent's heartbeat has. Printed per row: calls/s, p50
latency, calls past the deadline, and the server loop's iterations per second.

Two servings of the same handler:

- ``loop``: the gRPC server on the busy loop itself (how ccs-server serves today);
- ``thread``: the gRPC server on an event loop of its own in another thread; the handler's work
  is handed to the busy loop (``run_coroutine_threadsafe``) and awaited, so every call still
  runs its work where ccs's state lives.

What it showed on 2026-12-01 16:06 UTC (2-core Debian 12 box, grpcio 1.85, nothing else
running): on the loop, the calls taken in follow the loop's iterations, about one call per four
iterations whatever the number of callers - 22 calls/s at 92 iterations/s, 2 calls/s at 18 -
so calls wait seconds before their handler runs and many miss a 5 s deadline (22 and 94 in 8 s;
grpc.aio takes in one new call at a time, and each step of taking it in is a callback that
waits for the next iteration). Served from its own thread, the same busy loop answered 265 and
196 calls/s, p50 189 and 251 ms, none past the deadline; unloaded, 1,948 calls/s against 3,379
on the loop (the hop between threads and the GIL). A first prototype of this script gave 24 / 2
against 296 / 204. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import threading
import time
from typing import Any

import grpc

SERVICE, METHOD = "bench.Accept", "Ping"
ROWS = ((0, 0.0), (200, 50.0), (1000, 50.0))  # busy tasks, microseconds each


def _handlers(ping: Any) -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(SERVICE, {METHOD: grpc.unary_unary_rpc_method_handler(ping)})


async def _busy(burn_us: float) -> None:
    while True:
        end = time.perf_counter() + burn_us / 1e6
        while time.perf_counter() < end:
            pass
        await asyncio.sleep(0)


def serve(mode: str, busy: int, burn_us: float, seconds: float, out: Any) -> None:
    """The server process: put its port on ``out``, then (after ``seconds``) its loop's iterations/s."""

    async def main() -> None:
        busy_loop = asyncio.get_running_loop()

        async def work() -> bytes:
            return b"pong"

        if mode == "loop":
            async def ping(_: bytes, __: Any) -> bytes:
                return await work()

            server = grpc.aio.server()
            server.add_generic_rpc_handlers((_handlers(ping),))
            port = server.add_insecure_port("127.0.0.1:0")
            await server.start()
        else:
            started = threading.Event()
            box: dict[str, int] = {}

            def io_thread() -> None:
                async def run() -> None:
                    async def ping(_: bytes, __: Any) -> bytes:
                        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work(), busy_loop))

                    s = grpc.aio.server()
                    s.add_generic_rpc_handlers((_handlers(ping),))
                    box["port"] = s.add_insecure_port("127.0.0.1:0")
                    await s.start()
                    started.set()
                    await s.wait_for_termination()

                asyncio.run(run())

            threading.Thread(target=io_thread, daemon=True).start()
            await asyncio.to_thread(started.wait)
            port = box["port"]
        iterations = [0]

        async def count() -> None:
            while True:
                iterations[0] += 1
                await asyncio.sleep(0)

        tasks = [asyncio.create_task(_busy(burn_us)) for _ in range(busy)]
        tasks.append(asyncio.create_task(count()))
        out.put(port)
        t0 = time.perf_counter()
        await asyncio.sleep(seconds + 2)
        out.put(iterations[0] / (time.perf_counter() - t0))
        for t in tasks:
            t.cancel()

    asyncio.run(main())


async def call(port: int, seconds: float, callers: int) -> tuple[float, float, int]:
    """Calls/s, p50 seconds and calls past the 5 s deadline over ``seconds``."""
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(callers)]
    latencies: list[float] = []
    late = 0
    end = time.perf_counter() + seconds

    async def caller(ch: grpc.aio.Channel) -> None:
        nonlocal late
        ping = ch.unary_unary(f"/{SERVICE}/{METHOD}")
        while time.perf_counter() < end:
            t = time.perf_counter()
            try:
                await ping(b"x", timeout=5)
                latencies.append(time.perf_counter() - t)
            except grpc.aio.AioRpcError:
                late += 1

    await asyncio.gather(*(caller(ch) for ch in channels))
    for ch in channels:
        await ch.close()
    latencies.sort()
    return len(latencies) / seconds, latencies[len(latencies) // 2] if latencies else float("nan"), late


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--callers", type=int, default=50)
    args = parser.parse_args()
    ctx = multiprocessing.get_context("spawn")
    print(f"{'serving':<8} {'busy':>5} {'burn us':>8} {'calls/s':>8} {'p50 ms':>8} {'late':>5} {'loop it/s':>10}")
    for busy, burn in ROWS:
        for mode in ("loop", "thread"):
            out = ctx.Queue()
            proc = ctx.Process(target=serve, args=(mode, busy, burn, args.seconds, out))
            proc.start()
            try:
                port = out.get(timeout=30)
                time.sleep(0.5)
                rate, p50, late = asyncio.run(call(port, args.seconds, args.callers))
                iterations = out.get(timeout=30)
            finally:
                proc.kill()
                proc.join()
            print(f"{mode:<8} {busy:>5} {burn:>8.0f} {rate:>8.0f} {p50 * 1000:>8.1f} {late:>5} {iterations:>10.0f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
