"""The per-node HTTP router: HAProxy supervised by the agent.

Every node runs one HAProxy that routes by Host header and path prefix to the containers of
ANY node (their published or ephemeral host ports), so the cluster's HTTP entry may hit any
node. Design choices:

- `config` is pure: RoutingTable -> HAProxy config text plus the facts the supervisor needs
  (server weights, which server is which container) and a *structure* string: the config with
  weights masked and the servers of non-sticky backends left out. Two tables with equal
  structures differ only in weights and in those servers, which go through the runtime API
  (`set weight`, `add server`, `del server`: no reload); anything else is a hitless reload.
- `runtime_api` is a small client of HAProxy's stats socket (one connection per command,
  the non-interactive mode, so a broken connection never poisons the next command).
- `process.HAProxyProcess` runs the process: master-worker mode (`-W`) with
  `expose-fd listeners`, so a reload (SIGUSR2 to the master) hands the listening sockets to
  the new worker and no connection is refused; every config is validated with `haproxy -c`
  before it replaces the live one.
- `supervisor.Router` keeps it on the latest table (runtime API first, a reload when that
  cannot do it), restarts a dead HAProxy with backoff, and keeps counters cumulative across
  reloads and restarts (HAProxy resets them in each new worker).
- Health is the control plane's decision (weights, drained servers at weight 0), but the
  router adds cheap safety nets for the seconds before the control plane notices: a TCP
  `check` per server, and L7 retries with redispatch on connection failures, so a request
  sent to a container that just died is retried on another one instead of failing.
"""

from .certificate_files import delivered
from .config import RenderedConfig, RouterSettings, ServerChanges, ServerRef, render, server_changes
from .runtime_api import RuntimeAPI, RuntimeAPIError
from .supervisor import ApplyResult, Router, RouterError

__all__ = [
    "ApplyResult",
    "RenderedConfig",
    "Router",
    "RouterError",
    "RouterSettings",
    "RuntimeAPI",
    "RuntimeAPIError",
    "ServerChanges",
    "ServerRef",
    "delivered",
    "render",
    "server_changes",
]
