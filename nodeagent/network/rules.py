"""FabricPlan -> ipset and iptables-restore input, from what the kernel holds now. Pure.

Everything ccs adds is named after the cluster (a short hash: chain names are limited to 28
characters, set names to 31), so the agent finds and removes exactly its own objects, and two
clusters' agents that share a network namespace (tests running agents on one host) never
overwrite each other's chains or destroy each other's sets:

- sets `ccs-<h>-<network hash>` (type hash:net), one per network: all its blocks and members
  (a shared cluster network is one network: one set of every application's entries of it);
  `ccs-<h>-local`: the blocks on this node. With sets the firewall has a fixed number of
  rules per network, whatever the number of nodes (a network on 2,000 nodes is still one rule).
  Sets are replaced whole with `swap`, so a set is never seen half filled.
- filter chain `CCS-FWD-<h>`, jumped to from the top of DOCKER-USER (the chain Docker keeps
  for its users: it never flushes it, it only appends its RETURN):
    1. ESTABLISHED,RELATED -> ACCEPT (replies of allowed connections);
    2. `internal` networks: from each of the network's blocks on this node to outside the
       network -> DROP (no egress; a member address is another network's, whose egress it is);
    3. `--ctstate DNAT` -> RETURN: published ports, and the HAProxy routers that reach
       containers through them, stay Docker's business;
    4. per network: from its blocks to its blocks -> ACCEPT (both ways, every node);
    5. into a block of this node (out of a Docker bridge, `br-+`) -> DROP;
       out of a block of this node into the pod range -> DROP.
  Rule 5 names Docker's bridges, so frames that a node merely bridges (the testbed's root
  namespace bridges its hosts' traffic) are never judged by it.
- nat chain `CCS-NAT-<h>`, jumped to from the top of POSTROUTING: pod range -> pod range is
  ACCEPTed (not masqueraded) unless it was DNATed, so the receiving node's firewall sees the
  sender's own address. Docker inserts its `-s SUBNET ! -o BRIDGE -j MASQUERADE` at the *top*
  of POSTROUTING whenever it creates a network (and re-creates rules on restart), so the jump's
  place is checked on every apply and after every network the agent creates.

A jump is "in place" when only ccs jumps (of any cluster) precede it; otherwise it is deleted
and inserted again at position 1. A chain whose rules already read as planned (iptables-save's
canonical form is what `filter_rules`/`nat_rules` write) is not rewritten, so the periodic
re-assertion costs one iptables-save and no write.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network

from .plan import FabricPlan, NetKey

SET_PREFIX = "ccs-"
CHAIN_PREFIX = "CCS-"
SWAP_SUFFIX = "-n"
_SAFE = re.compile(r"[^A-Za-z0-9_.:/ -]+")


def _hash(text: str, n: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def _safe(text: str) -> str:
    """A comment never carries a quote or anything the restore parser would trip on."""
    return _SAFE.sub("_", text)[:200]


@dataclass(frozen=True, slots=True)
class Names:
    """The names of one cluster's kernel objects."""

    cluster: str
    tag: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tag", _hash(self.cluster, 8))

    @property
    def filter_chain(self) -> str:
        return f"{CHAIN_PREFIX}FWD-{self.tag}"

    @property
    def nat_chain(self) -> str:
        return f"{CHAIN_PREFIX}NAT-{self.tag}"

    @property
    def set_prefix(self) -> str:
        return f"{SET_PREFIX}{self.tag}-"

    @property
    def local_set(self) -> str:
        return f"{self.set_prefix}local"

    def network_set(self, key: NetKey | str) -> str:
        """The set of a network group (`NetworkPlan.group`); an application network's key names
        the same set as its group."""
        group = key if isinstance(key, str) else f"{key.application}\0{key.network}"
        return self.set_prefix + _hash(group, 12)

    def comment(self, what: str) -> str:
        return f'-m comment --comment "ccs {_safe(self.cluster)}: {_safe(what)}"'

    def owns_set(self, name: str) -> bool:
        return name.startswith(self.set_prefix)


