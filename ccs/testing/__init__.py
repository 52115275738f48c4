"""An in-process fake of the ccs API, for tests of code built on the SDK (and of the CLI).

This is the SDK's transport seam made concrete, like ``httpx.MockTransport``: a real
``grpc.aio`` server on 127.0.0.1 with an in-memory servicer, so requests go through real
gRPC (metadata, status codes, streaming), but no etcd and no agents are involved. It is
deliberately *not* the server: it keeps just enough state to answer consistently (revisions,
resource versions, paging with a small default page size, a watch history) and parses a
template only as far as ``services.<name>.image`` and ``deploy.replicas``.

What it must get right is what a caller sees of the server: every error code and message.
``tests/contract`` runs one suite against this fake and against a real ``ccs-server`` on a
real etcd; when they disagree the fake is fixed. What it does not model: placement, agents,
and the release planner's pace (an operator request is recorded on the release, as the
server does, and the fake's toy planner acts on it at once in a second commit).

Fault injection:

- ``FakeApi.watch_faults`` is a list of response counts; each new Watch stream pops the first
  one and fails with ``watch_fault_code`` (UNAVAILABLE by default) after sending that many.
- ``FakeApi.watch_kinds`` narrows the kinds a Watch accepts (an older server).
- ``FakeApi.etcd_unavailable`` makes every call answer as a server whose etcd is down
  (``ccs.errors.EtcdUnavailable``).
- ``FakeApi.corrupt(key)`` makes a record undecodable: a get of it answers DATA_LOSS
  (``ccs.errors.DataLoss``) naming the object and the key.

Not thread-safe: mutate a running fake only from the server's event loop (or through RPCs).

Layout (each module one part of the API, over the shared state of ``state``):
``state`` (store, seeding helpers, the server's messages), ``clusters`` (clusters, nodes),
``networks`` (cluster networks), ``secrets`` (secrets and configs), ``registries`` (registry logins),
``events`` (events, watch),
``releases`` (releases, routes), ``apps`` (applications,
services, containers), ``triggers`` (deploy triggers), ``tokens`` (WhoAmI), ``server`` (serving it).
"""

from __future__ import annotations

from ccs.testing.api import FakeApi
from ccs.testing.server import ThreadedServer, serve_in_thread, start_server

__all__ = ["FakeApi", "ThreadedServer", "serve_in_thread", "start_server"]
