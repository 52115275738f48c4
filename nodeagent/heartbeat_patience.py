"""When a heartbeat that timed out should end the agent's session, and when it should not.

A heartbeat is a unary call with a deadline of one period (at least 5 s). It used to end the
session at its first failure of any kind, so the agent reconnected, maybe to another replica.
That is right when the replica is gone or refuses (UNAVAILABLE: its etcd lease lapsed), and
wrong when the replica is only *slow*: under a burst of work (issue 15: 500 hollow nodes while
20,000 containers deploy) heartbeats waited in the server's gRPC queue past their deadline, every
agent that missed one opened a new session, and each new session costs the server a complete
assignment set and network map - so the reconnects were most of the load that made the next
heartbeats late (4,226 session ends of 500 nodes in 150 s, all ``DEADLINE_EXCEEDED``).

So a heartbeat that timed out is sent again at once on the same session while the last answered
one is recent enough: less than :data:`PATIENCE_PERIODS` periods ago. Past that, the node has
been unheard longer than the server's liveness deadline (two periods and a second,
:func:`controlplane.planner.liveness_deadline`), the replica has given up on it anyway, and the
agent moves on as before. Nothing is lost by waiting meanwhile: the session stream keeps
bringing assignments, statuses keep flowing on their own calls, and a replica that hears a
heartbeat after its deadline puts the node's alive key back (``NodeLiveness.heard``).
Swarm's agent does the same in spirit: its session survives heartbeat errors until the
dispatcher's heartbeat period times a multiplier has passed.

Pure: the caller passes the times.
"""

from __future__ import annotations

import grpc

PATIENCE_PERIODS = 3.0
"""Periods since the last answered heartbeat after which a timed-out one ends the session."""


def keep_session(code: grpc.StatusCode | None, *, last_answered: float, now: float, period: float) -> bool:
    """Whether a heartbeat that failed with ``code`` at ``now`` leaves the session up (the next
    heartbeat goes at once). Only a deadline is waited out; any other failure ends the session."""
    if code is not grpc.StatusCode.DEADLINE_EXCEEDED:
        return False
    return now - last_answered < PATIENCE_PERIODS * max(period, 0.001)
