"""Docker inspect documents and events -> ccs observations."""

from __future__ import annotations

from typing import Any

import pytest

from nodeagent.runtime import EventKind, PortBinding, State
from nodeagent.runtime.observe import event_from_docker, health_command, map_state, observed_from_inspect, parse_time

S = State


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"Status": "running"}, (S.CONTAINER_STATE_RUNNING, 0, "")),
        ({"Status": "running", "Health": {"Status": "starting"}}, (S.CONTAINER_STATE_STARTING, 0, "")),
        ({"Status": "running", "Health": {"Status": "healthy"}}, (S.CONTAINER_STATE_HEALTHY, 0, "")),
        ({"Status": "running", "Health": {"Status": "unhealthy"}}, (S.CONTAINER_STATE_UNHEALTHY, 0, "")),
        ({"Status": "paused"}, (S.CONTAINER_STATE_RUNNING, 0, "paused")),
        ({"Status": "created"}, (S.CONTAINER_STATE_STARTING, 0, "created")),
        (
            {"Status": "created", "ExitCode": 127, "Error": 'exec: "/nope": no such file'},
            (S.CONTAINER_STATE_FAILED, 127, 'start failed: exec: "/nope": no such file'),
        ),
        ({"Status": "exited", "ExitCode": 0}, (S.CONTAINER_STATE_EXITED, 0, "exited with code 0")),
        ({"Status": "exited", "ExitCode": 3}, (S.CONTAINER_STATE_EXITED, 3, "exited with code 3")),
        (
            {"Status": "exited", "ExitCode": 137, "OOMKilled": True},
            (S.CONTAINER_STATE_FAILED, 137, "out of memory: killed by the kernel (exit code 137)"),
        ),
        ({"Status": "removing", "ExitCode": 1}, (S.CONTAINER_STATE_EXITED, 1, "removing")),
        ({"Status": "dead"}, (S.CONTAINER_STATE_FAILED, 0, "dead: removal failed")),
        ({"Status": "weird"}, (S.CONTAINER_STATE_FAILED, 0, "unknown engine state 'weird'")),
    ],
)
def test_map_state(state: dict[str, Any], expected: tuple[int, int, str]) -> None:
    assert map_state(state) == expected


def test_parse_time() -> None:
    assert parse_time("0001-01-01T00:00:00Z") is None
    assert parse_time("") is None
    assert parse_time("2024-01-02T03:04:05.5Z") == pytest.approx(1704164645.5)
    assert parse_time("2024-01-02T03:04:05.123456789Z") == pytest.approx(1704164645.123456)


def test_observed_from_inspect() -> None:
    attrs = {
        "Id": "abc123",
        "Name": "/ccs-shop-web-1-xyz",
        "Config": {"Image": "local/webapp:v1", "Labels": {"ccs.container-id": "c1", "ccs.generation": "5"}},
        "State": {
            "Status": "running",
            "StartedAt": "2024-01-02T03:04:05Z",
            "FinishedAt": "0001-01-01T00:00:00Z",
            "Health": {"Status": "healthy"},
        },
        "NetworkSettings": {
            "Networks": {"ccs-prod-shop": {"IPAddress": "172.20.0.2"}},
            "Ports": {
                "8080/tcp": [
                    {"HostIp": "0.0.0.0", "HostPort": "32768"},
                    {"HostIp": "::", "HostPort": "32768"},
                ],
                "9000/tcp": None,
            },
        },
    }
    o = observed_from_inspect(attrs)
    assert (o.docker_id, o.name, o.image) == ("abc123", "ccs-shop-web-1-xyz", "local/webapp:v1")
    assert (o.state, o.health, o.container_id, o.generation, o.app_revision) == (
        S.CONTAINER_STATE_HEALTHY,
        "healthy",
        "c1",
        5,
        0,
    )
    assert o.started_at == pytest.approx(1704164645.0) and o.finished_at is None
    assert o.networks == {"ccs-prod-shop": "172.20.0.2"}
    assert list(o.ports) == [
        PortBinding(8080, "tcp", "0.0.0.0", 32768),
        PortBinding(8080, "tcp", "::", 32768),
        PortBinding(9000, "tcp"),
    ]


def _event(action: str, **attributes: str) -> dict[str, Any]:
    return {
        "Type": "container",
        "Action": action,
        "Actor": {"ID": "abc", "Attributes": {"ccs.container-id": "c1", **attributes}},
        "time": 1700000000,
        "timeNano": 1700000000_500000000,
    }


