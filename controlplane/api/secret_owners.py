"""Whose a secret or config is: an application's own, or the cluster's (shared); who may touch it.

A deployer's ``SECRETS`` permission reaches its clusters, because shared values (a registry
password, a CA bundle) belong to a cluster and several applications mount them. But a name an
application owns must not be reachable through that cluster-wide permission, or a token scoped
to ``--app x`` could mount application ``web``'s own secret into ``x`` and read it back (logs),
or replace it and have the server redeploy ``web`` with its own authority. So:

- **Owner** (:func:`owner`): the application recorded on its stored versions (a template's own
  ``file:``/``environment:``/``content:`` value), else, for a name of the ``{app}_{key}`` form
  (Compose's name for a project's own secret), that application when it exists; else none:
  the name is shared.
- **Mounting**: an owned name may be mounted only by its owner's template
  (:func:`controlplane.api.secret_refs.resolve` refuses the others, naming the field).
- **Changing**: create, update and delete of an owned name need the ``update`` permission on
  its owner (:func:`may_update`, the same decision as ``UpdateApplication`` on that application).
- **Rolling**: an update re-applies only the applications the caller may update; the others get
  a warning event and keep their version until someone who may deploys them.
"""

from __future__ import annotations

from ccs.v1 import api_pb2
from controlplane.access.gate import current_principal
from controlplane.access.policy import Caller, decide
from controlplane.names import DNS_LABEL
from controlplane.secrets.store import Version
from controlplane.store import keys
from controlplane.store.etcd import Etcd

UPDATE_APPLICATION = "/ccs.v1.ApplicationService/UpdateApplication"


async def owner(etcd: Etcd, cluster: str, name: str, versions: list[Version]) -> str:
    """The application ``name`` (with these stored ``versions``) belongs to; "" when shared."""
    for v in versions:
        if v.application:
            return v.application
    head, sep, _ = name.partition("_")
    if sep and DNS_LABEL.fullmatch(head) and await etcd.get(keys.app(cluster, head)) is not None:
        return head
    return ""


def may_update(cluster: str, app: str) -> str | None:
    """None when the current caller may update application ``app`` of ``cluster`` (or the call
    runs outside the access gate: the server's own work); else why not."""
    principal = current_principal()
    if principal is None:
        return None
    caller = Caller(principal.name, principal.role, principal.clusters, principal.applications)
    return decide(caller, UPDATE_APPLICATION, api_pb2.UpdateApplicationRequest(cluster=cluster, name=app))
