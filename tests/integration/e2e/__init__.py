"""End-to-end tests on a real multi-host testbed (issue 3).

One session-scoped ``cluster3`` (see ``conftest.py``) is shared by every module: its own etcd, a
ccs-server on 0.0.0.0, three simulated hosts (network namespace + own dockerd each) with one
``ccs-agent`` per host. Bringing that up costs ~15 s, so tests share it and each one uses its own
application name and published ports; tests that break a host or a node put it back before they
return, and an autouse fixture waits until all three nodes are READY and ACTIVE again before the
next test starts.

Assertions read real state twice where it matters: through the API (what ccs believes) and through
each host's Docker Engine (what actually runs). Waits are bounded polls that fail with the last
observed state, never timed assertions.
"""
