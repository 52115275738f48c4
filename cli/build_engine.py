"""``--build``, the I/O part: build with the local Docker engine, push, and return the template
to deploy (see :mod:`cli.build_plan` for the rules).

- The engine is the one ``DOCKER_HOST`` names (docker SDK ``from_env``), as ``docker build``
  would use. The docker SDK is used rather than shelling out to the ``docker`` CLI: it is already
  a dependency (the agent drives engines with it), it streams the build's steps and the push's
  layers as structured messages (the progress needs them), and the push's last message carries
  the manifest digest the deploy pins.
- Push credentials: the cluster's registry login for the host when it has one (handed to the
  SDK's push as ``auth_config``, in memory only; :mod:`cli.push_auth`), else the SDK reads the
  local ``~/.docker/config.json`` (``docker login``, credential helpers), as ``docker push`` does.
- VERSION without ``--version``: the context's git commit (``git rev-parse --short HEAD``; with
  uncommitted changes under the context, ``SHA-dirty-HASH``), else a content hash. The hash
  covers the files the engine would receive (``.dockerignore`` applied by the SDK's own
  ``exclude_paths``), the Dockerfile and the build options, so it changes exactly when the build
  input does, and an unchanged input makes the same reference: ``ccs app apply --build`` of an
  unchanged tree is then "unchanged".
- The deployed reference is ``REGISTRY/APP/SERVICE:VERSION@sha256:DIGEST``: every node runs the
  bytes that were pushed, even if the tag moves later.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.utils.build import exclude_paths

from cli.build_plan import (
    BuildError,
    BuildFailed,
    BuildSpec,
    build_specs,
    check_version,
    content_version,
    git_version,
    image_ref,
    push_registry,
    registry_of,
    rewrite_template,
)
from cli.build_progress import BuildReporter
from cli.push_auth import PushAuth

__all__ = ["BuildPlan", "context_hash", "plan_builds", "push_host", "run_builds", "version_of"]


def context_hash(spec: BuildSpec) -> str:
    """sha256 (hex) of the files the engine would get for ``spec``, the Dockerfile and options."""
    root = spec.context
    if not root.is_dir():
        raise BuildError(f"services.{spec.service}.build.context: {root} is not a directory")
    ignore = root / ".dockerignore"
    patterns = [p.strip() for p in ignore.read_text().splitlines()] if ignore.is_file() else []
    patterns = [p for p in patterns if p and not p.startswith("#")]
    h = hashlib.sha256(spec.fingerprint().encode())
    for rel in sorted(exclude_paths(str(root), patterns, dockerfile=spec.dockerfile)):
        path = root / rel
        h.update(rel.encode() + b"\0")
        if path.is_symlink():
            h.update(b"l" + os.readlink(path).encode())
        elif path.is_file():
            h.update(b"f" + hashlib.sha256(path.read_bytes()).digest())
        else:
            h.update(b"d")
    if spec.dockerfile and not (root / spec.dockerfile).resolve().is_relative_to(root.resolve()):
        outside = (root / spec.dockerfile)
        if outside.is_file():
            h.update(b"D" + hashlib.sha256(outside.read_bytes()).digest())
    return h.hexdigest()


def _git(context: Path, *args: str) -> str | None:
    try:
        res = subprocess.run(["git", "-C", str(context), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout if res.returncode == 0 else None


def version_of(spec: BuildSpec, version: str | None) -> str:
    """``--version``, else the context's git short sha (``-dirty-HASH`` if changed), else a hash."""
    if version:
        return check_version(version)
    sha = _git(spec.context, "rev-parse", "--short", "HEAD")
    if sha is not None and sha.strip():
        status = _git(spec.context, "status", "--porcelain", "--", ".")
        dirty = status is None or bool(status.strip())
        return git_version(sha.strip(), dirty, context_hash(spec) if dirty else "")
    return content_version(context_hash(spec))


def _build(api: docker.APIClient, spec: BuildSpec, ref: str, reporter: BuildReporter) -> None:
    try:
        for message in api.build(tag=ref, **spec.options()):
            _raise_error(spec.service, "build", message)
            text = str(message.get("stream", "")).strip()
            if text.startswith("Step ") or text.startswith("Successfully"):
                reporter.step(spec.service, text)
    except docker.errors.APIError as exc:
        raise BuildFailed(f"services.{spec.service}.build: the engine refused the build: "
                          f"{exc.explanation or exc}") from None
    except docker.errors.DockerException as exc:
        raise BuildFailed(f"services.{spec.service}.build: {exc}") from None


