"""Docker inspect / event payloads -> ccs observations: pure functions, tested with tables.

The state mapping follows Swarm's task states: a container with a healthcheck is STARTING
until Docker calls it healthy, so a release can wait for HEALTHY; a container without one is
RUNNING as soon as its process runs. A process that ended by itself is EXITED with its code
(the control plane decides whether that is a failure, given the restart policy), while
anything that never ran properly (engine start error, OOM kill, dead container) is FAILED with
a reason a user can act on. The runtime cannot tell "stopped by the agent" from "exited": the
agent, which knows what it asked for, reports STOPPED.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from . import naming
from .types import EventKind, Observed, PortBinding, Reason, RuntimeEvent, State

_HEALTH_STATE = {
    "healthy": State.CONTAINER_STATE_HEALTHY,
    "unhealthy": State.CONTAINER_STATE_UNHEALTHY,
    "starting": State.CONTAINER_STATE_STARTING,
}


def map_state(state: Mapping[str, Any]) -> tuple[int, int, str]:
    """Docker's `State` object -> (ContainerState, exit code, message)."""
    status = state.get("Status", "")
    exit_code = int(state.get("ExitCode") or 0)
    error = str(state.get("Error") or "")
    health = str((state.get("Health") or {}).get("Status", ""))
    if status in ("running", "paused", "restarting"):
        message = "" if status == "running" else status
        return _HEALTH_STATE.get(health, State.CONTAINER_STATE_RUNNING), 0, message
    if status == "created":
        if error:
            return State.CONTAINER_STATE_FAILED, exit_code, f"start failed: {error}"
        return State.CONTAINER_STATE_STARTING, 0, "created"
    if status == "exited":
        if state.get("OOMKilled"):
            return (
                State.CONTAINER_STATE_FAILED,
                exit_code,
                f"out of memory: killed by the kernel (exit code {exit_code})",
            )
        if error:
            return State.CONTAINER_STATE_FAILED, exit_code, f"start failed: {error}"
        return State.CONTAINER_STATE_EXITED, exit_code, f"exited with code {exit_code}"
    if status == "removing":
        return State.CONTAINER_STATE_EXITED, exit_code, "removing"
    if status == "dead":
        return State.CONTAINER_STATE_FAILED, exit_code, f"dead: {error or 'removal failed'}"
    return State.CONTAINER_STATE_FAILED, exit_code, f"unknown engine state {status!r}"


def parse_time(value: str | None) -> float | None:
    """Docker RFC 3339 timestamps ("0001-01-01..." meaning never) -> unix seconds."""
    if not value or value.startswith("0001-01-01"):
        return None
    return datetime.fromisoformat(value).timestamp()


def addresses(networks: Mapping[str, str], labels: Mapping[str, str]) -> dict[str, str]:
    """The container's IPv4 address on each of its application's networks, keyed by the
    Compose network name (``{"default": "10.128.0.18", "back": "10.128.0.34"}``).

    ``networks`` is the engine's view (engine network name -> address, "" while the container
    is not attached, e.g. stopped); ``labels`` carry the container's cluster and application,
    which name its networks (naming.compose_network). Networks that are not the application's
    (a user's `docker network connect`) are not reported: no resolver may answer them.
    """
    app = labels.get(naming.APP, "")
    if not app:
        return {}
    cluster = labels.get(naming.CLUSTER, "")
    out: dict[str, str] = {}
    for name, ip in sorted(networks.items()):
        compose = naming.compose_network(cluster, app, name) if ip else None
        if compose is not None:
            out[compose] = ip
    return out


DEFAULT_SHELL = ("/bin/sh", "-c")  # the engine's, when the container's config names none


def health_command(config: Mapping[str, Any]) -> tuple[tuple[str, ...], float]:
    """A container's effective ``Config.Healthcheck`` (the service's, or the image's own, as the
    engine merged them at create) -> (argv to exec, timeout seconds; 0 when unset).

    As the engine runs it: ``CMD`` execs the rest as given; ``CMD-SHELL`` runs the string with
    the container's ``Config.Shell`` (``/bin/sh -c`` by default). ``NONE``, an empty test or no
    health check give ``()``: nothing to run.
    """
    check = config.get("Healthcheck") or {}
    test = [str(t) for t in (check.get("Test") or ())]
    timeout = int(check.get("Timeout") or 0) / 1e9
    if len(test) >= 2 and test[0] == "CMD":
        return tuple(test[1:]), timeout
    if len(test) >= 2 and test[0] == "CMD-SHELL":
        shell = tuple(str(s) for s in (config.get("Shell") or ())) or DEFAULT_SHELL
        return (*shell, " ".join(test[1:])), timeout
    return (), timeout


def observed_from_inspect(attrs: Mapping[str, Any]) -> Observed:
    """A `docker inspect` document -> Observed."""
    state = attrs.get("State") or {}
    config = attrs.get("Config") or {}
    settings = attrs.get("NetworkSettings") or {}
    ccs_state, exit_code, message = map_state(state)
    start_error = state.get("Status") in ("created", "exited") and bool(state.get("Error"))
    networks = {
        name: str(net.get("IPAddress") or "") for name, net in (settings.get("Networks") or {}).items()
    }
    labels = dict(config.get("Labels") or {})
    health_cmd, health_timeout = health_command(config)
    ports: list[PortBinding] = []
    for key, binds in sorted((settings.get("Ports") or {}).items()):
        target, _, protocol = key.partition("/")
        if not binds:
            ports.append(PortBinding(int(target), protocol or "tcp"))
        for b in binds or ():
            ports.append(PortBinding(int(target), protocol or "tcp", b.get("HostIp", ""), int(b["HostPort"])))
    return Observed(
        docker_id=str(attrs["Id"]),
        name=str(attrs.get("Name", "")).lstrip("/"),
        labels=labels,
        image=str(config.get("Image", "")),
        state=ccs_state,
        exit_code=exit_code,
        message=message,
        health=str((state.get("Health") or {}).get("Status", "")),
        started_at=parse_time(state.get("StartedAt")),
        finished_at=parse_time(state.get("FinishedAt")),
        oom_killed=bool(state.get("OOMKilled")),
        networks=networks,
        addresses=addresses(networks, labels),
        ports=tuple(ports),
        failure_reason=Reason.FAILURE_REASON_START_FAILED if start_error else 0,
        pid=int(state.get("Pid") or 0),
        health_cmd=health_cmd,
        health_timeout=health_timeout,
    )


def event_from_docker(raw: Mapping[str, Any]) -> RuntimeEvent | None:
    """A decoded Docker event -> RuntimeEvent, or None for actions the agent ignores.

    `labels` are the event's actor attributes: the container's labels plus Docker's own
    `name`, `image` and (on die) `exitCode`.
    """
    if raw.get("Type") != "container":
        return None
    action = str(raw.get("Action", ""))
    verb, _, detail = action.partition(":")
    try:
        kind = EventKind(verb)
    except ValueError:
        return None
    actor = raw.get("Actor") or {}
    attributes: dict[str, str] = dict(actor.get("Attributes") or {})
    exit_code = int(attributes["exitCode"]) if kind is EventKind.DIE and "exitCode" in attributes else None
    time_nano = raw.get("timeNano")
    when = time_nano / 1e9 if time_nano else float(raw.get("time", 0))
    return RuntimeEvent(
        kind=kind,
        docker_id=str(actor.get("ID") or raw.get("id", "")),
        labels=attributes,
        time=when,
        exit_code=exit_code,
        health=detail.strip() if kind is EventKind.HEALTH_STATUS else "",
    )
