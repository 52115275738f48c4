"""The ccs control plane: a stateless gRPC API server over etcd, plus reconcilers.

Layers, lowest first (enforced by import-linter contracts in pyproject.toml):

- ``controlplane.compose``: Compose template -> validated service specs. Pure, no I/O.
- ``controlplane.scheduler`` and ``controlplane.planner``: pure functions from
  (desired, observed) to placements and actions. Table-tested, no I/O.
- ``controlplane.store``: the only code that talks to etcd. One key layout, one
  transaction builder, errors that say which key failed.
- ``controlplane.api``: gRPC servicers. They validate requests, call the store, and map
  errors to status codes at one boundary (``controlplane.api.errors``).
- ``controlplane.server`` / ``controlplane.main``: process wiring: etcd (embedded or
  external), auth, health, reflection, signals.

State lives in etcd and nowhere else: any API server can be restarted or replaced at
any moment without losing anything.
"""
