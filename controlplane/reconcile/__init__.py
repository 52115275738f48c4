"""Reconcilers: level-triggered loops that turn desired state into container placements.

Design (swarmkit's orchestrator + controller-runtime's work queue):

- The informer (:mod:`controlplane.informer`, a module of its own) lists every cluster
  subtree once, then follows one etcd watch from that revision, so reconcilers read
  memory, not etcd. The dispatcher uses the same cache to stream assignments to agents.
- Changes mark things dirty (a service, a node) and enqueue the *cluster*. One pass per
  cluster then plans every dirty service against one scheduler snapshot, so a burst of
  20,000 status updates costs a handful of passes, not 20,000.
- :mod:`.queue` gives per-key serial processing, parallelism across keys and
  exponential backoff per key; ``requeue_after`` schedules timed work (restart delays, down
  graces); a node's loss arrives as a change (its last alive key going,
  :mod:`controlplane.dispatcher.liveness`), not as a timer.
- Planning is pure (:mod:`controlplane.planner`, :mod:`controlplane.scheduler`); the
  applier writes the actions in etcd transactions guarded by the cached
  ``mod_revision``. A stale cache shows up as a ``Conflict`` and simply requeues.
- A failure belongs to its object (:mod:`.containment`): one service or release that cannot
  be planned, or one record that does not decode, is set aside, reported once and retried
  on its own backoff while the rest of the pass commits. The queue's backoff per cluster is
  left for what fails a whole pass.
- Reconcilers run only on the leader (:mod:`controlplane.leader`).
"""
