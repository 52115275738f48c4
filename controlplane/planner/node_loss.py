"""What node loss does to a service's containers: ``x-ccs.on_node_loss``, decided in one place.

A named volume lives on the node that created it (the engine's ``local`` driver; ccs does not
move data). Rescheduling a container that mounts one therefore starts it elsewhere with an
*empty* volume of the same name: a database comes back blank, and when its node returns, the
old data is there again but no container uses it. Swarm does exactly that (it reschedules
whatever the volumes); Kubernetes does not for a StatefulSet on node-local volumes: the pod
stays bound to its node until the node returns or an operator deletes it. ccs follows
Kubernetes for services with named volumes and Swarm for the others:

* ``wait`` (the default when the service mounts a named volume, including an external one): a
  container on a DOWN node keeps its slot there, the service status says it waits for the node,
  and when the node returns it runs there again with its data. Its restarts stay on its node too
  (:data:`~ccs.labels.LABEL_HOME_NODE`), so a crash does not move it to a node without its data.
  To give the node up, remove it (``ccs node rm``): the slot is then placed anew.
* ``reschedule`` (the default otherwise: nothing is lost by moving): after the down grace the
  container is replaced on another node, as before.

Draining a node (``ccs node update --availability drain``) moves containers whatever the policy:
that is the operator's explicit choice, and the README says the data stays behind.

Templates say ``wait`` or ``reschedule`` explicitly when the default does not fit, e.g.
``reschedule`` for a service whose named volume is network storage (a ``local`` volume with NFS
``driver_opts``), or a cache it can rebuild.
"""

from __future__ import annotations

from collections.abc import Mapping

from ccs.labels import LABEL_HOME_NODE
from ccs.v1 import resources_pb2 as pb

from .containers import node_is_draining

WAIT = pb.NODE_LOSS_POLICY_WAIT
RESCHEDULE = pb.NODE_LOSS_POLICY_RESCHEDULE


def has_named_volume(spec: pb.ServiceSpec) -> bool:
    """Whether ``spec`` mounts a volume by name (data that stays on the node that made it)."""
    return any(m.type == "volume" and m.source for m in spec.volumes)


def node_loss_policy(spec: pb.ServiceSpec) -> pb.NodeLossPolicy:
    """The effective policy: the template's ``x-ccs.on_node_loss``, else by the volumes."""
    if spec.on_node_loss != pb.NODE_LOSS_POLICY_UNSPECIFIED:
        return spec.on_node_loss
    return WAIT if has_named_volume(spec) else RESCHEDULE


def waits_for_its_node(spec: pb.ServiceSpec) -> bool:
    """Whether a container of ``spec`` stays with its node (through node loss and restarts)."""
    return node_loss_policy(spec) == WAIT


def why_it_waits(spec: pb.ServiceSpec) -> str:
    """The reason a message gives, naming the key the user can change."""
    if spec.on_node_loss == WAIT:
        return "x-ccs.on_node_loss: wait"
    return "x-ccs.on_node_loss defaults to wait: the service has named volumes on that node"


def home_node(c: pb.Container, nodes: Mapping[str, pb.Node]) -> str | None:
    """The node an unplaced ``c`` must be placed on (its :data:`LABEL_HOME_NODE`), or ``None``
    to let the scheduler choose: no home, or the home was removed or is draining (both the
    operator's decision to give the node's data up)."""
    home = str(c.meta.labels.get(LABEL_HOME_NODE, ""))
    if not home or home not in nodes or node_is_draining(nodes[home]):
        return None
    return home
