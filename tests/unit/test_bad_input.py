"""Regression tests for the bad inputs the fuzzing of issue 12 found, each its minimal example.

Pure parts only (the parser, the name rules, the request checks, the wire walker, page tokens);
what needs a server is in ``tests/integration/test_bad_input_api.py``.
"""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace
from typing import cast

import grpc
import pytest

from ccs.v1 import api_pb2
from controlplane.api.release_options import check_release_options
from controlplane.api.template_parse import MAX_ENV_BYTES, check_inputs
from controlplane.compose import TemplateError, parse_template
from controlplane.grpc_errors import InvalidArgument, bounded, wire_size
from controlplane.names import check_labels, check_name, check_text
from controlplane.release import ReleaseOptions
from controlplane.request_decoding import RequestDecodingInterceptor, Undecodable, bad_utf8_path, describe
from controlplane.store.etcd import KV
from controlplane.store.reads import MAX_PAGE_BYTES, BadPageToken, _decode_token, _within_bytes

WEB = "services:\n  web:\n    image: nginx\n"


def template_errors(text: str, env: dict[str, str] | None = None, files: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(TemplateError) as info:
        parse_template(text, env=env or {}, files=files or {}, app_name="app")
    return [str(e) for e in info.value.errors]


# ---------------------------------------------------------------- names and text


@pytest.mark.parametrize("name", ["web\n", "web\r\n"])
def test_a_name_with_a_trailing_newline_is_refused(name: str) -> None:
    # re.match with "$" matched before a final newline: "web\n" became a cluster.
    with pytest.raises(InvalidArgument, match=r"^name: 'web"):
        check_name("name", name)


def test_a_refused_huge_name_is_quoted_short() -> None:
    # Echoing a 1 MiB name made the status message larger than gRPC carries (16 KiB trailers).
    with pytest.raises(InvalidArgument) as info:
        check_name("cluster", "x" * (1024 * 1024 + 1))
    assert len(str(info.value)) < 300 and "(1048577 characters)" in str(info.value)


def test_a_label_key_with_a_trailing_newline_is_refused_and_a_label_value_with_nul() -> None:
    with pytest.raises(InvalidArgument, match=r"^labels\['team\\n'\]: invalid label key"):
        check_labels("labels", {"team\n": "a"})
    with pytest.raises(InvalidArgument, match=r"^labels\.team: contains a NUL byte"):
        check_labels("labels", {"team": "a\0b"})


def test_free_text_is_bounded_in_bytes_and_refuses_nul() -> None:
    with pytest.raises(InvalidArgument, match=r"^description: is 4097 bytes; the limit is 4096 bytes"):
        check_text("description", "é" * 2048 + "x", 4096)
    with pytest.raises(InvalidArgument, match=r"^version: contains a NUL byte"):
        check_text("version", "v1\0", 256)


def test_status_messages_are_cut_below_the_trailer_limit() -> None:
    cut = bounded("é" * 10_000)
    assert len(cut.encode()) <= 4 * 1024 and cut.endswith("(20000 bytes in all, cut)")
    # Measured as gRPC sends it: non-ASCII bytes are percent-encoded (3 bytes each), so 4 KiB
    # of "é" would be 12 KiB of trailer, past the 8 KiB at which gRPC starts refusing at random.
    assert wire_size(cut.encode()) <= 4 * 1024
    assert wire_size("é%\n".encode()) == 12
    assert bounded("short") == "short"


# ---------------------------------------------------------------- request checks


def test_ab_match_header_with_a_trailing_newline_is_refused_by_the_api() -> None:
    # It went into every router's HAProxy configuration, splitting the line.
    options = ReleaseOptions(strategy="canary", match_header="X-Canary\n", match_value="yes")
    with pytest.raises(InvalidArgument, match=r"^match_header: 'X-Canary\\n' is not an HTTP header"):
        check_release_options(options)
    options = ReleaseOptions(strategy="canary", match_cookie="c", match_value="a b")
    with pytest.raises(InvalidArgument, match=r"^match_value: 'a b'"):
        check_release_options(options)


def test_env_values_with_nul_and_env_past_1_mib_are_refused() -> None:
    with pytest.raises(InvalidArgument, match=r"^env\.TAG: contains a NUL byte"):
        check_inputs(WEB, {"TAG": "v1\0"}, {})
    with pytest.raises(InvalidArgument, match=f"^env: is {MAX_ENV_BYTES + 2} bytes"):
        check_inputs(WEB, {"A": "x" * (MAX_ENV_BYTES + 1)}, {})


def test_a_file_path_with_nul_is_refused() -> None:
    with pytest.raises(InvalidArgument, match=r"^files\['a\\x00b'\]: not a file path"):
        check_inputs(WEB, {}, {"a\0b": "X=1\n"})


def test_the_template_size_limit_has_one_message() -> None:
    big = WEB + "#" * (1024 * 1024)
    with pytest.raises(TemplateError) as direct:
        parse_template(big, env={}, files={}, app_name="app")
    with pytest.raises(TemplateError) as via_api:
        check_inputs(big, {}, {})
    assert str(direct.value) == str(via_api.value)
    assert str(direct.value).startswith("template: is 1048610 bytes; the limit is 1 MiB (1048576 bytes)")


# ---------------------------------------------------------------- the template's text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (WEB + '    command: ["a\\0b"]\n', "services.web.command[0]: contains a NUL byte (\\0, at character 1)"),
        (WEB + '    environment: {A: "x\\0"}\n', "services.web.environment.A: contains a NUL byte"),
        (WEB.replace("nginx", '"ngi\\0nx"'), "services.web.image: contains a NUL byte"),
        (WEB + '    labels: {"a\\0b": "1"}\n', 'services.web.labels["a\\u0000b"]: the key contains a NUL byte'),
        # A lone surrogate has no UTF-8 form: protobuf's ParseError escaped the parser (INTERNAL).
        (WEB + '    command: ["\\ud800"]\n', "services.web.command[0]: contains a lone surrogate (\\ud800"),
    ],
)
def test_nul_and_lone_surrogates_in_the_template_are_refused_by_path(text: str, message: str) -> None:
    found = template_errors(text)
    assert any(e.startswith(message) for e in found), found


