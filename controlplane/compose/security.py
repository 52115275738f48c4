"""Compose keys that decide what a container may do to its node.

Each value falls in one of three kinds:

- **narrowing or harmless**, converted as asked: ``cap_drop``; ``cap_add`` of a capability
  the engine grants anyway; ``security_opt`` ``no-new-privileges``, ``seccomp=/path/on/node``
  (a JSON profile the agent reads on the node and sends to the engine, which takes profiles
  by content, not by path) and ``apparmor=PROFILE`` (a profile loaded on the node); sysctls
  that the kernel keeps per container (network and IPC namespaces); ``oom_score_adj`` >= 0.
- **widening**, converted but recorded as a :class:`PrivilegedUse` naming the field and the
  cluster-policy name that admits it (``POLICY_KEYS``): ``privileged``, ``cap_add`` beyond
  the engine's defaults, ``devices``, ``network_mode: host``, ``pid: host``, widening
  ``security_opt`` values and a negative ``oom_score_adj``. The parser is pure and does not
  know the cluster, so it only records them; the API refuses the template when the cluster's
  policy does not allow one (``controlplane.api.app_policy``), as Kubernetes' PodSecurity
  admission does at the same moment.
- **refused** whatever the policy, because no policy could give them their effect: sysctls
  the kernel does not namespace (runc refuses them for every container, privileged or not:
  "sysctl ... is not in a separate kernel namespace"), ``pid``/``network_mode`` that join
  another container (its replicas may run elsewhere), CDI device names, SELinux labels other
  than ``label=disable`` (ccs cannot tell whether a node enforces SELinux).

Why the engine's default capabilities are free to add: ``cap_drop: [ALL]`` then
``cap_add: [NET_BIND_SERVICE]`` is the usual hardening, and adding back what Docker grants by
default widens nothing. Kubernetes' "baseline" Pod Security Standard draws the same line.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

from controlplane.compose.errors import Diagnostics, Path, format_path
from controlplane.compose.model import DeviceMapping, ServiceSpec
from controlplane.compose.units import to_bool, to_int, to_str

# Policy name -> what it admits (README, `ccs cluster update --allow`).
POLICY_KEYS: dict[str, str] = {
    "privileged": "privileged: true",
    "cap_add": "cap_add of capabilities beyond the engine's defaults",
    "devices": "devices (host devices in the container)",
    "network_mode": "network_mode: host",
    "pid": "pid: host",
    "security_opt": "security_opt values that widen: seccomp=unconfined, apparmor=unconfined, "
    "label=disable, systempaths=unconfined, no-new-privileges=false",
    "oom_score_adj": "a negative oom_score_adj (the kernel kills the node's own processes first)",
}

# linux/capability.h, CAP_CHOWN (0) to CAP_CHECKPOINT_RESTORE (40).
CAPABILITIES = frozenset(
    {
        "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
        "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
        "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE",
        "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME",
        "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
        "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ",
        "PERFMON", "BPF", "CHECKPOINT_RESTORE",
    }
)
# What the engine grants every container (moby's oci/caps/defaults.go).
DEFAULT_CAPABILITIES = frozenset(
    {
        "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
        "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
    }
)
# Sysctls with a per-container copy: runc's IPC-namespace list, fs.mqueue.*, and net.* (the
# container's own network namespace). Docker documents the same set for --sysctl.
_IPC_SYSCTLS = frozenset(
    {
        "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
        "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
    }
)
_SYSCTL_NAME = re.compile(r"[a-z0-9_]+(\.[a-zA-Z0-9_*-]+)+")
_BOOL_WORDS = {"1": True, "t": True, "true": True, "0": False, "f": False, "false": False}
_PROFILE_NAME = re.compile(r"[^\s=]+")


@dataclass(frozen=True)
class PrivilegedUse:
    """One widening value in a template: where, what, and the policy name that admits it."""

    path: str
    policy: str
    what: str


@dataclass
class Uses:
    """The privileged uses one service makes, collected while converting it."""

    items: list[PrivilegedUse] = field(default_factory=list)

    def add(self, path: Path, policy: str, what: str) -> None:
        self.items.append(PrivilegedUse(format_path(path), policy, what))


def capability(value: Any) -> str:
    """``net_admin``, ``NET_ADMIN`` or ``CAP_NET_ADMIN`` -> ``CAP_NET_ADMIN``; ``ALL`` stays."""
    name = to_str(value).strip().upper()
    if name == "ALL":
        return name
    bare = name.removeprefix("CAP_")
    if bare not in CAPABILITIES:
        raise ValueError(f"unknown capability {to_str(value)!r}")
    return f"CAP_{bare}"


def is_namespaced_sysctl(name: str) -> bool:
    return name in _IPC_SYSCTLS or name.startswith(("fs.mqueue.", "net."))


def _caps(svc: dict[str, Any], path: Path, spec: ServiceSpec, diag: Diagnostics, uses: Uses) -> None:
    for key in ("cap_add", "cap_drop"):
        out: list[str] = []
        for index, item in enumerate(svc.get(key) or []):
            cap = diag.convert((*path, key, index), capability, item)
            if cap is None:
                continue
            out.append(cap)
            if key == "cap_add" and cap.removeprefix("CAP_") not in DEFAULT_CAPABILITIES:
                uses.add((*path, key, index), "cap_add", f"capability {cap}")
        setattr(spec, key, out)


def _security_opt(item: Any) -> tuple[str, str]:
    """One ``security_opt`` entry -> (the engine's form, "" or the reason it widens)."""
    text = to_str(item).strip()
    if text == "no-new-privileges":
        return text, ""
    name, sep, value = text.partition("=")
    if not sep:  # the older "name:value" form, which the engine still reads
        name, sep, value = text.partition(":")
    if not sep or not value:
        raise ValueError(f"{text!r} must be no-new-privileges or NAME=VALUE")
    if name == "no-new-privileges":
        flag = _BOOL_WORDS.get(value.lower())
        if flag is None:
            raise ValueError(f"no-new-privileges takes true or false, got {value!r}")
        return ("no-new-privileges", "") if flag else ("no-new-privileges=false", "no-new-privileges=false")
    if name == "seccomp":
        if value == "unconfined":
            return "seccomp=unconfined", "seccomp=unconfined"
        if not posixpath.isabs(value):
            raise ValueError(
                f"seccomp takes the absolute path of a JSON profile on the node, or unconfined; got {value!r}"
            )
        return f"seccomp={posixpath.normpath(value)}", ""
    if name == "apparmor":
        if not _PROFILE_NAME.fullmatch(value):
            raise ValueError(f"apparmor takes the name of a profile loaded on the node, got {value!r}")
        return f"apparmor={value}", "apparmor=unconfined" if value == "unconfined" else ""
    if name == "label":
        if value == "disable":
            return "label=disable", "label=disable"
        raise ValueError(
            "SELinux labels other than label=disable are not supported: ccs cannot tell whether a "
            "node enforces SELinux, so the label could be silently ignored"
        )
    if name == "systempaths":
        if value != "unconfined":
            raise ValueError(f"systempaths takes only unconfined, got {value!r}")
        return "systempaths=unconfined", "systempaths=unconfined"
    raise ValueError(f"unknown option {name!r}; use no-new-privileges, seccomp, apparmor, label or systempaths")


def _device(item: Any) -> DeviceMapping:
    if isinstance(item, dict):
        source = to_str(item.get("source"))
        target = to_str(item.get("target")) or source
        perms = to_str(item.get("permissions")) or "rwm"
    else:
        parts = to_str(item).split(":")
        if len(parts) > 3:
            raise ValueError(f"must be HOST_PATH[:CONTAINER_PATH[:PERMISSIONS]], got {item!r}")
        source = parts[0]
        target = parts[1] if len(parts) > 1 and parts[1] else source
        perms = parts[2] if len(parts) > 2 else "rwm"
    if not source.startswith("/"):
        raise ValueError(f"{source!r} is not a device path; CDI device names are not supported")
    if not posixpath.isabs(target):
        raise ValueError(f"the container path {target!r} must be absolute")
    if not perms or set(perms) - set("rwm") or len(set(perms)) != len(perms):
        raise ValueError(f"permissions must be letters of 'rwm', got {perms!r}")
    return DeviceMapping(path_on_host=source, path_in_container=target, permissions=perms)


def _sysctls(value: Any, path: Path, host_network: bool, diag: Diagnostics) -> dict[str, str]:
    entries: list[tuple[Path, str, str]] = []
    if isinstance(value, dict):
        entries = [((*path, k), str(k), to_str(v)) for k, v in value.items()]
    else:
        for index, item in enumerate(value or []):
            name, sep, text = to_str(item).partition("=")
            if not sep:
                diag.error((*path, index), f"must be NAME=VALUE, got {item!r}")
                continue
            entries.append(((*path, index), name.strip(), text.strip()))
    out: dict[str, str] = {}
    for where, name, text in entries:
        if not _SYSCTL_NAME.fullmatch(name):
            diag.error(where, f"{name!r} is not a sysctl name")
        elif not is_namespaced_sysctl(name):
            diag.error(
                where,
                f"{name} is not namespaced per container (only net.*, kernel.msg*, kernel.sem, "
                "kernel.shm*, fs.mqueue.* are): it would set the node's kernel, which the engine "
                "refuses for every container",
            )
        elif host_network and name.startswith("net."):
            diag.error(where, f"{name} would set the node's network stack: the service uses network_mode: host")
        else:
            out[name] = text
    return out


def convert_security(svc: dict[str, Any], path: Path, spec: ServiceSpec, diag: Diagnostics) -> list[PrivilegedUse]:
    """Fill ``spec``'s security keys from ``svc``; return the privileged uses found."""
    uses = Uses()
    _caps(svc, path, spec, diag, uses)
    for index, item in enumerate(svc.get("security_opt") or []):
        converted = diag.convert((*path, "security_opt", index), _security_opt, item)
        if converted is not None:
            spec.security_opt.append(converted[0])
            if converted[1]:
                uses.add((*path, "security_opt", index), "security_opt", converted[1])
    if "privileged" in svc and diag.convert((*path, "privileged"), to_bool, svc["privileged"]):
        spec.privileged = True
        uses.add((*path, "privileged"), "privileged", "privileged: true")
    for index, item in enumerate(svc.get("devices") or []):
        device = diag.convert((*path, "devices", index), _device, item)
        if device is not None:
            spec.devices.append(device)
            uses.add((*path, "devices", index), "devices", f"device {device.path_on_host}")
    for key in ("network_mode", "pid"):
        mode = svc.get(key)
        if mode is None or mode == "":
            continue
        if mode != "host":
            why = "the application's networks" if key == "network_mode" else "its own PID namespace"
            diag.error((*path, key), f"only host is supported (or leave it out for {why}), got {mode!r}")
            continue
        setattr(spec, key, "host")
        uses.add((*path, key), key, f"{key}: host")
    if "sysctls" in svc:
        spec.sysctls = _sysctls(svc["sysctls"], (*path, "sysctls"), spec.network_mode == "host", diag)
    if "oom_score_adj" in svc:
        score = diag.convert(
            (*path, "oom_score_adj"), lambda v: to_int(v, minimum=-1000, maximum=1000), svc["oom_score_adj"]
        )
        if score is not None:
            spec.oom_score_adj = score
            if score < 0:
                uses.add((*path, "oom_score_adj"), "oom_score_adj", f"oom_score_adj {score}")
    return uses.items


def check_host_network(spec: ServiceSpec, svc: dict[str, Any], path: Path, diag: Diagnostics) -> None:
    """A container on the node's network is on no application network: say what cannot work."""
    if spec.network_mode != "host":
        return
    why = "the container uses the node's network (network_mode: host)"
    for key, hint in (
        ("ports", "it listens on the node's addresses directly; remove ports:"),
        ("expose", "remove expose:"),
        ("networks", "it joins no application network; remove networks:"),
    ):
        if key in svc:
            diag.error((*path, key), f"{why}: {hint}")
    if spec.routes:
        diag.error(path, f"{why}: the router reaches containers through published ports; remove its routes")
