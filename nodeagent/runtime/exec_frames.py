"""Pure helpers of `ccs exec` on the agent: Docker's multiplexed stream, and what an exit means.

Without a TTY the engine sends an exec's stdout and stderr on one connection, each piece
behind an 8-byte header (stream type 1 or 2, three zero bytes, the length as a big-endian
uint32); `FrameDecoder` splits it back, across reads that cut headers and payloads anywhere.
(docker-py has `frames_iter` for this, but it reads from the socket itself and blocks; the
agent's reader thread must hand each read on as it comes, so the decoder takes bytes.)

`exit_meaning` turns the engine's answer for a command that could not start into docker's
own convention: 127 when the program was not found, 126 when it could not be run (the engine
reports 126 for both, with an "OCI runtime exec failed" line on the output).
"""

from __future__ import annotations

import struct

STDOUT, STDERR = 1, 2
HEADER = 8
_NOT_FOUND = ("executable file not found", "no such file or directory")


class FrameDecoder:
    """Feed it bytes as they arrive; it returns the complete (stream, payload) pieces so far."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buf += data
        out: list[tuple[int, bytes]] = []
        while len(self._buf) >= HEADER:
            kind, size = struct.unpack(">BxxxL", self._buf[:HEADER])
            if len(self._buf) < HEADER + size:
                break
            payload = bytes(self._buf[HEADER : HEADER + size])
            del self._buf[: HEADER + size]
            if payload:
                # stdin (0) never comes back; anything but stderr is shown as stdout.
                out.append((STDERR if kind == STDERR else STDOUT, payload))
        return out

    @property
    def pending(self) -> int:
        """Bytes held for an incomplete frame (at the end of the stream: a cut frame)."""
        return len(self._buf)


def exit_meaning(exit_code: int, output_tail: bytes) -> tuple[int, str]:
    """(exit code, message) of an ended exec: the message says why a command did not run."""
    text = output_tail.decode(errors="replace")
    if exit_code == 126 and "OCI runtime exec failed" in text:
        line = next((ln.strip() for ln in text.splitlines() if "OCI runtime exec failed" in ln), text.strip())
        if any(marker in line for marker in _NOT_FOUND):
            return 127, f"command not found: {line}"
        return 126, f"command cannot run: {line}"
    return exit_code, ""


def terminal_size(rows: int, cols: int) -> tuple[int, int] | None:
    """A size to apply, or None when either is 0 (not given); bounded to what a tty holds."""
    if rows <= 0 or cols <= 0:
        return None
    return min(rows, 65535), min(cols, 65535)
