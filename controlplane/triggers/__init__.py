"""Deploy triggers: signed HTTPS calls that redeploy, retag or scale an application (issue 13).

Design, and why:

- **Where things live.** A trigger's record (action, service, callback, the id of the
  application it was made for) is a protobuf under ``/ccs/triggers/{cluster}/{app}/{name}``,
  outside the cluster subtree so it never enters the informer's cache or a cluster watch. Its
  secret is a value of kind ``trigger`` in the secrets store (``controlplane.secrets``):
  encrypted at rest under the data key, re-encrypted by ``ccs secret rotate-key`` like every
  secret, versioned (``ccs trigger rotate`` adds a version; only the latest signs).
- **Replays.** A delivery id is claimed under ``/ccs/triggerdeliveries/...`` on a TTL lease,
  create-only, *in the action's own transaction* (with the call's audit record): two replicas
  given the same delivery cannot both win, a server restart forgets nothing, and an accepted
  call is one etcd write (issue 13's < 100 ms p99 under 50 calls at once). An action that
  fails (a bad tag, a refused template) writes nothing, its claim included, so a redelivery
  may try again.
- **Reads.** A call is checked against a watch-fed copy of the records and their secrets
  (:mod:`cache`), not etcd reads; its claim is guarded on what it was checked with, so a copy
  that lags a rotation or removal never admits the old secret.
- **Callbacks** go only where :mod:`callback_target` allows (no loopback, link-local or
  metadata address; private ones with ``--allow-private-callbacks``).
- **Layers.** :mod:`signature` and :mod:`rules` are pure (the clock is an argument); the
  invoker (:mod:`invoke`) is the one place a call is checked and acted on, for the HTTPS
  endpoint (:mod:`http`) and the ``InvokeTrigger`` RPC alike.
"""
