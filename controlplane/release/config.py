"""The effective rolling-update settings of a service: Swarm's defaults, the service's
``update_config`` (or ``rollback_config`` when rolling back), then the release's overrides.

Proto3 cannot tell an explicit 0 from "unset", so 0 means "the default" everywhere, as in the
service planner's restart policy. ``parallelism`` 0 therefore means 1, not "all at once" as in
Swarm; ask for a large number to update everything in one batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from ccs.v1 import resources_pb2 as pb

from .errors import ReleaseError

Order = Literal["stop-first", "start-first"]
FailureAction = Literal["pause", "continue", "rollback"]
ORDERS: tuple[Order, ...] = ("stop-first", "start-first")
FAILURE_ACTIONS: tuple[FailureAction, ...] = ("pause", "continue", "rollback")
DEFAULT_MONITOR = timedelta(seconds=5)


@dataclass(frozen=True)
class RollingConfig:
    """Defaults are Swarm's: one at a time, stop-first, 5 s monitor, pause on any failure."""

    parallelism: int = 1
    delay: timedelta = timedelta(0)
    order: Order = "stop-first"
    monitor: timedelta = DEFAULT_MONITOR
    max_failure_ratio: float = 0.0
    failure_action: FailureAction = "pause"


def rolling_config(
    service: str, spec: pb.ServiceSpec, override: pb.UpdateConfig, *, rollback: bool = False
) -> RollingConfig:
    """Merge Swarm defaults <- the service's config <- the release's override (set fields win).

    Rolling back uses the service's ``rollback_config`` when it sets anything, else its
    ``update_config``; a rollback never acts on failures (it always continues).
    """
    base = spec.rollback_config if rollback and spec.HasField("rollback_config") else spec.update_config
    cfg = RollingConfig()
    for layer, where in ((base, f"services.{service}.update_config"), (override, "release.rolling")):
        cfg = _overlay(cfg, layer, where)
    if rollback:
        cfg = RollingConfig(cfg.parallelism, cfg.delay, cfg.order, cfg.monitor, 0.0, "continue")
    return cfg


def _overlay(cfg: RollingConfig, uc: pb.UpdateConfig, where: str) -> RollingConfig:
    if uc.order and uc.order not in ORDERS:
        raise ReleaseError(f"{where}.order: {uc.order!r} is not one of {', '.join(ORDERS)}")
    if uc.failure_action and uc.failure_action not in FAILURE_ACTIONS:
        raise ReleaseError(
            f"{where}.failure_action: {uc.failure_action!r} is not one of {', '.join(FAILURE_ACTIONS)}"
        )
    if uc.delay_ms < 0 or uc.monitor_ms < 0:
        raise ReleaseError(f"{where}: delay and monitor must not be negative")
    if not 0.0 <= uc.max_failure_ratio <= 1.0:
        raise ReleaseError(f"{where}.max_failure_ratio: {uc.max_failure_ratio} is not between 0 and 1")
    order: Order = cfg.order
    for o in ORDERS:
        if uc.order == o:
            order = o
    action: FailureAction = cfg.failure_action
    for a in FAILURE_ACTIONS:
        if uc.failure_action == a:
            action = a
    return RollingConfig(
        parallelism=uc.parallelism or cfg.parallelism,
        delay=timedelta(milliseconds=uc.delay_ms) if uc.delay_ms else cfg.delay,
        order=order,
        monitor=timedelta(milliseconds=uc.monitor_ms) if uc.monitor_ms else cfg.monitor,
        max_failure_ratio=uc.max_failure_ratio or cfg.max_failure_ratio,
        failure_action=action,
    )