def test_a_deploy_time_value_with_nul_is_refused_where_it_lands() -> None:
    found = template_errors(WEB + '    environment: {A: "${X}"}\n', env={"X": "a\0b"})
    assert found[0].startswith("services.web.environment.A: contains a NUL byte")


@pytest.mark.parametrize(
    ("files", "extra", "message"),
    [
        ({".env": "A=1\nX=a\0b\n"}, "", ".env: line 2: contains a NUL byte"),
        ({"app.env": "X=a\0b\n"}, "    env_file: [app.env]\n",
         "services.web.env_file[0]: app.env: line 1: contains a NUL byte"),
    ],
)
def test_nul_in_env_files_is_refused_naming_file_and_line(files: dict[str, str], extra: str, message: str) -> None:
    found = template_errors(WEB + extra, files=files)
    assert found[0].startswith(message), found


# ---------------------------------------------------------------- undecodable requests


def _bad(message: api_pb2.CreateApplicationRequest, marker: str) -> bytes:
    raw = message.SerializeToString()
    return raw.replace(marker.encode(), b"\xff" * len(marker.encode()))


@pytest.mark.parametrize(
    ("request_", "marker", "path"),
    [
        (api_pb2.CreateApplicationRequest(cluster="c", name="QQQQ"), "QQQQ", "name"),
        (api_pb2.CreateApplicationRequest(labels={"QQQQ": "v"}), "QQQQ", "labels: a key"),
        (api_pb2.CreateApplicationRequest(labels={"k": "QQQQ"}), "QQQQ", "labels.k"),
        (api_pb2.CreateApplicationRequest(profiles=["a", "QQQQ"]), "QQQQ", "profiles[1]"),
    ],
)
def test_invalid_utf8_is_located_by_field_path(
    request_: api_pb2.CreateApplicationRequest, marker: str, path: str
) -> None:
    found = bad_utf8_path(api_pb2.CreateApplicationRequest.DESCRIPTOR, _bad(request_, marker))
    assert found is not None and found.startswith(f"{path}")
    assert "UTF-8" in found


