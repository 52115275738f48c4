"""The agent's metrics objects: operations counted at the Runtime interface (on FakeRuntime),
Docker API errors by kind, heartbeat age on a driven clock."""

from __future__ import annotations

import docker.errors
import pytest
import requests

from nodeagent.metrics import AgentMetrics
from nodeagent.runtime import FakeRuntime
from nodeagent.runtime.docker_errors import DOCKER_ERROR_KINDS, docker_error_kind
from nodeagent.runtime.metered import MeteredRuntime
from nodeagent.runtime.types import ImageNotFound, Runtime, RuntimeFailure

from .test_agent_helpers import container


def sample(m: AgentMetrics, name: str, **labels: str) -> float:
    return m.registry.get_sample_value(name, labels) or 0.0


async def test_operations_are_counted_by_op_and_outcome() -> None:
    metrics = AgentMetrics()
    runtime: Runtime = MeteredRuntime(FakeRuntime(missing_images=["local/gone:1"]), metrics)
    c = container("c1")
    await runtime.prepare(c)
    docker_id = await runtime.create(c)
    await runtime.start(docker_id)
    await runtime.stop(docker_id, 0)
    await runtime.remove(docker_id, volumes=False)
    with pytest.raises(ImageNotFound):
        await runtime.prepare(container("c2", image="local/gone:1"))
    for op in ("prepare", "create", "start", "stop", "remove"):
        assert sample(metrics, "ccs_agent_container_operations_total", op=op, outcome="ok") == 1, op
        assert sample(metrics, "ccs_agent_container_operation_seconds_count", op=op, outcome="ok") == 1, op
    assert sample(metrics, "ccs_agent_container_operations_total", op="prepare", outcome="error") == 1
    # Reads are not operations.
    await runtime.inspect(docker_id)
    await runtime.list_managed()
    ops = {s.labels["op"] for fam in metrics.registry.collect() for s in fam.samples if "op" in s.labels}
    assert ops == {"prepare", "create", "start", "stop", "remove"}


def _api_error(status: int) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    return docker.errors.APIError("engine said no", response=response)


@pytest.mark.parametrize(("exc", "kind"), [
    (_api_error(404), "not_found"),
    (_api_error(409), "conflict"),
    (_api_error(400), "refused"),
    (_api_error(500), "server_error"),
    (requests.ConnectionError("refused"), "unreachable"),
    (RuntimeFailure("ours"), None),
    (ValueError("a bug"), None),
])
def test_docker_error_kinds(exc: BaseException, kind: str | None) -> None:
    assert docker_error_kind(exc) == kind
    assert kind is None or kind in DOCKER_ERROR_KINDS


def test_heartbeat_age_counts_from_the_last_answer() -> None:
    now = [100.0]
    metrics = AgentMetrics(monotonic=lambda: now[0])
    now[0] = 104.0
    assert sample(metrics, "ccs_agent_heartbeat_age_seconds") == 4.0  # since the start: no answer yet
    metrics.heartbeat(ok=True)
    now[0] = 105.5
    assert sample(metrics, "ccs_agent_heartbeat_age_seconds") == 1.5
    metrics.heartbeat(ok=False)  # a failed one does not make it younger
    now[0] = 107.0
    assert sample(metrics, "ccs_agent_heartbeat_age_seconds") == 3.0
    assert sample(metrics, "ccs_agent_heartbeats_total", outcome="ok") == 1
    assert sample(metrics, "ccs_agent_heartbeats_total", outcome="failed") == 1
