"""Importing the agent's pure modules does not load the Docker SDK.

import-linter sees the imports a module makes, not the side effects of its package's
``__init__``: ``import nodeagent.runtime.translate`` runs ``nodeagent/runtime/__init__.py``
first, and that used to import ``docker_engine`` (and so ``docker``, requests, urllib3).
Each import runs in a fresh interpreter, because this one has ``docker`` loaded already.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

PURE_AGENT_MODULES = [
    "nodeagent.runtime",
    "nodeagent.runtime.translate",
    "nodeagent.runtime.observe",
    "nodeagent.converge",
    "nodeagent.assignments",
    "nodeagent.router.config",
]


@pytest.mark.parametrize("module", PURE_AGENT_MODULES)
def test_importing_a_pure_agent_module_does_not_load_the_docker_sdk(module: str) -> None:
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m == 'docker' or m.startswith('docker.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"importing {module} loaded the Docker SDK"
