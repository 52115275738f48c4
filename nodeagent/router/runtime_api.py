"""A small async client of HAProxy's stats socket (the "runtime API").

One unix-socket connection per request, in HAProxy's non-interactive mode: send one line,
read until HAProxy closes. No session state can go stale, a timed-out command cannot leave
half an answer in the next one's way, and a reload (which moves the socket to the new worker)
needs no reconnect logic. Weight changes go many to a line (commands joined by ``;``, which
HAProxy runs in order): a blue-green shift of 60 servers is then one or two round trips
instead of 120, which on a loaded host was seconds between the first and the last server
getting its weight. The parsers are pure functions, unit-tested on captured output.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
from collections.abc import Iterable
from pathlib import Path

_ERROR_PREFIXES = ("Unknown command", "No such", "Require ", "Permission denied", "Invalid ")
LINE_LIMIT = 8000
"""Bytes per request line: well under HAProxy's default ``tune.bufsize`` (16 KiB)."""


class RuntimeAPIError(Exception):
    """The socket is unreachable, timed out, or HAProxy refused the command."""


class RuntimeAPI:
    def __init__(self, path: Path, *, timeout: float = 5.0) -> None:
        self.path = path
        self.timeout = timeout

    async def command(self, line: str) -> str:
        """Send one command; return HAProxy's whole answer."""
        if "\n" in line or ";" in line:
            raise ValueError(f"command: one command per call, without newline or ';', got {line!r}")
        try:
            return await asyncio.wait_for(self._exchange(line), self.timeout)
        except (OSError, TimeoutError) as exc:
            raise RuntimeAPIError(f"{self.path}: {line.split()[0]}: {type(exc).__name__}: {exc}") from exc

    async def _exchange(self, line: str) -> str:
        reader, writer = await asyncio.open_unix_connection(str(self.path))
        try:
            writer.write(line.encode() + b"\n")
            await writer.drain()
            data = await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        return data.decode(errors="replace")

    async def set_weights(self, changes: Iterable[tuple[str, str, int]]) -> None:
        """Apply weights at once, no reload (see :func:`weight_commands`), in as few requests as
        :data:`LINE_LIMIT` allows. Raises RuntimeAPIError if HAProxy answers anything: these
        commands answer nothing on success."""
        for line in batch_lines(weight_commands(changes), LINE_LIMIT):
            try:
                answer = await asyncio.wait_for(self._exchange(line), self.timeout)
            except (OSError, TimeoutError) as exc:
                raise RuntimeAPIError(f"{self.path}: set weight: {type(exc).__name__}: {exc}") from exc
            if answer.strip():
                raise RuntimeAPIError(f"set weight: {' '.join(answer.split())[:300]}")

    async def show_stat(self) -> list[dict[str, str]]:
        return parse_stat(await self.command("show stat"))

    async def show_servers_state(self) -> list[dict[str, str]]:
        return parse_servers_state(await self.command("show servers state"))

    async def show_info(self) -> dict[str, str]:
        return parse_info(await self.command("show info"))


def weight_commands(changes: Iterable[tuple[str, str, int]]) -> list[str]:
    """The runtime commands for ``(backend, server, weight)`` changes.

    Weight 0 also puts the server in maintenance, and a positive weight takes it out: a server at
    weight 0 is leaving or not ready, and in maintenance even sticky-cookie clients are sent
    elsewhere (at weight 0 alone HAProxy still honours their cookie), while requests in flight on
    it complete. Servers that gain traffic come first, so a shift never leaves a moment where
    both sides are down.
    """
    ordered = sorted(changes, key=lambda c: (c[2] == 0, c[0], c[1]))
    out: list[str] = []
    for backend, server, weight in ordered:
        if weight > 0:
            out.append(f"set server {backend}/{server} state ready")
        out.append(f"set weight {backend}/{server} {weight}")
        if weight == 0:
            out.append(f"set server {backend}/{server} state maint")
    return out


def batch_lines(commands: Iterable[str], limit: int) -> list[str]:
    """``commands`` joined by ``;`` into lines of at most ``limit`` bytes (a longer command alone)."""
    lines: list[str] = []
    current = ""
    for cmd in commands:
        if ";" in cmd or "\n" in cmd:
            raise ValueError(f"command: without newline or ';', got {cmd!r}")
        candidate = f"{current}; {cmd}" if current else cmd
        if current and len(candidate.encode()) > limit:
            lines.append(current)
            candidate = cmd
        current = candidate
    if current:
        lines.append(current)
    return lines


def parse_stat(text: str) -> list[dict[str, str]]:
    """`show stat` CSV (header line `# pxname,svname,...`) -> one dict per proxy/server row."""
    _raise_on_error(text)
    lines = text.splitlines()
    if not lines or not lines[0].startswith("# "):
        raise RuntimeAPIError(f"show stat: unexpected answer {text[:80]!r}")
    header = lines[0][2:].rstrip(",").split(",")
    rows: list[dict[str, str]] = []
    for values in csv.reader(io.StringIO("\n".join(line for line in lines[1:] if line.strip()))):
        rows.append(dict(zip(header, values, strict=False)))
    return rows


def parse_servers_state(text: str) -> list[dict[str, str]]:
    """`show servers state`: a version line, a `# field ...` header, space-separated rows."""
    _raise_on_error(text)
    header: list[str] = []
    rows: list[dict[str, str]] = []
    for line in text.splitlines():
        if line.startswith("# "):
            header = line[2:].split()
        elif line.strip() and header and not line.strip().isdigit():
            rows.append(dict(zip(header, line.split(), strict=False)))
    return rows


def parse_info(text: str) -> dict[str, str]:
    """`show info`: `Name: value` lines."""
    _raise_on_error(text)
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def counter(row: dict[str, str], name: str) -> int:
    """A numeric `show stat` field; HAProxy leaves fields empty where they do not apply."""
    value = row.get(name, "")
    return int(value) if value.isdigit() else 0


def _raise_on_error(text: str) -> None:
    if text.lstrip().startswith(_ERROR_PREFIXES):
        raise RuntimeAPIError(text.strip().splitlines()[0])
