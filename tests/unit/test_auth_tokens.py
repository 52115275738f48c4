"""Token records and the audit's rate limit for unauthenticated calls, as pure logic."""

from __future__ import annotations

import json

from controlplane.access.audit import TokenBucket
from controlplane.auth import Principal, parse_record, token_id, token_record

DIGEST = "ab" * 32


def test_a_record_written_before_roles_still_parses() -> None:
    legacy = json.dumps({"name": "admin", "role": "admin", "cluster": "", "node": "", "created_at": 5.0}).encode()
    p = parse_record(DIGEST, legacy)
    assert p == Principal("admin", "admin", id=token_id(DIGEST), created_at=5.0)
    assert p.refusal(now=1e12) is None


def test_a_record_round_trips_with_its_scope_and_lifetime() -> None:
    p = Principal("ci", "deployer", id=token_id(DIGEST), clusters=("prod",), applications=("shop",),
                  created_at=10.0, expires_at=20.0, created_by="admin")
    assert parse_record(DIGEST, token_record(p)) == p
    assert p.id == "abababababababab"


def test_revoked_and_expired_tokens_say_why() -> None:
    p = Principal("ci", "deployer", id="abababababababab", expires_at=100.0)
    assert p.refusal(now=99.9) is None
    assert p.refusal(now=100.0) == "token 'ci' (id abababababababab) expired at 1970-01-01T00:01:40Z"
    revoked = Principal("ci", "deployer", id="abababababababab", revoked_at=50.0)
    assert revoked.refusal(now=0) == "token 'ci' (id abababababababab) was revoked"


def test_the_unauthenticated_audit_limit_is_a_token_bucket() -> None:
    t = [0.0]
    bucket = TokenBucket(rate=2.0, burst=3.0, clock=lambda: t[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    t[0] = 0.5  # one more token
    assert [bucket.take(), bucket.take()] == [True, False]
    t[0] = 100.0  # never more than the burst saved up
    assert sum(bucket.take() for _ in range(10)) == 3
    assert bucket.dropped == 2 + 7
