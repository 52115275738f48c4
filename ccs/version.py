"""The ccs release this code is: ``--version`` of ``ccs``, ``ccs-server`` and ``ccs-agent``, and the
server's answer to ``GetServerInfo`` (``ccs version``).

Read from the installed package's metadata (``importlib.metadata``, the standard library), so the
one place a release is numbered is ``pyproject.toml``.
"""

from __future__ import annotations

from importlib import metadata

__all__ = ["version"]


def version() -> str:
    """The installed ``ccs`` package's version; ``0+unknown`` when run from a tree not installed."""
    try:
        return metadata.version("ccs")
    except metadata.PackageNotFoundError:
        return "0+unknown"