def test_nested_invalid_utf8_and_corrupt_bytes_are_described() -> None:
    msg = api_pb2.UpdateApplicationRequest(canary_analysis={"max_5xx_ratio": 0.5}, name="QQ")
    raw = msg.SerializeToString().replace(b"QQ", b"\xc0\x80")
    assert bad_utf8_path(api_pb2.UpdateApplicationRequest.DESCRIPTOR, raw) == "name: is not valid UTF-8"
    said = describe(api_pb2.GetClusterRequest.DESCRIPTOR, b"\xff\xff\xff", ValueError("Wire format was corrupt"))
    assert said == "request: is not a valid ccs.v1.GetClusterRequest message (Wire format was corrupt)"


# ---------------------------------------------------------------- page tokens and page sizes


def _token(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


@pytest.mark.parametrize("revision", [10**30, 2**63, 0, -5, "7", 1.5, True])
def test_a_page_token_with_an_impossible_revision_is_refused(revision: object) -> None:
    # 10**30 overflowed the int64 of etcd's RangeRequest: INTERNAL.
    with pytest.raises(BadPageToken, match=r"^page_token: not a token this server issued"):
        _decode_token(_token({"r": revision, "k": "/ccs/clusters/"}))


def test_a_page_ends_at_its_byte_budget_but_holds_at_least_one_record() -> None:
    kv = [KV(f"/k{i}", b"x" * (MAX_PAGE_BYTES // 3), 1, 1) for i in range(5)]
    kept, cut = _within_bytes(kv)
    assert len(kept) == 3 and cut
    huge = [KV("/a", b"x" * (MAX_PAGE_BYTES * 2), 1, 1), KV("/b", b"y", 1, 1)]
    assert _within_bytes(huge) == (huge[:1], True)
    assert _within_bytes(kv[:2]) == (kv[:2], False)


def test_a_template_with_a_lone_surrogate_is_refused_not_a_crash() -> None:
    # A caller of the Python API (bytes decoded with surrogateescape): encoding it for the size
    # check raised UnicodeEncodeError (found by tests/unit/test_compose_fuzz.py).
    assert template_errors("\udcffservices:\n  web: {}\n") == [
        "template: contains a lone surrogate (\\udcff) at line 1, which is not a character: a template is UTF-8 text"]


async def test_the_decoding_wrapper_is_made_once_per_method_and_still_refuses() -> None:
    """The interceptor keeps the handler it made for a method (issue 15: no per-call lookup and
    wrapping), makes a new one when the server's handler for it is another object, and the kept
    one still refuses bytes that do not decode."""
    async def behaviour(request: object, context: object) -> object:
        return request

    def registered() -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(
            behaviour, api_pb2.ListServicesRequest.FromString, api_pb2.ListServicesResponse.SerializeToString)

    interceptor = RequestDecodingInterceptor()
    method = "/ccs.v1.ServiceService/ListServices"
    first = registered()

    async def wrap(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        async def continuation(_: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
            return handler
        details = cast(grpc.HandlerCallDetails, SimpleNamespace(method=method, invocation_metadata=()))
        return await interceptor.intercept_service(continuation, details)

    kept = await wrap(first)
    assert kept is not first and await wrap(first) is kept
    assert await wrap(registered()) is not kept
    undecodable = kept.request_deserializer(_bad(api_pb2.CreateApplicationRequest(cluster="QQQQ"), "QQQQ"))
    assert isinstance(undecodable, Undecodable)
    assert kept.request_deserializer(b"\n\x01c") == api_pb2.ListServicesRequest(cluster="c")