def _raise_error(service: str, what: str, message: Mapping[str, Any]) -> None:
    if "error" in message:
        detail = message.get("errorDetail") or {}
        text = detail.get("message") if isinstance(detail, Mapping) else None
        raise BuildFailed(f"services.{service}.build: {what} failed: {(text or message['error']).strip()}")


def _push(api: docker.APIClient, service: str, ref: str, reporter: BuildReporter, auth: PushAuth | None = None) -> str:
    """Push ``ref``; its manifest digest (``sha256:...``) from the push's last message."""
    repository, _, tag = ref.rpartition(":")
    digest = ""
    if auth is not None:
        reporter.step(service, auth.describe())
    try:
        for message in api.push(repository, tag=tag, stream=True, decode=True,
                                auth_config=auth.auth_config() if auth is not None else None):
            _raise_error(service, f"push of {ref}", message)
            aux = message.get("aux")
            if isinstance(aux, Mapping) and aux.get("Digest"):
                digest = str(aux["Digest"])
            if message.get("id") and message.get("status") and message.get("id") != tag:
                detail = message.get("progressDetail") or {}
                reporter.layer(service, str(message["id"]), str(message["status"]),
                               int(detail.get("current") or 0), int(detail.get("total") or 0))
    except docker.errors.APIError as exc:
        raise BuildFailed(f"services.{service}.build: push of {ref} failed: {exc.explanation or exc}") from None
    except docker.errors.DockerException as exc:
        raise BuildFailed(f"services.{service}.build: push of {ref} failed: {exc}") from None
    if not digest.startswith("sha256:"):
        raise BuildFailed(f"services.{service}.build: the push of {ref} reported no digest")
    reporter.step(service, f"pushed {ref}@{digest}")
    return digest


@dataclass(frozen=True)
class BuildPlan:
    """What ``--build`` will do: each service's build and the reference it will push."""

    template: str
    specs: dict[str, BuildSpec]
    refs: dict[str, str]

    def hosts(self) -> dict[str, str]:
        """Each service's registry host (what a cluster's login is named by)."""
        return {name: push_host(ref) for name, ref in self.refs.items()}

    def preview(self) -> str:
        """The template as it will be sent, with a stand-in digest (all zeros) in place of each
        one not known yet: what the server checks in a dry run before anything is built. With a
        bare tag the server would try to resolve it in the registry (digest pinning), where it
        is not pushed yet; a reference with a digest it keeps as written."""
        return rewrite_template(self.template, {name: f"{ref}@{UNKNOWN_DIGEST}" for name, ref in self.refs.items()})


#: The stand-in for a digest a dry run cannot know (see BuildPlan.preview).
UNKNOWN_DIGEST = "sha256:" + "0" * 64


def plan_builds(
    template: str,
    doc: Any,
    base: Path,
    app: str,
    *,
    push_to: str | None,
    version: str | None,
    environ: Mapping[str, str] | None = None,
) -> BuildPlan:
    """Every ``build:`` service of ``template`` (``doc`` is its parsed tree, ``base`` its
    directory) with its reference; everything that can be refused (bad ``build:`` keys, no
    registry, a bad version) is, for every service, before the first build starts."""
    specs = build_specs(doc, base, os.environ if environ is None else environ)
    if not specs:
        raise BuildError("--build: the template has no service with build:")
    refs = {name: image_ref(push_registry(spec, push_to), app, name, version_of(spec, version))
            for name, spec in specs.items()}
    return BuildPlan(template, specs, refs)


def push_host(ref: str) -> str:
    """The registry host ``ref`` is pushed to (``docker.io`` for Docker Hub)."""
    return registry_of(ref) or "docker.io"


def run_builds(plan: BuildPlan, reporter: BuildReporter, engine: docker.APIClient | None = None,
               auths: Mapping[str, PushAuth] | None = None) -> str:
    """Build and push each service of ``plan``; the template with their images set to the
    pushed ``ref@digest``. ``auths``: by registry host, how to log in (absent: the local login)."""
    try:
        api = engine or docker.from_env().api
    except docker.errors.DockerException as exc:
        raise BuildFailed(f"--build: no Docker engine to build with: {exc}") from None
    try:
        pushed = {}
        with reporter:
            for name, spec in plan.specs.items():
                ref = plan.refs[name]
                reporter.step(name, f"building {ref} from {spec.context}")
                _build(api, spec, ref, reporter)
                auth = (auths or {}).get(push_host(ref))
                pushed[name] = f"{ref}@{_push(api, name, ref, reporter, auth)}"
    finally:
        if engine is None:
            api.close()
    return rewrite_template(plan.template, pushed)
