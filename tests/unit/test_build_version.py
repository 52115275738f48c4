"""VERSION without ``--version`` (cli.build_engine.version_of), with a real git and real files:
the git short sha of the context, ``-dirty-HASH`` with uncommitted changes, else a content hash
that follows exactly what the engine would get (``.dockerignore`` applied) and the options. And
no engine at all is a build failure that says so (exit 13), not a traceback."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from cli.build_engine import BuildPlan, context_hash, run_builds, version_of
from cli.build_plan import BuildFailed, BuildSpec
from cli.build_progress import PlainBuildReporter


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(root), *args],
                          check=True, capture_output=True, text=True).stdout.strip()


def test_the_content_hash_follows_the_build_input_only(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM local/busybox:1\n")
    (tmp_path / ".dockerignore").write_text("# comment\nnotes.txt\n")
    spec = BuildSpec("web", tmp_path)
    first = version_of(spec, None)
    assert len(first) == 12 and first == version_of(spec, None)
    (tmp_path / "notes.txt").write_text("ignored by .dockerignore")
    assert version_of(spec, None) == first
    (tmp_path / "app.py").write_text("print(1)\n")
    second = version_of(spec, None)
    assert second != first
    assert version_of(replace(spec, args={"A": "1"}), None) != second  # other options: other image
    assert version_of(spec, "v1.2") == "v1.2"  # --version wins


def test_git_short_sha_and_a_dirty_suffix(tmp_path: Path) -> None:
    ctx = tmp_path / "app"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM local/busybox:1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "one")
    sha = _git(tmp_path, "rev-parse", "--short", "HEAD")
    spec = BuildSpec("web", ctx)
    assert version_of(spec, None) == sha
    (tmp_path / "elsewhere.txt").write_text("outside the context: still clean")
    assert version_of(spec, None) == sha
    (ctx / "Dockerfile").write_text("FROM local/busybox:1\nLABEL a=b\n")
    assert version_of(spec, None) == f"{sha}-dirty-{context_hash(spec)[:12]}"


def test_no_engine_is_a_build_failure_saying_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    plan = BuildPlan("services: {web: {build: .}}\n", {"web": BuildSpec("web", tmp_path)}, {"web": "r/a/web:1"})
    with pytest.raises(BuildFailed, match=r"^--build: no Docker engine to build with: "):
        run_builds(plan, PlainBuildReporter())
