"""The ccs control plane: a stateless gRPC API server over etcd, plus reconcilers.

Layers, lowest first (enforced by import-linter contracts in pyproject.toml; a layer never
imports one above it, so there is no import cycle between packages):

- ``controlplane.compose``, ``controlplane.scheduler``, ``controlplane.planner`` and
  ``controlplane.ipam`` (address pools), then
  ``controlplane.release`` and ``controlplane.routing``: pure functions from (desired,
  observed, now) to placements, actions and tables. Table-tested; no I/O, no clock, no
  randomness.
- ``controlplane.store``: the only code that talks to etcd. One key layout, one
  transaction builder, errors that say which key failed; the object metadata and event
  helpers every writer uses (``store.meta``, ``store.events``).
- ``controlplane.informer`` (the watch cache), ``controlplane.grpc_errors`` (the one
  boundary that maps errors to status codes), ``controlplane.names``, auth, leader
  election and the janitor.
- ``controlplane.access``: authorization (a pure policy table: RPC -> permission, role ->
  permissions with scope rules) and the audit log, over ``controlplane.auth``
  (authentication) and the store.
- ``controlplane.reconcile`` and ``controlplane.dispatcher`` (the agents' side): neither
  imports the other.
- ``controlplane.api``: gRPC servicers. They validate requests, call the store, and map
  errors to status codes through ``controlplane.grpc_errors``.
- ``controlplane.server`` / ``controlplane.main``: process wiring: etcd (embedded or
  external), auth, health, reflection, signals.

State lives in etcd and nowhere else: any API server can be restarted or replaced at
any moment without losing anything.
"""
