"""Whether a pair may get a further block now: not while an older part would mishandle it.

A further block (index >= 1) only works when every part that touches it knows of it:

- the node's agent must make a bridge per block (``Container.subnet_index``); an older agent
  ignores the index and puts the container on the first block's bridge, where its address is
  outside that bridge's subnet and the start fails;
- every live API replica must count further blocks when it allocates (``subnetblocks/`` in
  etcd); an older replica that became leader would not see them and could hand out a subnet
  that overlaps one.

So during a rolling upgrade (agents or replicas not all new yet) a pair keeps the blocks it has
and gets no further one; a container that would need one stays pending with a reason that names
the part to upgrade, and is placed by the first pass after the upgrade. A pair's first block is
never held (every version knows it). Which parts are new is what they declare
(:mod:`ccs.features`): an agent in ``NodeStatus.agent_features``, a replica in its registry
record. Pure: no etcd, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ccs.features import SUBNET_GROWTH


def growth_hold(
    node: str, agent_features: Sequence[str], agent_version: str, replicas: Mapping[str, Sequence[str]],
) -> str:
    """Why ``node`` may get no further block now ("" when it may).

    ``replicas`` maps each live API replica (its address) to the features it declared."""
    if SUBNET_GROWTH not in agent_features:
        version = f"ccs {agent_version}" if agent_version else "an unknown version"
        return (f"the agent on {node} ({version}) predates further address blocks of a network on a node: "
                "upgrade it")
    older = sorted(address for address, features in replicas.items() if SUBNET_GROWTH not in features)
    if older:
        return (f"API replica {', '.join(older)} predates further address blocks of a network on a node: "
                "finish upgrading the control plane")
    return ""


__all__ = ["growth_hold"]
