"""The agent's version, as installed (reported in NodeStatus.agent_version and SessionRequest):
the one definition of ccs's version (``ccs.version``), read once."""

from __future__ import annotations

from ccs.version import version

VERSION = version()
