"""The agent's version, as installed (reported in NodeStatus.agent_version and SessionRequest)."""

from __future__ import annotations

from importlib import metadata

try:
    VERSION = metadata.version("ccs")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    VERSION = "0.0.0+source"
