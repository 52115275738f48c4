"""``--build``, the pure part: what to build, under which name, and the template deployed after.

No I/O here (the engine, git and the file walk are in :mod:`cli.build_engine`), so each rule is a
table-tested function:

- :func:`build_specs`: every service's ``build:`` as a :class:`BuildSpec` (string form: the
  context; mapping form: ``context``, ``dockerfile``, ``args``, ``target``, ``labels``,
  ``cache_from``, ``no_cache``, ``pull``). Any other key under ``build:`` is refused naming it:
  nothing accepted is ignored. A value with ``$`` is refused too: the CLI builds before the server
  interpolates the template, so it could not honour it.
- :func:`image_ref`: ``REGISTRY/APP/SERVICE:VERSION``; :func:`push_registry` chooses REGISTRY
  (``--push-to``, else the registry the service's own ``image:`` names, else a refusal naming the
  flag); :func:`git_version` / :func:`content_version` choose VERSION when ``--version`` is absent.
- :func:`rewrite_template`: the template the server receives: each built service's ``build:``
  removed and its ``image:`` set to the pushed reference (``repo:tag@sha256:...``). ruamel.yaml's
  round-trip mode is used (not a dump of a parsed tree) because it keeps comments, quoting and
  YAML 1.2 scalars (``on``/``no`` stay strings as the server reads them); the result is parsed
  back and compared with what was meant, so an edit it could not express is an error, not a
  silently different template.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from ccs.image_refs import is_path_component, is_tag, parse_image

__all__ = [
    "ACCEPTED_KEYS",
    "BuildError",
    "BuildFailed",
    "BuildSpec",
    "build_specs",
    "check_version",
    "content_version",
    "git_version",
    "image_ref",
    "push_registry",
    "registry_of",
    "rewrite_template",
]

#: The keys of ``build:`` that ``--build`` honours (each maps to one engine build option).
ACCEPTED_KEYS = ("context", "dockerfile", "args", "target", "labels", "cache_from", "no_cache", "pull")
HASH_CHARS = 12


class BuildError(ValueError):
    """A ``build:`` the CLI cannot honour, or a bad ``--build`` option; the message names it."""


class BuildFailed(RuntimeError):
    """The engine refused a build or a push; the message says which service and why."""


@dataclass(frozen=True)
class BuildSpec:
    """One service's build, as the engine's build API takes it (paths resolved)."""

    service: str
    context: Path
    dockerfile: str | None = None
    args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    cache_from: list[str] = field(default_factory=list)
    no_cache: bool = False
    pull: bool = False
    image: str = ""  # the service's own image:, if any (it may name the registry to push to)

    def options(self) -> dict[str, Any]:
        """The docker SDK's ``APIClient.build`` keyword arguments (without the tag)."""
        out: dict[str, Any] = {"path": str(self.context), "rm": True, "decode": True}
        if self.dockerfile:
            out["dockerfile"] = self.dockerfile
        if self.args:
            out["buildargs"] = dict(self.args)
        if self.target:
            out["target"] = self.target
        if self.labels:
            out["labels"] = dict(self.labels)
        if self.cache_from:
            out["cache_from"] = list(self.cache_from)
        if self.no_cache:
            out["nocache"] = True
        if self.pull:
            out["pull"] = True
        return out

    def fingerprint(self) -> str:
        """The build options as text, for the content hash (same files, other args: other image)."""
        return repr((self.dockerfile, sorted(self.args.items()), self.target, sorted(self.labels.items()),
                     self.cache_from))


