"""The gRPC message size limits, chosen on purpose and shared by the server, the SDK and the agent.

gRPC's defaults are 4 MiB for a received message and no limit for a sent one, on both sides.
ccs sets both directions explicitly, from the largest messages it really sends:

- **Requests** (client -> server; the agent's status batches and log chunks too):
  ``MAX_REQUEST_BYTES``, 4 MiB. The largest legitimate request is a deploy or update: a template
  of at most 1 MiB, its ``files`` (at most 1 MiB together) and its ``env`` (at most 1 MiB
  together), plus at most 64 labels of at most ~1.3 KB each: about 3.1 MiB. An agent's largest is
  a status batch (100 container statuses, a few KB each) or a 64 KiB log chunk. The server holds
  a request whole before any handler (or the token check) runs, so the limit is also what one
  unauthenticated call can make it allocate; 4 MiB leaves room over 3.1 MiB and no more. The
  clients use it as their send limit, so an oversized request fails at once on the client with
  ``RESOURCE_EXHAUSTED`` instead of crossing the network first.
- **Responses** (server -> client; the agent's session messages): ``MAX_RESPONSE_BYTES``,
  64 MiB. Single records are bounded by etcd (1.5 MiB per request) and list pages by
  the server (``controlplane.store.reads.MAX_PAGE_BYTES``), but some answers are sums of records
  with no fixed bound: ``GetApplication`` returns the application with its template (up to
  1.5 MiB) and every service of it; a routing table grows with the cluster (20,000 containers
  make a few MB); the agent's complete assignment set carries every container of its node with
  its full service spec (2,000 containers of a spec with a 20 KB environment are 40 MB) next
  to its network map (about 250 KB at 2,000 nodes, ``tests/bench/netmap.py``); a ``Watch``
  batch carries every change of one transaction, and removing a cluster deletes all of it in
  one. gRPC's 4 MiB default refused such an answer at the client, so the agent of a big node
  reconnected for ever without receiving its assignments. The clients trust their server:
  the limit is only a guard against a runaway answer. The server sends at most the same, so
  an answer past it fails there with ``RESOURCE_EXHAUSTED`` (gRPC's "larger than max").

Pure: no imports, so the server, the SDK and the agent share these numbers.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CLIENT_OPTIONS", "MAX_REQUEST_BYTES", "MAX_RESPONSE_BYTES", "SERVER_OPTIONS"]

MAX_REQUEST_BYTES: Final = 4 * 1024 * 1024
MAX_RESPONSE_BYTES: Final = 64 * 1024 * 1024

#: gRPC channel arguments of every ccs client (the SDK, the CLI through it, the agent).
CLIENT_OPTIONS: Final[tuple[tuple[str, int], ...]] = (
    ("grpc.max_send_message_length", MAX_REQUEST_BYTES),
    ("grpc.max_receive_message_length", MAX_RESPONSE_BYTES),
)
#: gRPC server arguments of ccs-server.
SERVER_OPTIONS: Final[tuple[tuple[str, int], ...]] = (
    ("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
    ("grpc.max_send_message_length", MAX_RESPONSE_BYTES),
)
