"""A container's volumes, bind mounts and tmpfs mounts -> Engine API: pure functions, tested with tables.

- Named volumes become `ccs-<cluster>_<app>_<volume>` (a volume an older agent made as
  `ccs-<app>-<volume>`, labelled as this one, is adopted: `legacy`), or the template's `name:`,
  and `prepare` creates them first with the template's driver, driver_opts and labels
  (docker_volumes.py); an external one is only looked for. Anonymous volumes carry app labels
  so app teardown finds those Docker leaves behind. On every volume ccs's labels win over the
  user's on a clash, as on containers.
- The engine never changes a volume that exists: creating it again returns it as it is. So
  `volume_differences` compares what came back with what the template asks; a difference is the
  container's failure, not a silent mount of data kept elsewhere.
- A bind mount that may create its host path (`bind.create_host_path`, implied by Compose's
  short syntax) goes in `HostConfig.Binds`, the engine's legacy syntax, which creates a missing
  source directory: `Mounts` cannot on the engines ccs drives (BindOptions.CreateMountpoint came
  with API 1.44). Docker Compose does the same. Other binds, volumes and tmpfs go in `Mounts`,
  which carries their options (propagation, non-recursive, nocopy, tmpfs size and mode).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ccs.v1 import resources_pb2

from . import naming
from .types import InvalidSpec


@dataclass(frozen=True, slots=True)
class NamedVolume:
    """A named volume `prepare` must create (or, external, find) before the container can mount it.

    `key` is the template's name for it (the top-level `volumes:` key), for messages; `labels`
    are what ccs creates it with (the user's, then ccs's, which win), `user_labels` the user's
    part, which an existing volume must carry to be the one the template describes.
    """

    name: str
    labels: dict[str, str]
    key: str = ""
    driver: str = ""
    driver_opts: dict[str, str] = field(default_factory=dict)
    user_labels: dict[str, str] = field(default_factory=dict)
    external: bool = False
    legacy: str = ""  # the name an older agent gave it (ccs-made names only), adopted if labelled as this one


_PROPAGATION = ("shared", "slave", "private", "rshared", "rslave", "rprivate")
_SELINUX = ("z", "Z")
#: The engine's rule for volume names (moby's RestrictedNamePattern).
_VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")


def _named_volume(c: resources_pb2.Container, v: resources_pb2.VolumeMount, where: str) -> NamedVolume:
    """The volume a named mount needs: from its definition when the template gave one."""
    ccs_labels = {**naming.app_labels(c.cluster, c.application), naming.VOLUME: v.source}
    default = naming.volume_name(c.cluster, c.application, v.source)
    legacy = naming.legacy_volume_name(c.application, v.source)
    if not v.HasField("volume"):
        return NamedVolume(default, ccs_labels, key=v.source, legacy=legacy)
    d = v.volume
    if d.name and d.name != v.source:
        raise InvalidSpec(f"{where}.volume.name", f"must be the mount's source {v.source!r}, got {d.name!r}")
    name = d.volume_name or default
    if not _VOLUME_NAME.fullmatch(name):
        raise InvalidSpec(f"{where}.volume.volume_name", f"{name!r} is not a valid volume name")
    return NamedVolume(
        name,
        {} if d.external else {**d.labels, **ccs_labels},
        key=v.source,
        driver=d.driver,
        driver_opts=dict(d.driver_opts),
        user_labels={key: value for key, value in d.labels.items() if key not in ccs_labels},  # ccs's win
        external=d.external,
        legacy="" if d.volume_name or d.external else legacy,
    )


def _bind(v: resources_pb2.VolumeMount, where: str) -> tuple[dict[str, Any], str | None]:
    """A bind mount: a `Mounts` entry, or (create_host_path) a `Binds` entry "src:dst[:opts]"."""
    if not posixpath.isabs(v.source):
        raise InvalidSpec(f"{where}.source", f"a bind mount needs an absolute host path, got {v.source!r}")
    b = v.bind
    if b.propagation and b.propagation not in _PROPAGATION:
        raise InvalidSpec(f"{where}.bind.propagation", f"must be one of {_PROPAGATION}, got {b.propagation!r}")
    if b.selinux and b.selinux not in _SELINUX:
        raise InvalidSpec(f"{where}.bind.selinux", f"must be z or Z, got {b.selinux!r}")
    if b.create_host_path or b.selinux:
        if b.non_recursive:
            raise InvalidSpec(f"{where}.bind.non_recursive", "cannot be combined with create_host_path or selinux")
        if ":" in v.source or ":" in v.target:  # the bind syntax is SOURCE:TARGET:MODES
            raise InvalidSpec(f"{where}.source", "a path with ':' cannot be bound with create_host_path or selinux")
        modes = ["ro" if v.read_only else "rw", *([b.selinux] if b.selinux else []),
                 *([b.propagation] if b.propagation else [])]
        return {}, f"{v.source}:{v.target}:{','.join(modes)}"
    mount: dict[str, Any] = {"Type": "bind", "Target": v.target, "Source": v.source}
    if v.read_only:
        mount["ReadOnly"] = True
    options: dict[str, Any] = {}
    if b.propagation:
        options["Propagation"] = b.propagation
    if b.non_recursive:
        options["NonRecursive"] = True
    if options:
        mount["BindOptions"] = options
    return mount, None


def container_mounts(
    c: resources_pb2.Container,
) -> tuple[list[dict[str, Any]], list[str], tuple[NamedVolume, ...]]:
    """`HostConfig.Mounts`, `HostConfig.Binds` and the named volumes to make first, in spec order."""
    mounts: list[dict[str, Any]] = []
    binds: list[str] = []
    volumes: list[NamedVolume] = []
    for i, v in enumerate(c.spec.volumes):
        where = f"spec.volumes[{i}]"
        if not posixpath.isabs(v.target):
            raise InvalidSpec(f"{where}.target", f"must be an absolute path, got {v.target!r}")
        kind = v.type or "volume"
        if kind == "bind":
            mount, bind = _bind(v, where)
            if bind is not None:
                binds.append(bind)
            else:
                mounts.append(mount)
            continue
        mount = {"Type": kind, "Target": v.target}
        if v.read_only:
            mount["ReadOnly"] = True
        if kind == "volume" and v.source:
            volume = _named_volume(c, v, where)
            volumes.append(volume)
            mount["Source"] = volume.name
            if v.nocopy:
                mount["VolumeOptions"] = {"NoCopy": True}
        elif kind == "volume":
            labels = {**v.volume_labels, **naming.app_labels(c.cluster, c.application), naming.ANONYMOUS: "true"}
            mount["VolumeOptions"] = {"Labels": labels, **({"NoCopy": True} if v.nocopy else {})}
        elif kind == "tmpfs":
            tmpfs = _tmpfs(v.tmpfs, f"{where}.tmpfs")
            if tmpfs:
                mount["TmpfsOptions"] = tmpfs
        else:
            raise InvalidSpec(f"{where}.type", f"must be volume, bind or tmpfs, got {v.type!r}")
        mounts.append(mount)
    return mounts, binds, tuple(volumes)


def _tmpfs(t: resources_pb2.TmpfsMountOptions, where: str) -> dict[str, int]:
    if t.size_bytes < 0:
        raise InvalidSpec(f"{where}.size_bytes", "must not be negative")
    if t.mode > 0o7777:
        raise InvalidSpec(f"{where}.mode", f"must be permission bits up to 0o7777, got {t.mode:#o}")
    out = {}
    if t.size_bytes:
        out["SizeBytes"] = t.size_bytes
    if t.mode:
        out["Mode"] = t.mode
    return out


def volume_differences(volume: NamedVolume, found: Mapping[str, Any]) -> list[str]:
    """How the engine's volume `found` (its create or inspect answer) differs from `volume`.

    Option values are not shown: driver options may hold credentials (a CIFS password).
    """
    out = []
    driver = str(found.get("Driver") or "")
    if driver != (volume.driver or "local"):
        out.append(f"its driver is {driver!r}, not {volume.driver or 'local'!r}")
    options = {str(k): str(v) for k, v in (found.get("Options") or {}).items()}
    if options != volume.driver_opts:
        changed = sorted(set(options) ^ set(volume.driver_opts)
                         | {k for k in set(options) & set(volume.driver_opts) if options[k] != volume.driver_opts[k]})
        out.append(f"its driver_opts differ ({', '.join(changed)})")
    labels = found.get("Labels") or {}
    owner = {k: labels.get(k, "") for k in (naming.CLUSTER, naming.APP, naming.VOLUME)}
    wanted = {k: volume.labels.get(k, "") for k in owner}
    if owner != wanted:
        out.append(f"it belongs to cluster {owner[naming.CLUSTER] or '-'!r}, application "
                   f"{owner[naming.APP] or '-'!r}, volume {owner[naming.VOLUME] or '-'!r} (a volume two "
                   "applications share must be external in one of them)")
    missing = sorted(k for k, v in volume.user_labels.items() if labels.get(k) != v)
    if missing:
        out.append(f"it lacks labels ({', '.join(missing)})")
    return out