# ---------------------------------------------------------------- sets


def desired_sets(plan: FabricPlan) -> dict[str, tuple[IPv4Network, ...]]:
    """Set name -> members, for every network of the plan plus this node's blocks."""
    if plan.empty:
        return {}
    names = Names(plan.cluster)
    sets = {names.network_set(group): tuple(sorted({b for n in nets for b in (*n.blocks, *n.members)}))
            for group, nets in plan.groups().items()}
    sets[names.local_set] = plan.local_blocks
    return sets


def ipset_script(sets: Mapping[str, Sequence[IPv4Network]]) -> str:
    """`ipset restore -exist` input: each set made if missing and replaced whole by a swap."""
    lines: list[str] = []
    for name, members in sorted(sets.items()):
        tmp = name + SWAP_SUFFIX
        lines += [f"create {name} hash:net family inet -exist", f"create {tmp} hash:net family inet -exist",
                  f"flush {tmp}"]
        lines += [f"add {tmp} {m}" for m in members]
        lines += [f"swap {tmp} {name}", f"destroy {tmp}"]
    return "".join(f"{line}\n" for line in lines)


def stale_sets(existing: Iterable[str], plan: FabricPlan) -> list[str]:
    """The cluster's sets the plan no longer has (destroyed after the rules stop using them)."""
    names, keep = Names(plan.cluster), set(desired_sets(plan))
    return sorted(s for s in existing if names.owns_set(s) and s not in keep)


# ---------------------------------------------------------------- rules


def filter_rules(plan: FabricPlan) -> list[str]:
    """The body of the filter chain, in iptables-save's canonical form."""
    if plan.empty:
        return []
    n = Names(plan.cluster)
    chain, local = n.filter_chain, n.local_set
    rules = [f"-A {chain} -m conntrack --ctstate RELATED,ESTABLISHED {n.comment('replies')} -j ACCEPT"]
    for net in plan.networks:
        if net.internal:
            s = n.network_set(net.group)
            rules += [f"-A {chain} -s {block} -i br-+ -m set ! --match-set {s} dst "
                      f"{n.comment(f'internal {net.key}: no egress')} -j DROP" for block in net.local]
    rules.append(f"-A {chain} -m conntrack --ctstate DNAT {n.comment('published ports')} -j RETURN")
    for group, nets in plan.groups().items():
        s = n.network_set(group)
        what = f"shared network {nets[0].shared}" if nets[0].shared else f"network {nets[0].key}"
        rules.append(f"-A {chain} -m set --match-set {s} src -m set --match-set {s} dst "
                     f"{n.comment(what)} -j ACCEPT")
    rules.append(f"-A {chain} -o br-+ -m set --match-set {local} dst {n.comment('isolation: into this node')} -j DROP")
    if plan.pod_cidr is not None:
        rules.append(f"-A {chain} -d {plan.pod_cidr} -i br-+ -m set --match-set {local} src "
                     f"{n.comment('isolation: out of this node')} -j DROP")
    return rules


def nat_rules(plan: FabricPlan) -> list[str]:
    """The body of the nat chain: pod-to-pod traffic keeps its source address."""
    if plan.empty:
        return []
    n = Names(plan.cluster)
    keep = n.comment("keep pod source addresses")
    if plan.pod_cidr is not None:
        p = plan.pod_cidr
        return [f"-A {n.nat_chain} -s {p} -d {p} -m conntrack ! --ctstate DNAT {keep} -j ACCEPT"]
    # No pod range in the map: exempt each network's own traffic instead (same effect for what
    # the firewall lets through).
    return [f"-A {n.nat_chain} -m set --match-set {s} src -m set --match-set {s} dst -m conntrack ! --ctstate DNAT "
            f"{keep} -j ACCEPT" for s in (n.network_set(group) for group in plan.groups())]