def test_events() -> None:
    die = event_from_docker(_event("die", exitCode="137"))
    assert die is not None
    assert (die.kind, die.docker_id, die.exit_code, die.container_id) == (EventKind.DIE, "abc", 137, "c1")
    assert die.time == pytest.approx(1700000000.5)
    health = event_from_docker(_event("health_status: unhealthy"))
    assert health is not None and (health.kind, health.health) == (EventKind.HEALTH_STATUS, "unhealthy")
    for kind in ("start", "oom", "destroy"):
        event = event_from_docker(_event(kind))
        assert event is not None and event.kind is EventKind(kind) and event.exit_code is None


@pytest.mark.parametrize("action", ["exec_start: sh -c true", "attach", "create", "kill"])
def test_ignored_events(action: str) -> None:
    assert event_from_docker(_event(action)) is None
    assert event_from_docker({**_event("start"), "Type": "network"}) is None


@pytest.mark.parametrize(("state", "reason"), [
    ({"Status": "created", "Error": 'exec: "/nope": no such file'}, "FAILURE_REASON_START_FAILED"),
    ({"Status": "exited", "ExitCode": 127, "Error": "oci runtime error"}, "FAILURE_REASON_START_FAILED"),
    ({"Status": "exited", "ExitCode": 1}, "FAILURE_REASON_UNSPECIFIED"),  # the restart policy decides
    ({"Status": "exited", "ExitCode": 137, "OOMKilled": True}, "FAILURE_REASON_UNSPECIFIED"),
    ({"Status": "running"}, "FAILURE_REASON_UNSPECIFIED"),
])
def test_a_container_the_engine_could_not_start_carries_the_reason_code(state: dict[str, Any], reason: str) -> None:
    from ccs.v1 import resources_pb2 as pb

    o = observed_from_inspect({"Id": "abc", "State": state, "Config": {}})
    assert pb.FailureReason.Name(o.failure_reason) == reason


def test_addresses_are_reported_under_the_compose_network_name() -> None:
    """The app bridge's address is reported as "default" (the template's name for it, which
    the network map and the resolvers use); other networks and detached ones are not."""
    labels = {"ccs.cluster": "prod", "ccs.app": "shop", "ccs.container-id": "c1"}
    attrs = {
        "Id": "abc",
        "Config": {"Labels": labels},
        "State": {"Status": "running"},
        "NetworkSettings": {"Networks": {
            "ccs-prod-shop": {"IPAddress": "10.128.0.18"},
            "bridge": {"IPAddress": "172.17.0.4"},  # a user's `docker network connect`
            "ccs-prod-other": {"IPAddress": "10.128.0.34"},  # another application's bridge
            "ccs-prod-shop.1_back": {"IPAddress": "10.128.0.50"},  # its Compose network "back", 2nd block
            "ccs-prod-shop_front": {"IPAddress": ""},  # attached, no address yet
        }},
    }
    o = observed_from_inspect(attrs)
    assert o.addresses == {"default": "10.128.0.18", "back": "10.128.0.50"}
    stopped = {**attrs, "State": {"Status": "exited"},
               "NetworkSettings": {"Networks": {"ccs-prod-shop": {"IPAddress": ""}}}}
    assert observed_from_inspect(stopped).addresses == {}
    unmanaged = {**attrs, "Config": {"Labels": {}}}
    assert observed_from_inspect(unmanaged).addresses == {}


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, ((), 0.0)),
        ({"Healthcheck": {"Test": ["NONE"]}}, ((), 0.0)),
        ({"Healthcheck": {"Test": ["CMD", "curl", "-f", "http://x/"], "Timeout": 2_000_000_000}},
         (("curl", "-f", "http://x/"), 2.0)),
        ({"Healthcheck": {"Test": ["CMD-SHELL", "test -f /tmp/ready"]}}, (("/bin/sh", "-c", "test -f /tmp/ready"), 0.0)),
        ({"Healthcheck": {"Test": ["CMD-SHELL", "exit 0"]}, "Shell": ["/bin/bash", "-ec"]},
         (("/bin/bash", "-ec", "exit 0"), 0.0)),
        ({"Healthcheck": {"Interval": 1_000_000_000}}, ((), 0.0)),  # timings only: nothing to run
    ],
    ids=["none", "NONE", "CMD", "CMD-SHELL", "CMD-SHELL-shell", "timings-only"],
)
def test_health_command_runs_what_the_engine_runs(
    config: dict[str, Any], expected: tuple[tuple[str, ...], float]
) -> None:
    assert health_command(config) == expected
