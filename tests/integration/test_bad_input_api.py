"""Regression tests for what the API property tests found (issue 12), one minimal request each.

Each is sent through a real ccs-server on a real etcd (``api_world``) and checked the way the
property test checks every request: never INTERNAL or UNKNOWN, a refusal names its field, a
refused request leaves etcd's revision unchanged, and the server answers afterwards.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator

import pytest
from google.protobuf.message import Message
from grpc import StatusCode

from ccs.v1 import api_pb2
from tests.api_fuzz import SEED_APP, SEED_CLUSTER, SEED_NODE, SEED_TEMPLATE, api_rpcs
from tests.integration.api_world import World, running_world

pytestmark = [pytest.mark.etcd, pytest.mark.slow]
RPC = {rpc.name: rpc for rpc in api_rpcs()}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("bad-input")) as w:
        yield w


def send(world: World, rpc: str, request: Message | bytes) -> tuple[StatusCode, str]:
    raw = request if isinstance(request, bytes) else request.SerializeToString()
    return world.run(world.check(RPC[rpc], raw, repr(request)[:300]))


def refused(world: World, rpc: str, request: Message | bytes, starts: str) -> str:
    code, details = send(world, rpc, request)
    assert code == StatusCode.INVALID_ARGUMENT, (code, details)
    assert details.startswith(starts), details
    return details


def token(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_a_release_name_with_a_unicode_digit_is_refused_not_internal(world: World) -> None:
    # "r²": str.isdigit() is True, int() raises ValueError -> INTERNAL.
    refused(world, "GetRelease", api_pb2.GetReleaseRequest(cluster=SEED_CLUSTER, application=SEED_APP, name="r²"),
            "name: 'r²' is not a release name")


@pytest.mark.parametrize(("revision", "why"), [(10**30, "not a token"), (10**12, "in the future")])
def test_a_page_token_with_an_impossible_revision_is_refused(world: World, revision: int, why: str) -> None:
    # 10**30 overflowed etcd's int64 (INTERNAL); a future revision came back as "etcd is
    # unavailable" (UNAVAILABLE, which clients retry).
    details = refused(world, "ListClusters", api_pb2.ListClustersRequest(
        page_token=token({"r": revision, "k": "/ccs/clusters/"})), "page_token: not a token this server issued")
    assert why in details


def test_a_description_past_its_limit_is_refused_naming_it(world: World) -> None:
    # 1.6 MB passed the API and met etcd's request limit: INVALID_ARGUMENT naming no field.
    refused(world, "CreateCluster", api_pb2.CreateClusterRequest(name="big", description="x" * 1_600_000),
            "description: is 1600000 bytes; the limit is 4096 bytes")


def test_a_huge_invalid_name_gets_its_reason_not_a_transport_error(world: World) -> None:
    # The reason echoed the 1 MiB name: past gRPC's 16 KiB trailer limit -> RESOURCE_EXHAUSTED.
    details = refused(world, "GetCluster", api_pb2.GetClusterRequest(name="x" * (1024 * 1024 + 1)),
                      "name: 'xxxx")
    assert len(details) < 300


@pytest.mark.parametrize("name", ["web\n", "fz\n"])
def test_a_name_with_a_trailing_newline_writes_nothing(world: World, name: str) -> None:
    # It was created: an etcd key and an object whose name ends in a newline.
    refused(world, "CreateCluster", api_pb2.CreateClusterRequest(name=name), "name: ")


@pytest.mark.parametrize(("field", "starts"), [("role", "role: 99 is not a NodeRole"),
                                                ("availability", "availability: 99 is not a NodeAvailability")])
def test_an_undefined_node_enum_is_refused(world: World, field: str, starts: str) -> None:
    # role 99: NodeRole.Name() raised ValueError -> INTERNAL; availability 99 was stored.
    request = api_pb2.UpdateNodeRequest(cluster=SEED_CLUSTER, name=SEED_NODE)
    setattr(request, field, 99)
    refused(world, "UpdateNode", request, starts)


def test_invalid_utf8_is_invalid_argument_naming_the_field_and_unauthenticated_without_a_token(
    world: World,
) -> None:
    # protobuf's DecodeError became UNKNOWN "Unexpected <class ...>".
    raw = api_pb2.GetClusterRequest(name="QQQQ").SerializeToString().replace(b"QQQQ", b"\xff\xfe\xfd\xfc")
    refused(world, "GetCluster", raw, "name: is not valid UTF-8")
    refused(world, "GetCluster", b"\xff\xff\xff", "request: is not a valid ccs.v1.GetClusterRequest message")
    code, _ = world.run(world.call(RPC["GetCluster"], raw, metadata=()))
    assert code == StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    ("template", "starts"),
    [
        (SEED_TEMPLATE + '    environment: {A: "x\\0y"}\n', "services.web.environment.A: contains a NUL byte"),
        # protobuf's ParseError on the lone surrogate escaped the parser: INTERNAL.
        (SEED_TEMPLATE + '    labels: {a: "\\ud800"}\n', "services.web.labels.a: contains a lone surrogate"),
    ],
)
def test_nul_and_lone_surrogates_in_a_template_are_refused(world: World, template: str, starts: str) -> None:
    refused(world, "CreateApplication", api_pb2.CreateApplicationRequest(
        cluster=SEED_CLUSTER, name="texts", template=template), starts)


def test_nul_in_a_deploy_time_value_is_refused(world: World) -> None:
    refused(world, "CreateApplication", api_pb2.CreateApplicationRequest(
        cluster=SEED_CLUSTER, name="texts", template=SEED_TEMPLATE, env={"TAG": "v1\0"}), "env.TAG: contains a NUL")


def test_an_ab_header_with_a_newline_is_refused_before_it_reaches_the_routers(world: World) -> None:
    # It was accepted into the release, and every router's HAProxy configuration broke on it.
    refused(world, "UpdateApplication", api_pb2.UpdateApplicationRequest(
        cluster=SEED_CLUSTER, name=SEED_APP, template=SEED_TEMPLATE.replace("busybox:1", "busybox:3"),
        strategy="canary", match_header="X-Canary\n", match_value="yes"), "match_header: ")


def test_a_logs_since_that_is_not_a_time_is_refused(world: World) -> None:
    for since in (math.nan, -1.0, math.inf):
        refused(world, "Logs", api_pb2.LogsRequest(cluster=SEED_CLUSTER, application=SEED_APP, service="web",
                                                   since=since), "since: ")


def test_invalid_utf8_from_a_scoped_token_is_named_not_mistaken_for_a_scope_breach(world: World) -> None:
    """A scoped deployer's request that does not decode has no cluster to check the scope
    against: it is the decoding refusal (the field named), not PERMISSION_DENIED."""
    async def secret() -> str:
        assert world.channel is not None
        made = await world.channel.unary_unary(
            "/ccs.v1.TokenService/CreateToken", response_deserializer=api_pb2.CreateTokenResponse.FromString,
        )(api_pb2.CreateTokenRequest(name="scoped-deployer", role="deployer", clusters=[SEED_CLUSTER])
          .SerializeToString(), metadata=world.md)
        return str(made.secret)

    bearer = (("authorization", f"Bearer {world.run(secret())}"),)
    raw = api_pb2.UpdateApplicationRequest(cluster=SEED_CLUSTER, name="QQQQ").SerializeToString().replace(
        b"QQQQ", b"\xff\xfe\xfd\xfc")
    code, details = world.run(world.call(RPC["UpdateApplication"], raw, metadata=bearer))
    assert code == StatusCode.INVALID_ARGUMENT and details.startswith("name: is not valid UTF-8"), (code, details)


def test_a_refusal_cut_to_its_limit_always_arrives_with_its_reason(world: World) -> None:
    # A status message travels in a trailer; gRPC refuses trailers past 8 KiB at random (3 in 100
    # for the 8 KiB cut this server used to make), and the caller then saw RESOURCE_EXHAUSTED
    # "received metadata size exceeds soft limit" instead of the reason. 300 refused services
    # make a message far past the cut; every one of 200 sends must arrive whole.
    template = "services:\n" + "".join(f"  s{i}:\n    image: [1]\n" for i in range(300))
    request = api_pb2.CreateApplicationRequest(cluster=SEED_CLUSTER, name="cut", template=template)
    for _ in range(200):
        details = refused(world, "CreateApplication", request, "services.s")
        assert details.endswith("cut)") and len(details.encode()) <= 4 * 1024, details[-200:]
