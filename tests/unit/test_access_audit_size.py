"""An audit record stays small whatever the request carried (the API fuzz test found a
10,000-record listing and an audit watch batch that outgrew a message, from records that
copied megabyte names)."""

from __future__ import annotations

from typing import Any

from ccs.v1 import api_pb2
from controlplane.access.audit import MAX_MESSAGE, MAX_TARGET, AuditLog


class _Context:
    def peer(self) -> str:
        return "ipv4:127.0.0.1:" + "9" * 5000


def test_a_record_names_a_huge_target_and_peer_in_bounded_text() -> None:
    request = api_pb2.CreateClusterRequest(name="x" * 1_000_000)
    context: Any = _Context()
    _, rec = AuditLog.new_record(None, "/ccs.v1.ClusterService/CreateCluster", request, context)
    assert rec.target.startswith("cluster xxx") and len(rec.target) <= MAX_TARGET
    assert "(1000008 chars)" in rec.target  # it says it was cut, and from how long
    assert len(rec.peer) <= MAX_TARGET
    assert rec.ByteSize() < MAX_TARGET * 2 + MAX_MESSAGE + 200
