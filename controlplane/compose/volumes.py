"""Compose volumes: the top-level definitions, and the per-mount options of services' volumes.

What each key does on ccs (the support table points here):

- ``driver`` and ``driver_opts`` go to the engine's volume create as they are, so a ``local``
  volume with ``{type: nfs, o: "addr=...", device: ":/export"}`` mounts that export, and one with
  ``{type: tmpfs, device: tmpfs, o: size=64m}`` is a tmpfs. ``labels`` become volume labels;
  the labels ccs puts on the volumes it creates (``ccs.*``) win on a clash, which is warned about.
- ``name`` is the volume's name on the engine, as in Compose (default ``ccs-<app>-<key>``, the
  counterpart of Compose's ``<project>_<key>``). Names beginning with ``ccs-`` are ccs's own and are
  refused unless the volume is external (that is how one application uses another's volume).
- ``external: true``: the volume must already exist on the node (named ``name``, else the key
  itself, as in Compose). The agent never creates it; a container placed where it is missing
  stays pending, naming the volume and the node, until it exists. ``driver``, ``driver_opts``
  and ``labels`` describe a volume to create, so with ``external`` they are refused, as Compose
  refuses them.

The engine never changes an existing volume: creating one that exists returns it as it is. The
agent therefore compares what it gets back with the definition and fails the container when the
driver, its options or the labels differ, instead of silently using a volume that stores the
data elsewhere (see nodeagent/runtime/docker_volumes.py).

A definition that sets nothing but its name is left out of the mounts (``VolumeMount.volume``
unset), which is what specs stored before definitions travelled look like: such services keep
their spec, and the agent makes ``ccs-<app>-<key>`` on the default driver as it always did.
"""

from __future__ import annotations

import re
from typing import Any

from controlplane.compose.errors import Diagnostics, Path
from controlplane.compose.model import BindMountOptions, NamedVolume, ServiceSpec, TmpfsMountOptions, VolumeMount
from controlplane.compose.units import size_bytes, to_bool, to_str

#: The engine's rule for volume names (moby's RestrictedNamePattern).
ENGINE_VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
#: The prefix of the names ccs gives volumes (ccs-<app>-<key>) and of its labels.
CCS_NAME_PREFIX = "ccs-"
CCS_LABEL_PREFIX = "ccs."
PROPAGATION = ("shared", "slave", "private", "rshared", "rslave", "rprivate")
SELINUX = ("z", "Z")
_MACOS_ONLY = ("consistent", "cached", "delegated")
_MAX_MODE = 0o7777


def _labels(value: Any, path: Path, diag: Diagnostics) -> dict[str, str]:
    """``labels`` in map or ``K=V`` list form; warn about keys ccs sets itself."""
    pairs: list[tuple[str, str]] = []
    if isinstance(value, dict):
        pairs = [(str(k), to_str(v)) for k, v in value.items()]
    elif isinstance(value, list):
        for item in value:
            key, _, text = str(item).partition("=")
            pairs.append((key, text))
    out: dict[str, str] = {}
    for key, text in pairs:
        if not key or any(ch.isspace() for ch in key):
            diag.error(path, f"invalid label name {key!r}")
            continue
        if key.startswith(CCS_LABEL_PREFIX):
            diag.warn((*path, key), "labels starting with 'ccs.' are ccs's own: where ccs sets one, its value wins")
        out[key] = text
    return out


def _driver_opts(value: Any, path: Path, diag: Diagnostics) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        diag.error(path, "must be a mapping of option names to values")
        return {}
    return {str(k): to_str(v) for k, v in value.items()}


def _external(value: Any, path: Path, diag: Diagnostics) -> tuple[bool, str | None]:
    """``external: true`` or the legacy ``external: {name: N}`` -> (external, legacy name)."""
    if isinstance(value, dict):
        name = value.get("name")
        if name is not None:
            diag.warn((*path, "name"), "external.name is deprecated in Compose: use name: beside external: true")
        return True, None if name is None else str(name)
    if value is None:
        return False, None
    converted = diag.convert(path, to_bool, value)
    return bool(converted), None


