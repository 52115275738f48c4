"""Property: every RPC of the user API answers any request, or refuses it cleanly (issue 12).

Requests are drawn from the message descriptors (``tests/api_fuzz.py``) for every method of
``ccs/v1/api_pb2`` and sent as raw bytes through a generic call to a real ccs-server on a real
etcd of its own (no reconcilers: only the API writes, so etcd's revision moves only when a
request is accepted). For each request:

- the status is never ``INTERNAL`` or ``UNKNOWN`` (nor ``UNAVAILABLE``: etcd is up), and only
  ``RESOURCE_EXHAUSTED`` for a request past the server's receive limit;
- a refused request leaves the etcd revision unchanged (read with an etcd client): nothing
  half written;
- an ``INVALID_ARGUMENT`` names a field path of the request (or of the template it carries);
- the server still answers its health check afterwards.

The objects the requests name (cluster ``fz``, node ``n1``, application ``app`` with a canary
release, service ``web``) are seeded first and seeded again whenever a request removed them.
Examples are bounded per RPC and derandomized, so a failure reproduces in CI.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google.protobuf.message import Message
from grpc import StatusCode
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.api_fuzz import Rpc, api_rpcs, messages, string_paths, with_invalid_utf8
from tests.integration.api_world import World, running_world

pytestmark = [pytest.mark.etcd, pytest.mark.slow, pytest.mark.timeout(900)]

RPCS = api_rpcs()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("api-fuzz")) as w:
        yield w


class Drawn:
    """A drawn request that prints short (hypothesis prints every draw of a failing example)."""

    def __init__(self, message: Message) -> None:
        self.message = message

    def __repr__(self) -> str:
        return _shown(self.message)


def _shown(message: Message) -> str:
    text = repr(message)
    return text if len(text) < 2000 else f"{text[:1000]} ...({len(text)} characters)... {text[-500:]}"


@pytest.mark.parametrize("rpc", RPCS, ids=lambda r: r.name)
@settings(max_examples=50, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(data=st.data())
def test_any_request_is_answered_or_refused_naming_a_field_with_nothing_written(
    world: World, rpc: Rpc, data: st.DataObject
) -> None:
    request = data.draw(messages(rpc.input, seeds=rpc.seeds()).map(Drawn), label="request").message
    code, details = world.run(world.check(rpc, request.SerializeToString(), _shown(request)))
    event(code.name if code == StatusCode.OK else f"{code.name}: {details[:30]}")  # --hypothesis-show-statistics


INVALID_UTF8_CASES = [(rpc, path, steps) for rpc in RPCS for path, steps in string_paths(rpc.input)]


@pytest.mark.parametrize(("rpc", "path", "steps"), INVALID_UTF8_CASES,
                         ids=[f"{r.name}-{p}" for r, p, _ in INVALID_UTF8_CASES])
def test_invalid_utf8_in_any_string_field_is_refused_naming_it(
    world: World, rpc: Rpc, path: str, steps: list[str]
) -> None:
    raw = with_invalid_utf8(rpc.input, steps)
    code, details = world.run(world.check(rpc, raw, f"{path}=<invalid UTF-8>"))
    assert code == StatusCode.INVALID_ARGUMENT, (code, details)
    assert details.startswith(f"{path}: "), details
    assert "UTF-8" in details, details
