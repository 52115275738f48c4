"""Pure pieces of `ccs exec`: Docker's multiplexed stream, exit meanings, terminal sizes, and
the checks of the API's exec requests (field named in every refusal)."""

from __future__ import annotations

import struct

import pytest

from ccs.v1 import api_pb2
from controlplane.access.policy import Caller, decide
from controlplane.api.container_exec import check_input, check_start
from controlplane.grpc_errors import InvalidArgument
from nodeagent.runtime.exec_frames import STDERR, STDOUT, FrameDecoder, exit_meaning, terminal_size


def frame(kind: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", kind, len(payload)) + payload


def test_frames_cut_anywhere_come_back_whole_and_in_order() -> None:
    wire = frame(1, b"hello ") + frame(2, b"oops\n") + frame(1, b"") + frame(1, b"world\n")
    for cut in range(1, len(wire)):
        d = FrameDecoder()
        got = d.feed(wire[:cut]) + d.feed(wire[cut:])
        assert got == [(STDOUT, b"hello "), (STDERR, b"oops\n"), (STDOUT, b"world\n")], cut
        assert d.pending == 0


def test_a_byte_at_a_time_and_a_cut_frame_is_held() -> None:
    d = FrameDecoder()
    out = []
    for b in frame(2, b"x" * 300):
        out += d.feed(bytes([b]))
    assert out == [(STDERR, b"x" * 300)]
    assert d.feed(frame(1, b"abc")[:-1]) == [] and d.pending == 10


@pytest.mark.parametrize(("code", "tail", "expected"), [
    (0, b"", (0, "")),
    (3, b"anything", (3, "")),
    (126, b'OCI runtime exec failed: exec failed: unable to start container process: exec: "nope": '
          b"executable file not found in $PATH: unknown\r\n", 127),
    (126, b'OCI runtime exec failed: exec failed: unable to start container process: exec: "/x": '
          b"stat /x: no such file or directory: unknown\r\n", 127),
    (126, b'OCI runtime exec failed: exec failed: unable to start container process: exec: "/etc": '
          b"permission denied: unknown\r\n", 126),
    (126, b"a command that exits 126 by itself", (126, "")),
])
def test_exit_meaning(code: int, tail: bytes, expected: tuple[int, str] | int) -> None:
    got = exit_meaning(code, tail)
    if isinstance(expected, tuple):
        assert got == expected
    else:
        assert got[0] == expected
        assert got[1].startswith("command not found: " if expected == 127 else "command cannot run: ")
        assert "OCI runtime exec failed" in got[1]


def test_terminal_size() -> None:
    assert terminal_size(0, 80) is None and terminal_size(24, 0) is None
    assert terminal_size(24, 80) == (24, 80)
    assert terminal_size(100000, 80) == (65535, 80)


START = {"cluster": "c", "application": "a", "service": "web", "container": "web-1-abc", "command": ["sh"]}


@pytest.mark.parametrize(("change", "message"), [
    ({"command": []}, "command: must name a program to run (ccs exec CONTAINER -- CMD...)"),
    ({"command": [""]}, "command: must name a program to run (ccs exec CONTAINER -- CMD...)"),
    ({"command": ["echo", "a\0b"]}, "command[1]: holds a NUL byte"),
    ({"command": ["x"] * 1025}, "command: 1025 words; at most 1024"),
    ({"container": "a b"}, "container: 'a b' is not a container name (like web-1-3f9a2b7c)"),
    ({"cluster": "Bad"}, "cluster: 'Bad' is not a valid name"),
    ({"tty": True, "rows": 24}, "rows: give rows and cols together (got rows=24, cols=0)"),
    ({"rows": 24, "cols": 80}, "rows: a terminal size needs tty"),
    ({"tty": True, "rows": 70000, "cols": 80}, "rows: 70000x80 is larger than a terminal can be (65535)"),
    ({"stdin_data": b"x"}, "stdin_data: the exec is started without stdin (set stdin)"),
])
def test_a_bad_first_request_names_the_field(change: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        check_start(api_pb2.ExecRequest(**{**START, **change}))  # type: ignore[arg-type]
    assert str(e.value).startswith(message)


def test_a_good_first_request_and_later_ones() -> None:
    check_start(api_pb2.ExecRequest(**START, tty=True, stdin=True, rows=24, cols=80))  # type: ignore[arg-type]
    first = api_pb2.ExecRequest(**START, tty=True, stdin=True)  # type: ignore[arg-type]
    got = check_input(api_pb2.ExecRequest(stdin_data=b"x", rows=40, cols=132, close_stdin=True), 1, first)
    assert (got.stdin, got.rows, got.cols, got.close_stdin) == (b"x", 40, 132, True)
    plain = api_pb2.ExecRequest(**START)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="stdin_data: request 2: the exec was started without stdin"):
        check_input(api_pb2.ExecRequest(stdin_data=b"x"), 2, plain)
    with pytest.raises(InvalidArgument, match="rows: request 2: a terminal size needs tty"):
        check_input(api_pb2.ExecRequest(rows=1, cols=1), 2, plain)
    for later, message in [
        (api_pb2.ExecRequest(container="web-1-abc"), "container: request 3: only the first request names"),
        (api_pb2.ExecRequest(command=["sh"]), "command: request 3: only the first request sets the command"),
        (api_pb2.ExecRequest(stdin_data=b"x" * (64 * 1024 + 1)), "stdin_data: 65537 bytes in one request"),
    ]:
        with pytest.raises(InvalidArgument, match=message):
            check_input(later, 3, first)


def test_exec_needs_the_exec_permission_of_a_deployer_or_an_admin() -> None:
    req = api_pb2.ExecRequest(**START)  # type: ignore[arg-type]
    method = "/ccs.v1.ContainerService/Exec"
    assert decide(Caller("a", "admin"), method, req) is None
    assert decide(Caller("d", "deployer", ("c",), ("a",)), method, req) is None
    assert "may exec only application(s) other" in (decide(Caller("d", "deployer", ("c",), ("other",)), method, req)
                                                   or "")
    why = decide(Caller("v", "viewer"), method, req) or ""
    assert "needs the 'exec' permission, which the role does not have" in why
