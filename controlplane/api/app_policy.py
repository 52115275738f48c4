"""The cluster's policy on privileged Compose keys, checked when a template is accepted.

The parser lists each widening value of the services it deploys (``ParsedTemplate.privileged``,
see :mod:`controlplane.compose.security`); here they meet the cluster's ``policy.allow``, set
with ``ccs cluster update C --allow/--deny``. A template with a value the policy does not allow
is refused with PERMISSION_DENIED, naming every such field and the ``--allow`` that admits it.

When: at deploy, update and rollback, the moments a template is accepted, as Kubernetes'
PodSecurity admission checks a pod when it is admitted. Narrowing the policy later does not
touch what was accepted: those services keep running, restarting, rescheduling and scaling
from their stored specs, as existing pods keep running under a stricter namespace label. The
next deploy, update or rollback of such an application must pass the narrowed policy.

Race: the accepting write is guarded by the cluster record's revision read here (only when the
template uses a privileged key), so an ``--deny`` that lands between the check and the write
makes the write fail and be retried against the new policy; one that lands after it finds the
application already accepted, like any other application accepted before the change.
"""

from __future__ import annotations

from ccs.v1 import resources_pb2 as pb
from controlplane.compose import ParsedTemplate
from controlplane.compose.security import POLICY_KEYS, PrivilegedUse
from controlplane.grpc_errors import InvalidArgument, PermissionDenied
from controlplane.store import NotFound, keys
from controlplane.store.codec import decode
from controlplane.store.etcd import Etcd

__all__ = ["POLICY_KEYS", "check_policy", "policy_names", "refusals"]


def refusals(cluster: str, allowed: set[str], uses: list[PrivilegedUse]) -> list[str]:
    """One line per use the policy does not allow (pure, for tests)."""
    return [
        f"{u.path}: {u.what} is refused by the policy of cluster {cluster}; "
        f"allow with `ccs cluster update {cluster} --allow {u.policy}`"
        for u in uses
        if u.policy not in allowed
    ]


async def check_policy(etcd: Etcd, cluster: str, parsed: ParsedTemplate) -> int:
    """Raise PermissionDenied unless the cluster allows every privileged use of ``parsed``.

    Returns the cluster record's mod_revision to guard the accepting write with, or 0 when the
    template uses nothing privileged (its acceptance does not depend on the policy).
    """
    if not parsed.privileged:
        return 0
    kv = await etcd.get(keys.cluster(cluster))
    if kv is None:
        raise NotFound("cluster", cluster)
    record = decode(kv, pb.Cluster)
    refused = refusals(cluster, set(record.policy.allow), parsed.privileged)
    if refused:
        raise PermissionDenied("; ".join(refused))
    return kv.mod_revision


def policy_names(field: str, values: list[str]) -> set[str]:
    """The policy names of an UpdateClusterRequest field, each checked."""
    out = set()
    for index, name in enumerate(values):
        if name not in POLICY_KEYS:
            raise InvalidArgument(
                f"{field}[{index}]", f"{name!r} is not a policy name; use one of {', '.join(POLICY_KEYS)}"
            )
        out.add(name)
    return out
