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

from .config import ServerChanges

_ERROR_PREFIXES = ("Unknown command", "No such", "Require ", "Permission denied", "Invalid ")
_CONFIRMATIONS = ("New server registered.",)
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
            async with asyncio.timeout(self.timeout):
                return await self._exchange(line)
        except (OSError, TimeoutError) as exc:
            raise RuntimeAPIError(f"{self.path}: {line.split()[0]}: {type(exc).__name__}: {exc}") from exc

    async def send_payload(self, line: str, payload: str) -> str:
        """Send one command with a multi-line payload (``CMD <<``, the lines, a blank line);
        return HAProxy's answer. Errors name the command, never the payload (a key)."""
        if "\n" in line or ";" in line or "\n\n" in payload or "\r" in payload:
            raise ValueError(f"command: one command, and a payload without blank lines: {line!r}")
        try:
            async with asyncio.timeout(self.timeout):
                return await self._exchange(f"{line} <<\n{payload}\n")
        except (OSError, TimeoutError) as exc:
            raise RuntimeAPIError(f"{self.path}: {line}: {type(exc).__name__}: {exc}") from exc

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

    async def apply_servers(self, changes: ServerChanges, check_interval: str) -> None:
        """Add, remove and re-weight servers, no reload (see :func:`server_commands`)."""
        await self.run_all(server_commands(changes, check_interval))

    async def delete_server(self, backend: str, server: str) -> bool:
        """``del server``: True when it is gone (or was), False while HAProxy still holds
        connections to it; RuntimeAPIError for anything else."""
        answer = (await self.command(f"del server {backend}/{server}")).strip()
        if answer in ("Server deleted.", "No such server.") or answer.startswith("No such backend"):
            return True
        if "still has connections" in answer or "not in maintenance" in answer:
            return False
        raise RuntimeAPIError(f"del server {backend}/{server}: {' '.join(answer.split())[:300]}")

    async def run_all(self, commands: Iterable[str]) -> None:
        """Run ``commands`` in order, in as few requests as :data:`LINE_LIMIT` allows. Raises
        RuntimeAPIError if HAProxy answers anything but success: nothing, or the fixed
        confirmation of ``add server``."""
        for line in batch_lines(commands, LINE_LIMIT):
            try:
                async with asyncio.timeout(self.timeout):
                    answer = await self._exchange(line)
            except (OSError, TimeoutError) as exc:
                raise RuntimeAPIError(f"{self.path}: {line.split()[0]}: {type(exc).__name__}: {exc}") from exc
            for ok in _CONFIRMATIONS:
                answer = answer.replace(ok, "")
            if answer.strip():
                raise RuntimeAPIError(f"{line[:60]}...: {' '.join(answer.split())[:300]}")

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


def server_commands(changes: ServerChanges, check_interval: str) -> list[str]:
    """The runtime commands for ``changes``: new servers first, then weights (gains before
    losses, :func:`weight_commands`), then removals, so that no moment has fewer servers
    than before or after.

    A new server is added in maintenance (HAProxy's default for ``add server``), gets its
    health check enabled, and leaves maintenance only with a weight above 0: the same state a
    reload would give it from its ``server ... disabled`` line. A removed server only goes to
    maintenance here: no request reaches it any more, and ``del server`` (which HAProxy refuses
    while connections, even idle pooled ones, are attached) is the caller's to retry.
    """
    out: list[str] = []
    for (backend, server), (address, weight) in sorted(changes.added.items()):
        out.append(f"add server {backend}/{server} {address} weight {weight} check inter {check_interval}")
        out.append(f"enable health {backend}/{server}")
        if weight > 0:
            out.append(f"enable server {backend}/{server}")
    out += weight_commands((b, s, w) for (b, s), w in changes.weights.items())
    out += [f"set server {backend}/{server} state maint" for backend, server in changes.removed]
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
