"""The awesome-compose files refused for ``build:`` and the mapping that lets ``--build`` deploy them
(shared by tests/integration/test_build_corpus.py, one host, and e2e/test_build_deploy.py, the
testbed): each ``build:`` service gets a Dockerfile ``FROM local/busybox:1`` with the stage its
``target:`` names; every other image becomes ``local/busybox:1``, every command an idle loop,
health checks ``true``; the secret files the corpus leaves out are written; published ``ports``
are dropped (several files publish the same port; placement is not what these tests are about)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from tests.integration.e2e.test_corpus import BUILD, REFUSED, SECRET_FILE

__all__ = ["BUILT", "app_of", "errors_of", "prepare", "remaining"]

CORPUS = Path(__file__).resolve().parents[1] / "data" / "compose-corpus" / "awesome-compose"
IDLE = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
ERROR_START = re.compile(r"(?:error: |; )((?:services|networks|secrets)\.[\w.\[\]-]+): ")
BUILT = sorted(name for name, refusals in REFUSED.items() if BUILD in refusals.values())


def template_of(directory: Path) -> Path:
    return next(p for p in directory.iterdir() if p.name in ("compose.yaml", "compose.yml"))


def app_of(name: str) -> str:
    return "cb-" + name.lower()


def prepare(name: str, workdir: Path) -> Path:
    """The file, mapped, with a build context for each ``build:`` service; returns its path."""
    source, target = CORPUS / name, workdir / name
    target.mkdir(parents=True)
    doc: Any = yaml.safe_load(template_of(source).read_text())
    for svc in doc["services"].values():
        svc.pop("ports", None)
        svc.pop("entrypoint", None)
        svc["command"] = list(IDLE)
        test = (svc.get("healthcheck") or {}).get("test")
        if test and test not in ("NONE", ["NONE"]):
            svc["healthcheck"]["test"] = ["CMD", "true"]
        if "build" not in svc:
            svc["image"] = "local/busybox:1"
            continue
        build = svc["build"] if isinstance(svc["build"], dict) else {"context": svc["build"]}
        context = target / build.get("context", ".")
        context.mkdir(parents=True, exist_ok=True)
        stage = build.get("target", "base")
        (context / build.get("dockerfile", "Dockerfile")).write_text(
            f"FROM local/busybox:1 AS {stage}\nLABEL corpus={name}\n")
    for secret in (doc.get("secrets") or {}).values():
        if isinstance(secret, dict) and "file" in secret:
            path = target / secret["file"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("not-a-real-password\n")
    if (source / ".env").exists():
        shutil.copy(source / ".env", target / ".env")
    (target / "compose.yaml").write_text(yaml.safe_dump(doc, sort_keys=False, width=1000))
    return target / "compose.yaml"


def remaining(name: str) -> dict[str, str]:
    """The refusals left once the CLI builds and the secret file is there."""
    return {k: v for k, v in REFUSED[name].items() if v not in (BUILD, SECRET_FILE)}


def errors_of(stderr: str) -> list[str]:
    [line] = [x for x in stderr.splitlines() if x.startswith("error: ")]
    return sorted(m.group(1) for m in ERROR_START.finditer(line))