def named_volume(key: str, opts: dict[str, Any], diag: Diagnostics) -> NamedVolume:
    """One entry of the top-level ``volumes:`` (already known to be a mapping)."""
    path: Path = ("volumes", key)
    external, legacy_name = _external(opts.get("external"), (*path, "external"), diag)
    name = opts.get("name")
    if name is not None and legacy_name is not None and str(name) != legacy_name:
        diag.error((*path, "external", "name"), f"differs from name: {name!r}: keep only name:")
    engine_name = str(name) if name is not None else legacy_name
    if engine_name is None and external:
        engine_name = key  # Compose: an external volume is looked up by its key, unprefixed
    if engine_name is not None:
        where = (*path, "name") if name is not None else (*path, "external")
        if not ENGINE_VOLUME_NAME.fullmatch(engine_name):
            diag.error(where, f"{engine_name!r} is not a valid volume name: use letters, digits, '_', '.' "
                              "and '-', starting with a letter or digit, at least 2 characters")
        elif engine_name.startswith(CCS_NAME_PREFIX) and not external:
            diag.error(where, f"names starting with {CCS_NAME_PREFIX!r} are the ones ccs gives volumes "
                              "(ccs-<app>-<volume>). To use another application's volume, declare it "
                              "external: true")
    volume = NamedVolume(
        name=key,
        driver=None if opts.get("driver") is None else str(opts["driver"]),
        external=external,
        labels=_labels(opts.get("labels"), (*path, "labels"), diag),
        driver_opts=_driver_opts(opts.get("driver_opts"), (*path, "driver_opts"), diag),
        volume_name=engine_name,
    )
    if external:
        for field_name in ("driver", "driver_opts", "labels"):
            if opts.get(field_name) is not None:
                diag.error((*path, field_name), "cannot be set on an external volume: ccs does not create "
                                                "it, it only mounts the volume that exists on the node")
    if volume.driver == "":
        diag.error((*path, "driver"), "must not be empty: leave it out for the engine's default (local)")
    return volume


def _settings(v: NamedVolume) -> tuple[Any, ...]:
    return (v.driver or "local", v.external, sorted(v.labels.items()), sorted(v.driver_opts.items()))


def check_shared_names(volumes: list[NamedVolume], diag: Diagnostics) -> None:
    """Two keys naming one engine volume (``name:``) must describe it the same way."""
    seen: dict[str, NamedVolume] = {}
    for v in volumes:
        if not v.volume_name:
            continue
        first = seen.setdefault(v.volume_name, v)
        if first is not v and _settings(first) != _settings(v):
            diag.error(("volumes", v.name), f"names the same engine volume {v.volume_name!r} as "
                                            f"volumes.{first.name} with other settings")


def is_plain(v: NamedVolume) -> bool:
    """Nothing but the name: the agent's default (ccs-<app>-<key>, default driver) is the whole of it."""
    return v == NamedVolume(name=v.name)


def attach_definitions(spec: ServiceSpec, volumes: dict[str, NamedVolume]) -> None:
    """Copy each named mount's top-level definition into the mount, for the agent to create."""
    for mount in spec.volumes:
        definition = volumes.get(mount.source) if mount.type == "volume" and mount.source else None
        if definition is not None and not is_plain(definition):
            mount.volume = definition


# ------------------------------------------------------------------ per-mount options


def _octal_mode(value: Any) -> int:
    """A tmpfs ``mode``: a string is octal ("1777"); a number is taken as it is (YAML 0o1777)."""
    if isinstance(value, bool):
        raise ValueError("tmpfs.mode must be permission bits like '1777', got a boolean")
    if isinstance(value, str):
        try:
            mode = int(value.strip().removeprefix("0o"), 8)
        except ValueError:
            raise ValueError(f"tmpfs.mode must be octal permission bits like '1777', got {value!r}") from None
    elif isinstance(value, int):
        mode = value
    else:
        raise ValueError(f"tmpfs.mode must be permission bits like '1777', got {value!r}")
    if not 0 <= mode <= _MAX_MODE:
        raise ValueError(f"tmpfs.mode must be between 0 and 0o7777, got {value!r}")
    return mode


