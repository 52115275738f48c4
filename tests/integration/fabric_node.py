"""The agent's network fabric alone, driven line by line from stdin (run it in a host's netns).

The cross-node tests run this in each testbed host's network namespace, as the agent runs
there, and feed it hand-built maps: the same `NetworkFabric` (routes, firewall, resolver) the
agent runs, without a control plane. Commands, one per line; every answer is one line:

    map PATH        apply the NetworkMap in PATH (binary protobuf) -> "applied VERSION PROBLEM"
    created         what the runtime calls after it created a network -> "created PROBLEM"
    quit            stop answering names and exit (routes and rules stay, as with the agent)

Arguments: --cluster C --node N --resolver ADDRESS [--port 53] [--upstream HOST:PORT ...]
[--answer NAME=IPV4 ...]: with --answer, a stand-in upstream DNS server on 127.0.0.1:5399
answers those names (and SERVFAILs the rest), and is the resolver's only upstream, so a test
sees a forwarded name come back without any DNS server outside the testbed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import cast

import dns.message
import dns.rcode
import dns.rrset
import structlog

from ccs.v1 import agent_pb2
from nodeagent.network.fabric import NetworkFabric
from nodeagent.network.resolver import Resolver, Upstreams

STAND_IN = ("127.0.0.1", 5399)


class _StandIn(asyncio.DatagramProtocol):
    """The upstream DNS server of the test: fixed A records, SERVFAIL for anything else."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # not a subclass in 3.11

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        name = query.question[0].name.to_text().rstrip(".")
        if name in self.answers:
            response.answer.append(dns.rrset.from_text(name + ".", 60, "IN", "A", self.answers[name]))
        else:
            response.set_rcode(dns.rcode.SERVFAIL)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--cluster", required=True)
    p.add_argument("--node", required=True)
    p.add_argument("--resolver", required=True)
    p.add_argument("--port", type=int, default=53)
    p.add_argument("--upstream", action="append", default=None)
    p.add_argument("--answer", action="append", default=[])
    args = p.parse_args()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout is for answers
    if args.answer:
        answers = dict(a.split("=", 1) for a in args.answer)
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: _StandIn(answers), local_addr=STAND_IN)
        args.upstream = [f"{STAND_IN[0]}:{STAND_IN[1]}"]
    resolver = Resolver(args.resolver, Upstreams(own_address=args.resolver, servers=args.upstream), port=args.port)
    fabric = NetworkFabric(resolver=resolver, period=3600)
    runner = asyncio.create_task(fabric.run(cluster=args.cluster, node=args.node))
    while not resolver.serving and not runner.done():  # noqa: ASYNC110 - a test helper polls
        await asyncio.sleep(0.05)
    print(f"ready {fabric.problem}", flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if not line or line == "quit":
            break
        command, _, arg = line.partition(" ")
        if command == "map":
            m = agent_pb2.NetworkMap.FromString(Path(arg).read_bytes())  # noqa: ASYNC240
            fabric.submit(m)
            await fabric.apply()
            print(f"applied {m.version} {fabric.problem}", flush=True)
        elif command == "created":
            await fabric.network_created()
            print(f"created {fabric.problem}", flush=True)
        else:
            print(f"error unknown command {command!r}", flush=True)
    runner.cancel()
    await fabric.close()


if __name__ == "__main__":
    asyncio.run(main())
