"""Apply the planned sets and chains with `ipset restore` and `iptables-restore --noflush`.

Why the restore tools rather than one `iptables -A` per rule (or python-iptables): a restore
file is applied as one transaction per table, so the chain never holds half its rules, and a
plan of any size costs one process. `--noflush` leaves every other chain alone (Docker's,
an operator's). `-w` waits for the xtables lock that dockerd also takes. The order of an apply:
sets (made or swapped whole), then the chains that use them, then destroying sets no chain
uses any more (the kernel refuses to destroy a set a rule still names).

The binaries come from Debian's `iptables` and `ipset` packages (deploy/install.sh).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from .plan import FabricPlan
from .rules import desired_sets, ipset_script, restore_script, stale_sets

LOCK_WAIT = "5"  # seconds to wait for the xtables lock


class FirewallError(Exception):
    """A tool failed; the message names the command and quotes its error output."""


async def _run(*argv: str, stdin: str = "") -> str:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
    except FileNotFoundError as exc:
        raise FirewallError(f"{argv[0]}: not installed ({exc.strerror}); install Debian's {argv[0]} package") from exc
    out, err = await proc.communicate(stdin.encode())
    if proc.returncode != 0:
        detail = err.decode(errors="replace").strip() or out.decode(errors="replace").strip()
        raise FirewallError(f"{' '.join(argv[:2])} failed ({proc.returncode}): {detail[:500]}")
    return out.decode(errors="replace")


@dataclass(frozen=True, slots=True)
class Applied:
    """What one apply changed (for logs and tests): lines restored, sets written and destroyed."""

    restored: int
    sets: int
    destroyed: int


async def apply_firewall(plan: FabricPlan) -> Applied:
    """Make this namespace's ccs sets and chains of the plan's cluster hold `plan` (empty: remove them)."""
    sets = desired_sets(plan)
    if sets:
        await _run("ipset", "restore", "-exist", stdin=ipset_script(sets))
    saved = await _run("iptables-save", "-t", "filter") + await _run("iptables-save", "-t", "nat")
    script = restore_script(plan, saved)
    if script:
        await _run("iptables-restore", "-w", LOCK_WAIT, "--noflush", stdin=script)
    existing = await _list_sets()
    stale = stale_sets(existing, plan)
    for name in stale:
        await _run("ipset", "destroy", name)
    return Applied(script.count("\n"), len(sets), len(stale))


async def _list_sets() -> list[str]:
    try:
        return (await _run("ipset", "list", "-n")).split()
    except FirewallError:
        return []  # no ipset support at all: then there is nothing of ours to destroy


async def fix_nat_jump(plan: FabricPlan) -> bool:
    """Put the nat jump back on top if Docker inserted its MASQUERADE rules above it."""
    saved = await _run("iptables-save", "-t", "nat")
    script = restore_script(plan, saved, tables=("nat",))
    if script:
        await _run("iptables-restore", "-w", LOCK_WAIT, "--noflush", stdin=script)
    return bool(script)


__all__ = ["Applied", "FirewallError", "apply_firewall", "fix_nat_jump"]
