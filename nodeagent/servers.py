"""The API replicas this agent knows, the one it uses first: failover among control-plane servers.

Where the list comes from, merged in this order (duplicates by API address dropped):

1. ``--server a:7443,b:7443`` (and the join token's ``@a:7443,b:7443``): what the operator gave;
2. ``STATE/servers.json``: what the agent learned before a restart;
3. every Register and Heartbeat answer (``Replica``: API and node address of each replica alive
   now, from their leased records in etcd): a replica added later is known within a heartbeat,
   and one that died drops out once its lease expires (the operator's own entries stay: they
   may be a load balancer's address).

The agent talks to one replica at a time (the *current* one). When its session fails (the
replica died, restarts, or the link to it broke) it moves to the next one before it reconnects,
round robin, so with two replicas and one SIGKILLed the next attempt already goes to the
survivor. Containers keep running through all of it (the agent changes nothing while it has no
session). Swarm's agents do the same with the manager list their session carries; Nomad's
clients with the server list of their heartbeat answers.

A replica's node port (mutual TLS) is the learned ``node_address``; for an entry nobody told
the node address of (an operator's address not yet answered for), it is the API host with the
node port this agent registered with (``node_tls.node_address``; replicas share the default
7444). Under ``--insecure`` node calls go to the API address itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from ccs.private_files import write_private
from ccs.v1 import agent_pb2

SERVERS_FILE = "servers.json"

log = structlog.get_logger("ccs.agent")


@dataclass(slots=True)
class Replica:
    api: str
    node: str = ""  # "" until a server said it
    given: bool = False  # from --server or the join token: never dropped


class ServerList:
    def __init__(self, given: Sequence[str], state_dir: Path | None = None) -> None:
        if not given:
            raise ValueError("servers: at least one server address is needed")
        self.state_dir = state_dir
        self._entries: list[Replica] = []
        for api in given:
            self._add(Replica(api, given=True))
        for saved in self._load():
            self._add(saved)
        self._current = 0

    # ------------------------------------------------------------------ reading

    @property
    def current(self) -> Replica:
        return self._entries[self._current]

    def api(self) -> str:
        return self.current.api

    def entries(self) -> list[Replica]:
        return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def node_addresses(self) -> list[str]:
        """The learned node addresses of every replica (for the logs relays)."""
        return [e.node for e in self._entries if e.node]

    # ------------------------------------------------------------------ changing

    def failover(self, why: str) -> bool:
        """Make the next replica current; True when that is another one."""
        if len(self._entries) < 2:
            return False
        before = self.current.api
        self._current = (self._current + 1) % len(self._entries)
        log.warning("failing over to another API server", previous=before, server=self.current.api, reason=why)
        return True

    def learn(self, replicas: Iterable[agent_pb2.Replica]) -> bool:
        """Merge a server's list of replicas alive now; True when the list changed (it is saved)."""
        alive = {r.api_address: r.node_address for r in replicas if r.api_address}
        if not alive:
            return False  # a server older than replica lists: keep what we know
        current = self.current.api
        before = [(e.api, e.node) for e in self._entries]
        kept = [e for e in self._entries if e.given or e.api in alive]
        for e in kept:
            e.node = alive.get(e.api, e.node)
        known = {e.api for e in kept}
        kept.extend(Replica(api, node) for api, node in sorted(alive.items()) if api not in known)
        self._entries = kept
        self._current = next((i for i, e in enumerate(kept) if e.api == current), 0)
        changed = before != [(e.api, e.node) for e in self._entries]
        if changed:
            log.info("API servers", servers=[e.api for e in self._entries], current=self.current.api)
            self._save()
        return changed

    def _add(self, replica: Replica) -> None:
        for e in self._entries:
            if e.api == replica.api:
                e.node = e.node or replica.node
                return
        self._entries.append(replica)

    # ------------------------------------------------------------------ persistence

    def _load(self) -> list[Replica]:
        if self.state_dir is None:
            return []
        try:
            data = json.loads((self.state_dir / SERVERS_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable server list", path=str(self.state_dir / SERVERS_FILE), error=str(exc))
            return []
        out: list[Replica] = []
        for item in data if isinstance(data, list) else []:
            if isinstance(item, dict) and isinstance(item.get("api"), str) and item["api"]:
                node = item.get("node", "")
                out.append(Replica(item["api"], node if isinstance(node, str) else ""))
        return out

    def _save(self) -> None:
        """Write the learned list atomically (it is a hint: a failure is logged, not fatal)."""
        if self.state_dir is None:
            return
        data = [{"api": e.api, "node": e.node} for e in self._entries]
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_private(self.state_dir / SERVERS_FILE, json.dumps(data).encode())
        except OSError as exc:
            log.warning("cannot save the server list", error=str(exc))