def _text(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BuildError(f"{where}: must be a string")
    text = str(value)
    if "$" in text:
        raise BuildError(f"{where}: {text!r}: variables are not supported with --build (the CLI builds "
                         "before the server interpolates the template); write the value")
    return text


def _pairs(value: Any, where: str, environ: Mapping[str, str], *, from_env: bool) -> dict[str, str]:
    """A Compose mapping-or-list (``{K: V}`` or ``["K=V", "K"]``) as a dict. A bare ``K`` takes
    its value from ``environ`` (as Compose does for build args) and is left out when unset."""
    out: dict[str, str] = {}
    if isinstance(value, Mapping):
        for k, v in value.items():
            key = _text(k, where)
            if v is None:
                if from_env and key in environ:
                    out[key] = environ[key]
                elif not from_env:
                    out[key] = ""
                continue
            out[key] = _text(v, f"{where}.{key}")
        return out
    if isinstance(value, list):
        for i, item in enumerate(value):
            text = _text(item, f"{where}[{i}]")
            key, eq, val = text.partition("=")
            if eq:
                out[key] = val
            elif from_env and key in environ:
                out[key] = environ[key]
            elif not from_env:
                out[key] = ""
        return out
    raise BuildError(f"{where}: must be a mapping or a list of K=V")


def _spec(name: str, build: Any, image: str, base: Path, environ: Mapping[str, str]) -> BuildSpec:
    where = f"services.{name}.build"
    if isinstance(build, str):
        build = {"context": build}
    if not isinstance(build, Mapping):
        raise BuildError(f"{where}: must be a path or a mapping")
    unknown = sorted(str(k) for k in build if k not in ACCEPTED_KEYS)
    if unknown:
        raise BuildError(f"{where}.{unknown[0]}: is not supported with --build (supported: "
                         f"{', '.join(ACCEPTED_KEYS)})")
    context = _text(build.get("context", "."), f"{where}.context")
    if "://" in context or context.startswith("git@"):
        raise BuildError(f"{where}.context: {context!r}: only a local directory can be built")
    path = Path(context).expanduser()
    cache_from = build.get("cache_from", [])
    if not isinstance(cache_from, list):
        raise BuildError(f"{where}.cache_from: must be a list of images")
    flags = {}
    for key in ("no_cache", "pull"):
        value = build.get(key, False)
        if not isinstance(value, bool):
            raise BuildError(f"{where}.{key}: must be true or false")
        flags[key] = value
    return BuildSpec(
        service=name,
        context=path if path.is_absolute() else base / path,
        dockerfile=_text(build["dockerfile"], f"{where}.dockerfile") if "dockerfile" in build else None,
        args=_pairs(build.get("args", {}), f"{where}.args", environ, from_env=True),
        target=_text(build["target"], f"{where}.target") if "target" in build else None,
        labels=_pairs(build.get("labels", {}), f"{where}.labels", environ, from_env=False),
        cache_from=[_text(c, f"{where}.cache_from[{i}]") for i, c in enumerate(cache_from)],
        no_cache=flags["no_cache"],
        pull=flags["pull"],
        image=image,
    )


def build_specs(doc: Any, base: Path, environ: Mapping[str, str]) -> dict[str, BuildSpec]:
    """Every service with ``build:`` in the parsed template ``doc`` (relative contexts are
    relative to ``base``, the template's directory), in the template's order."""
    services = doc.get("services") if isinstance(doc, Mapping) else None
    if not isinstance(services, Mapping):
        return {}
    out = {}
    for name, svc in services.items():
        if isinstance(svc, Mapping) and "build" in svc:
            image = svc.get("image")
            out[str(name)] = _spec(str(name), svc["build"], image if isinstance(image, str) else "", base, environ)
    return out


def registry_of(image: str) -> str | None:
    """The registry host an image reference names, as the Engine reads it (:mod:`ccs.image_refs`,
    the one parser of references: ``docker.io/x`` names Docker Hub); None when it names none.
    ValueError saying why when ``image`` is not a reference."""
    return parse_image(image).host or None


def push_registry(spec: BuildSpec, push_to: str | None) -> str:
    """Where the built image goes: ``--push-to``, else the registry of the service's ``image:``."""
    if push_to is not None:
        registry = push_to.rstrip("/")
        try:
            parse_image(f"{registry}/x")  # what is pushed is REGISTRY/APP/SERVICE: REGISTRY must start a name
        except ValueError:
            raise BuildError(f"--push-to: {push_to!r} is not a registry (HOST[:PORT], e.g. "
                             "registry.example.com:5000)") from None
        return registry
    try:
        named = registry_of(spec.image) if spec.image else None
    except ValueError as exc:
        raise BuildError(f"services.{spec.service}.image: {exc}") from None
    if named is None:
        raise BuildError(f"services.{spec.service}.build: no registry to push to: pass --push-to REGISTRY, or "
                         f"name one in services.{spec.service}.image (e.g. registry.example.com/team/app)")
    return named


def check_version(version: str, option: str = "--version") -> str:
    if not is_tag(version):
        raise BuildError(f"{option}: {version!r} is not an image tag (1-128 of A-Z a-z 0-9 _ . -, "
                         "not starting with . or -)")
    return version


def image_ref(registry: str, app: str, service: str, version: str) -> str:
    """``REGISTRY/APP/SERVICE:VERSION`` (app and service names are DNS labels, so valid path
    components; checked anyway so a bad name is refused before a build, not by the push)."""
    for what, part in (("application name", app), (f"services.{service}", service)):
        if not is_path_component(part):
            raise BuildError(f"{what}: {part!r} cannot be part of an image name (lowercase a-z 0-9 and - . _)")
    return f"{registry}/{app}/{service}:{check_version(version)}"


def content_version(digest_hex: str) -> str:
    """VERSION from a content hash (no git): its first 12 hex digits."""
    return digest_hex[:HASH_CHARS]


def git_version(short_sha: str, dirty: bool, digest_hex: str) -> str:
    """VERSION from git: the commit's short sha; a tree with uncommitted changes under the
    context gets ``-dirty-`` and the content hash, so two different dirty builds never share a
    tag and a dirty build never takes the clean commit's tag."""
    return f"{short_sha}-dirty-{digest_hex[:HASH_CHARS]}" if dirty else short_sha


_UNEDITABLE = ("template: the built images could not be written into it without changing its meaning "
               "(a build: from a << merge?); write build: in each service, or set image: and deploy "
               "without --build")


def _yaml() -> YAML:
    y = YAML()  # round-trip: comments, order and quoting kept
    y.preserve_quotes = True
    y.width = 4096
    return y


def rewrite_template(text: str, refs: Mapping[str, str]) -> str:
    """``text`` with each service of ``refs`` built: its ``build:`` removed, ``image:`` = the ref."""
    y = _yaml()
    try:
        doc = y.load(text)
    except YAMLError as exc:
        raise BuildError(f"template: not valid YAML: {exc}") from None
    services = doc.get("services") if isinstance(doc, Mapping) else None
    if not isinstance(services, Mapping):
        raise BuildError("template: has no services")
    try:
        for name, ref in refs.items():
            svc = services[name]
            position = list(svc).index("build")
            if "image" in svc:
                svc["image"] = ref
                del svc["build"]
            else:
                del svc["build"]
                svc.insert(position, "image", ref)
    except (KeyError, ValueError, TypeError, AttributeError):  # e.g. a build: from a << merge
        raise BuildError(_UNEDITABLE) from None
    out = io.StringIO()
    y.dump(doc, out)
    result = out.getvalue()
    _check_rewrite(text, result, refs)
    return result


def _check_rewrite(before: str, after: str, refs: Mapping[str, str]) -> None:
    """The rewritten text means the original with exactly those edits (YAML 1.2, as the server)."""
    safe = YAML(typ="safe", pure=True)
    old, new = safe.load(before), safe.load(after)
    for name, ref in refs.items():
        old["services"][name].pop("build", None)
        old["services"][name]["image"] = ref
    if old != new:
        raise BuildError(_UNEDITABLE)
