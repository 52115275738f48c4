"""Swarm ``deploy:`` keys of a service, converted into the ServiceSpec model.

``replicas``, ``mode`` and ``update_config.parallelism`` are recorded as claims (see claims.py)
because aliases such as ``aliyun.scale`` may also set them; everything else is set directly.
"""

from __future__ import annotations

from typing import Any

from controlplane.compose.claims import Claims
from controlplane.compose.errors import Diagnostics, Path
from controlplane.compose.model import (
    Placement,
    ResourceAmounts,
    Resources,
    RestartPolicy,
    ServiceSpec,
    UpdateConfig,
)
from controlplane.compose.units import duration_ms, size_bytes, to_float, to_int

MAX_REPLICAS = 1000
_MAX_PARALLELISM = 1000


def _amounts(value: dict[str, Any], path: Path, diag: Diagnostics) -> ResourceAmounts:
    amounts = ResourceAmounts()
    if "cpus" in value:
        amounts.cpus = diag.convert((*path, "cpus"), to_float, value["cpus"])
    if "memory" in value:
        amounts.memory_bytes = diag.convert((*path, "memory"), size_bytes, value["memory"])
    if "pids" in value:
        amounts.pids = diag.convert((*path, "pids"), to_int, value["pids"])
    return amounts


def _update(value: dict[str, Any], path: Path, diag: Diagnostics) -> UpdateConfig:
    config = UpdateConfig()
    if "parallelism" in value:
        where = (*path, "parallelism")
        config.parallelism = diag.convert(
            where, lambda v: to_int(v, maximum=_MAX_PARALLELISM), value["parallelism"]
        )
    for key in ("delay", "monitor"):
        if key in value:
            setattr(config, f"{key}_ms", diag.convert((*path, key), duration_ms, value[key]))
    if "failure_action" in value:
        action = value["failure_action"]
        allowed = ("pause", "continue", "rollback") if path[-1] == "update_config" else ("pause", "continue")
        if action not in allowed:
            diag.error((*path, "failure_action"), f"must be one of: {', '.join(allowed)}")
        else:
            config.failure_action = action
    if "max_failure_ratio" in value:
        where = (*path, "max_failure_ratio")
        ratio = lambda v: to_float(v, maximum=1.0)  # noqa: E731
        config.max_failure_ratio = diag.convert(where, ratio, value["max_failure_ratio"])
    if "order" in value:
        config.order = value["order"]
    return config


def _restart_policy(value: dict[str, Any], path: Path, diag: Diagnostics) -> RestartPolicy:
    policy = RestartPolicy()
    condition = value.get("condition")
    if condition is not None:
        if condition not in ("none", "on-failure", "any"):
            diag.error((*path, "condition"), "must be one of: none, on-failure, any")
        else:
            policy.condition = condition
    for key in ("delay", "window"):
        if key in value:
            setattr(policy, f"{key}_ms", diag.convert((*path, key), duration_ms, value[key]))
    if "max_attempts" in value:
        policy.max_attempts = diag.convert((*path, "max_attempts"), to_int, value["max_attempts"])
    return policy


def _placement(value: dict[str, Any], path: Path, diag: Diagnostics) -> Placement:
    placement = Placement(constraints=[str(c) for c in value.get("constraints") or []])
    for index, pref in enumerate(value.get("preferences") or []):
        spread = pref.get("spread") if isinstance(pref, dict) else None
        if not spread:
            diag.error((*path, "preferences", index), "only 'spread: node.labels.NAME' is supported")
            continue
        placement.spread.append(str(spread))
    if "max_replicas_per_node" in value:
        where = (*path, "max_replicas_per_node")
        placement.max_replicas_per_node = diag.convert(where, to_int, value["max_replicas_per_node"])
    return placement


def apply_deploy(
    spec: ServiceSpec, svc: dict[str, Any], path: Path, diag: Diagnostics, claims: Claims
) -> None:
    """Fill ``spec`` from ``deploy:`` (and the legacy ``scale:``), recording claims."""
    replicas = lambda v: to_int(v, maximum=MAX_REPLICAS)  # noqa: E731
    if "scale" in svc:
        scale = diag.convert((*path, "scale"), replicas, svc["scale"])
        if scale is not None:
            claims.add("replicas", (*path, "scale"), scale)
    deploy = svc.get("deploy") or {}
    where: Path = (*path, "deploy")
    if "mode" in deploy:
        mode = deploy["mode"]
        if mode not in ("replicated", "global"):
            diag.error((*where, "mode"), f"must be replicated or global, got {mode!r}")
        else:
            claims.add("mode", (*where, "mode"), mode)
    if "replicas" in deploy:
        count = diag.convert((*where, "replicas"), replicas, deploy["replicas"])
        if count is not None:
            claims.add("replicas", (*where, "replicas"), count)
    if isinstance(deploy.get("placement"), dict):
        spec.placement = _placement(deploy["placement"], (*where, "placement"), diag)
    resources = deploy.get("resources")
    if isinstance(resources, dict):
        spec.resources = Resources()
        for key in ("limits", "reservations"):
            if isinstance(resources.get(key), dict):
                amounts = _amounts(resources[key], (*where, "resources", key), diag)
                setattr(spec.resources, key, amounts)
    if isinstance(deploy.get("restart_policy"), dict):
        policy = _restart_policy(deploy["restart_policy"], (*where, "restart_policy"), diag)
        spec.restart_policy = policy
    for key in ("update_config", "rollback_config"):
        if isinstance(deploy.get(key), dict):
            config = _update(deploy[key], (*where, key), diag)
            if key == "update_config" and config.parallelism is not None:
                claims.add("parallelism", (*where, key, "parallelism"), config.parallelism)
            setattr(spec, key, config)