def _bind_options(options: dict[str, Any]) -> BindMountOptions:
    bind = BindMountOptions()
    propagation = options.get("propagation")
    if propagation is not None:
        if propagation not in PROPAGATION:
            raise ValueError(f"bind.propagation must be one of {', '.join(PROPAGATION)}, got {propagation!r}")
        bind.propagation = propagation
    if options.get("create_host_path") is not None:
        bind.create_host_path = to_bool(options["create_host_path"])
    recursive = options.get("recursive")
    if recursive in ("writable", "readonly"):
        raise ValueError(f"bind.recursive: {recursive} needs Docker Engine 25 (API 1.44), newer than the "
                         "engines ccs drives: use enabled or disabled")
    bind.non_recursive = recursive == "disabled"
    if options.get("selinux") is not None:
        bind.selinux = options["selinux"]  # the schema allows z or Z only
    if bind.non_recursive and bind.create_host_path:
        raise ValueError("bind.recursive: disabled cannot be combined with create_host_path: true (the "
                         "engine creates a missing host path only through its bind syntax, which has no "
                         "non-recursive mode)")
    if bind.selinux and not bind.create_host_path:
        raise ValueError("bind.selinux needs create_host_path: true (the engine relabels only through its "
                         "bind syntax, which also creates a missing host path)")
    return bind


def _tmpfs_options(options: dict[str, Any]) -> TmpfsMountOptions:
    tmpfs = TmpfsMountOptions()
    if options.get("size") is not None:
        tmpfs.size_bytes = size_bytes(options["size"])
    if options.get("mode") is not None:
        tmpfs.mode = _octal_mode(options["mode"])
    return tmpfs


def _volume_labels(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): to_str(v) for k, v in value.items()}
    return {key: text for key, _, text in (str(item).partition("=") for item in value or [])}


def apply_long_options(mount: VolumeMount, item: dict[str, Any]) -> None:
    """The ``bind:``, ``volume:`` and ``tmpfs:`` options of a long-syntax mount; ValueError if misplaced."""
    for kind in ("bind", "volume", "tmpfs"):
        if item.get(kind) is not None and mount.type != kind:
            raise ValueError(f"{kind}: options apply to type {kind} mounts, and this mount is type {mount.type}")
    if isinstance(item.get("bind"), dict):
        mount.bind = _bind_options(item["bind"])
    if isinstance(item.get("tmpfs"), dict):
        mount.tmpfs = _tmpfs_options(item["tmpfs"])
    options = item.get("volume")
    if isinstance(options, dict):
        if options.get("nocopy") is not None:
            mount.nocopy = to_bool(options["nocopy"])
        if options.get("labels") is not None:
            if mount.source:
                raise ValueError(f"volume.labels: label the named volume where it is defined "
                                 f"(volumes.{mount.source}.labels): mount labels apply to anonymous volumes")
            mount.volume_labels = _volume_labels(options["labels"])


def apply_short_modes(mount: VolumeMount, modes: list[str]) -> list[str]:
    """The short syntax's ``:MODE`` list (ro and rw are done); return the ignored ones (macOS-only)."""
    ignored: list[str] = []
    bind: dict[str, Any] = mount.bind.model_dump() if mount.bind is not None else {}
    for mode in modes:
        if mode in ("ro", "rw"):
            continue
        if mode in _MACOS_ONLY:
            ignored.append(mode)
        elif mode == "nocopy":
            if mount.type != "volume":
                raise ValueError("nocopy applies to volumes, not to bind mounts")
            mount.nocopy = True
        elif mount.type != "bind":
            raise ValueError(f"{mode!r} applies to bind mounts (host paths), not to volumes")
        else:
            bind["selinux" if mode in SELINUX else "propagation"] = mode
    if mount.type == "bind":
        mount.bind = BindMountOptions.model_validate(bind)
    return ignored