@dataclass(frozen=True, slots=True)
class Saved:
    """One table of `iptables-save` output: its chains and their rules, in order."""

    chains: frozenset[str]
    rules: Mapping[str, tuple[str, ...]]


def parse_save(text: str) -> dict[str, Saved]:
    """`iptables-save` output -> table name -> Saved."""
    tables: dict[str, Saved] = {}
    table = ""
    chains: set[str] = set()
    rules: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("*"):
            table, chains, rules = line[1:], set(), {}
        elif line.startswith(":") and table:
            chains.add(line[1:].split()[0])
        elif line.startswith("-A ") and table:
            rules.setdefault(line.split()[1], []).append(line)
        elif line == "COMMIT" and table:
            tables[table] = Saved(frozenset(chains), {k: tuple(v) for k, v in rules.items()})
            table = ""
    return tables


def _target(rule: str) -> str:
    parts = rule.split()
    return parts[parts.index("-j") + 1] if "-j" in parts else ""


def _jump_lines(saved: Saved, parent: str, chain: str, comment: str) -> list[str]:
    """Delete misplaced jumps from `parent` to `chain` and insert one at the top; [] if in place."""
    rules = saved.rules.get(parent, ())
    ours = [i for i, r in enumerate(rules) if _target(r) == chain]
    in_place = len(ours) == 1 and all(_target(r).startswith(CHAIN_PREFIX) for r in rules[: ours[0]])
    if in_place:
        return []
    lines = ["-D" + rules[i][2:] for i in ours]
    return [*lines, f"-I {parent} 1 {comment} -j {chain}"]


def _table_lines(
    saved: Saved, parent: str, chain: str, body: list[str], comment: str
) -> list[str]:
    """The restore lines for one table: the chain rewritten if it differs, the jump kept first."""
    if not body:  # remove: jumps first, then the chain
        if chain not in saved.chains:
            return []
        jumps = ["-D" + r[2:] for r in saved.rules.get(parent, ()) if _target(r) == chain]
        return [*jumps, f"-F {chain}", f"-X {chain}"]
    lines: list[str] = []
    if chain not in saved.chains or tuple(body) != saved.rules.get(chain, ()):
        lines += [f":{chain} - [0:0]", *body]  # declaring an existing chain flushes it
    return lines + _jump_lines(saved, parent, chain, comment)


class MissingChain(Exception):
    """DOCKER-USER is missing: dockerd has not set up its firewall (or runs with --iptables=false)."""


def restore_script(plan: FabricPlan, saved_text: str, *, tables: Collection[str] = ("filter", "nat")) -> str:
    """`iptables-restore --noflush` input that makes the kernel hold `plan` ("" if it already does).

    An empty plan removes the plan's cluster's chains and jumps. `tables` limits the script to
    some tables (after a network create only the nat jump can have moved).
    """
    tables = parse_save(saved_text)
    names = Names(plan.cluster)
    empty = Saved(frozenset(), {})
    filt, nat = tables.get("filter", empty), tables.get("nat", empty)
    body = filter_rules(plan) if "filter" in tables else []
    if body and "DOCKER-USER" not in filt.chains:
        raise MissingChain("iptables: chain DOCKER-USER not found: is dockerd running (with its iptables rules)?")
    jump_comment = names.comment("cross-node networks")
    out: list[str] = []
    lines = _table_lines(filt, "DOCKER-USER", names.filter_chain, body, jump_comment) if "filter" in tables else []
    if lines:
        out += ["*filter", *lines, "COMMIT"]
    lines = _table_lines(nat, "POSTROUTING", names.nat_chain, nat_rules(plan), jump_comment) if "nat" in tables else []
    if lines:
        out += ["*nat", *lines, "COMMIT"]
    return "".join(f"{line}\n" for line in out)


__all__ = [
    "MissingChain",
    "Names",
    "Saved",
    "desired_sets",
    "filter_rules",
    "ipset_script",
    "nat_rules",
    "parse_save",
    "restore_script",
    "stale_sets",
]
