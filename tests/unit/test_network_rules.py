"""FabricPlan -> ipset script and iptables-restore input, given iptables-save output. Pure."""

from __future__ import annotations

import pytest

from ccs.v1 import agent_pb2 as apb
from nodeagent.network.plan import FabricPlan, NetKey, plan_fabric
from nodeagent.network.rules import (
    MissingChain,
    Names,
    desired_sets,
    filter_rules,
    ipset_script,
    nat_rules,
    parse_save,
    restore_script,
    stale_sets,
)


def plan(pod_cidr: str = "10.128.0.0/9", *, cluster: str = "prod", empty: bool = False) -> FabricPlan:
    m = apb.NetworkMap(cluster=cluster, version=1, pod_cidr=pod_cidr)
    if not empty:
        m.networks.extend([
            apb.AppNetwork(application="shop", network="default", blocks=[
                apb.NetworkBlock(node="n1", node_address="10.0.0.1", subnet="10.128.0.0/28"),
                apb.NetworkBlock(node="n2", node_address="10.0.0.2", subnet="10.128.0.16/28")]),
            apb.AppNetwork(application="shop", network="back", internal=True, blocks=[
                apb.NetworkBlock(node="n1", node_address="10.0.0.1", subnet="10.128.1.0/28")]),
        ])
    return plan_fabric(m, node="n1")


N = Names("prod")
DEFAULT, BACK = N.network_set(NetKey("shop", "default")), N.network_set(NetKey("shop", "back"))

DOCKER_ONLY = """*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A DOCKER-USER -j RETURN
COMMIT
*nat
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -s 10.128.0.0/28 ! -o br-abc -j MASQUERADE
COMMIT
"""


def saved_after(script: str, before: str = DOCKER_ONLY) -> str:
    """What iptables-save would print after `script` was restored over `before` (enough of it)."""
    tables = parse_save(before)
    out: list[str] = []
    current: dict[str, list[str]] = {}
    chains: set[str] = set()
    edits: dict[str, list[str]] = {}
    table = ""
    for line in script.splitlines():
        if line.startswith("*"):
            table = line[1:]
            edits[table] = []
        elif line != "COMMIT":
            edits[table].append(line)
    for name in ("filter", "nat"):
        t = tables[name]
        chains = set(t.chains)
        current = {k: list(v) for k, v in t.rules.items()}
        for line in edits.get(name, []):
            parts = line.split()
            if line.startswith(":"):
                chains.add(parts[0][1:])
                current[parts[0][1:]] = []
            elif parts[0] == "-A":
                current.setdefault(parts[1], []).append(line)
            elif parts[0] == "-I":
                current.setdefault(parts[1], []).insert(int(parts[2]) - 1, f"-A {parts[1]} " + " ".join(parts[3:]))
            elif parts[0] == "-D":
                current[parts[1]].remove("-A" + line[2:])
            elif parts[0] == "-F":
                current[parts[1]] = []
            elif parts[0] == "-X":
                chains.discard(parts[1])
                current.pop(parts[1], None)
        out.append(f"*{name}")
        out += [f":{c} - [0:0]" for c in sorted(chains)]
        out += [r for rules in current.values() for r in rules]
        out.append("COMMIT")
    return "\n".join(out) + "\n"


def test_names_are_short_enough_for_the_kernel_and_scoped_by_cluster() -> None:
    assert len(N.filter_chain) <= 28 and len(N.nat_chain) <= 28
    assert len(DEFAULT + "-n") <= 31 and len(N.local_set + "-n") <= 31
    other = Names("staging")
    assert other.filter_chain != N.filter_chain and not other.owns_set(DEFAULT)
    assert DEFAULT != BACK


def test_sets_hold_each_networks_blocks_and_this_nodes_blocks() -> None:
    sets = desired_sets(plan())
    assert {k: [str(b) for b in v] for k, v in sets.items()} == {
        DEFAULT: ["10.128.0.0/28", "10.128.0.16/28"],
        BACK: ["10.128.1.0/28"],
        N.local_set: ["10.128.0.0/28", "10.128.1.0/28"],
    }
    assert desired_sets(plan(empty=True)) == {}


def test_ipset_script_replaces_each_set_whole_by_a_swap() -> None:
    script = ipset_script({DEFAULT: desired_sets(plan())[DEFAULT]})
    assert script.splitlines() == [
        f"create {DEFAULT} hash:net family inet -exist",
        f"create {DEFAULT}-n hash:net family inet -exist",
        f"flush {DEFAULT}-n",
        f"add {DEFAULT}-n 10.128.0.0/28",
        f"add {DEFAULT}-n 10.128.0.16/28",
        f"swap {DEFAULT}-n {DEFAULT}",
        f"destroy {DEFAULT}-n",
    ]


def test_stale_sets_are_only_this_clusters_and_not_planned() -> None:
    existing = [DEFAULT, BACK, N.local_set, N.set_prefix + "0123456789ab", Names("x").local_set, "other"]
    assert stale_sets(existing, plan()) == [N.set_prefix + "0123456789ab"]
    assert stale_sets(existing, plan(empty=True)) == sorted([DEFAULT, BACK, N.local_set, N.set_prefix + "0123456789ab"])


def test_filter_rules_in_order() -> None:
    rules = filter_rules(plan())
    c = N.filter_chain
    assert [r.split(" -m comment")[0] + " " + r.rsplit(" ", 2)[-2] + " " + r.rsplit(" ", 1)[-1] for r in rules] == [
        f"-A {c} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        f"-A {c} -s 10.128.1.0/28 -i br-+ -m set ! --match-set {BACK} dst -j DROP",
        f"-A {c} -m conntrack --ctstate DNAT -j RETURN",
        f"-A {c} -m set --match-set {BACK} src -m set --match-set {BACK} dst -j ACCEPT",
        f"-A {c} -m set --match-set {DEFAULT} src -m set --match-set {DEFAULT} dst -j ACCEPT",
        f"-A {c} -o br-+ -m set --match-set {N.local_set} dst -j DROP",
        f"-A {c} -d 10.128.0.0/9 -i br-+ -m set --match-set {N.local_set} src -j DROP",
    ]
    assert all('-m comment --comment "ccs prod: ' in r for r in rules)
    assert '--comment "ccs prod: network shop/default"' in rules[4]


def test_rule_count_grows_with_networks_not_with_blocks() -> None:
    small = plan()
    m = apb.NetworkMap(cluster="prod", version=1, pod_cidr="10.128.0.0/9", networks=[
        apb.AppNetwork(application="shop", network="default", blocks=[
            apb.NetworkBlock(node=f"n{i}", node_address=f"10.0.{i // 250}.{i % 250 + 1}",
                             subnet=f"10.{128 + i // 4096}.{i // 16 % 256}.{i % 16 * 16}/28") for i in range(2000)]),
        apb.AppNetwork(application="shop", network="back", internal=True, blocks=[
            apb.NetworkBlock(node="n1", node_address="10.0.0.1", subnet="10.130.1.0/28")]),
    ])
    big = plan_fabric(m, node="n1")
    assert big.problems == ()
    assert len(big.routes) == 1999
    assert len(filter_rules(big)) == len(filter_rules(small))


def test_nat_keeps_pod_to_pod_sources_unless_dnated() -> None:
    assert nat_rules(plan()) == [
        f'-A {N.nat_chain} -s 10.128.0.0/9 -d 10.128.0.0/9 -m conntrack ! --ctstate DNAT '
        f'-m comment --comment "ccs prod: keep pod source addresses" -j ACCEPT'
    ]
    without_range = nat_rules(plan(""))
    assert len(without_range) == 2 and all("--match-set" in r for r in without_range)


def test_first_apply_writes_chains_and_jumps_on_top() -> None:
    script = restore_script(plan(), DOCKER_ONLY)
    lines = script.splitlines()
    assert lines[0] == "*filter" and f":{N.filter_chain} - [0:0]" in lines
    assert f'-I DOCKER-USER 1 -m comment --comment "ccs prod: cross-node networks" -j {N.filter_chain}' in lines
    assert f'-I POSTROUTING 1 -m comment --comment "ccs prod: cross-node networks" -j {N.nat_chain}' in lines
    after = parse_save(saved_after(script))
    assert after["nat"].rules["POSTROUTING"][0].endswith(f"-j {N.nat_chain}")
    assert after["filter"].rules["DOCKER-USER"][0].endswith(f"-j {N.filter_chain}")


def test_second_apply_of_the_same_plan_writes_nothing() -> None:
    after = saved_after(restore_script(plan(), DOCKER_ONLY))
    assert restore_script(plan(), after) == ""


def test_a_masquerade_rule_inserted_above_the_jump_moves_the_jump_back_only() -> None:
    after = saved_after(restore_script(plan(), DOCKER_ONLY))
    docker_again = after.replace("*nat\n", "*nat\n", 1)
    tables = parse_save(docker_again)
    nat = list(tables["nat"].rules["POSTROUTING"])
    moved = "-I POSTROUTING 1 -s 10.128.0.16/28 ! -o br-def -j MASQUERADE"
    docker_again = saved_after(f"*nat\n{moved}\nCOMMIT\n", docker_again)
    assert parse_save(docker_again)["nat"].rules["POSTROUTING"][1] == nat[0]  # the jump is second now
    script = restore_script(plan(), docker_again)
    assert script.splitlines() == [
        "*nat",
        "-D" + nat[0][2:],
        f'-I POSTROUTING 1 -m comment --comment "ccs prod: cross-node networks" -j {N.nat_chain}',
        "COMMIT",
    ]
    nat_only = restore_script(plan(), docker_again, tables=("nat",))
    assert nat_only == script


def test_another_clusters_jump_above_ours_is_left_alone() -> None:
    after = saved_after(restore_script(plan(cluster="other"), DOCKER_ONLY))
    after = saved_after(restore_script(plan(), after), after)
    assert restore_script(plan(cluster="other"), after) == ""
    assert restore_script(plan(), after) == ""


def test_a_changed_plan_rewrites_only_the_chain_that_changed() -> None:
    after = saved_after(restore_script(plan(), DOCKER_ONLY))
    m = apb.NetworkMap(cluster="prod", version=2, pod_cidr="10.128.0.0/9", networks=[
        apb.AppNetwork(application="shop", network="default", blocks=[
            apb.NetworkBlock(node="n1", node_address="10.0.0.1", subnet="10.128.0.0/28")])])
    script = restore_script(plan_fabric(m, node="n1"), after)
    assert script.startswith(f"*filter\n:{N.filter_chain} - [0:0]\n") and "*nat" not in script


def test_an_empty_plan_removes_jumps_and_chains() -> None:
    after = saved_after(restore_script(plan(), DOCKER_ONLY))
    script = restore_script(plan(empty=True), after)
    final = parse_save(saved_after(script, after))
    assert N.filter_chain not in final["filter"].chains and N.nat_chain not in final["nat"].chains
    assert final["filter"].rules["DOCKER-USER"] == ("-A DOCKER-USER -j RETURN",)
    assert final["nat"].rules["POSTROUTING"] == ("-A POSTROUTING -s 10.128.0.0/28 ! -o br-abc -j MASQUERADE",)
    assert restore_script(plan(empty=True), saved_after(script, after)) == ""


def test_no_docker_user_chain_is_a_clear_error() -> None:
    with pytest.raises(MissingChain, match="DOCKER-USER"):
        restore_script(plan(), "*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n*nat\nCOMMIT\n")
    assert restore_script(plan(empty=True), "*filter\nCOMMIT\n") == ""


def test_comments_cannot_break_the_restore_file() -> None:
    weird = Names('a"b c')
    assert '"ccs a_b c: x_y"' in weird.comment('x"y')


def shared_plan() -> FabricPlan:
    """shop on n1: default and `pub` (joins the cluster network "team"); blog's entry of "team"
    on n2; api of shop is on both networks (its default address is a member of pub)."""
    m = apb.NetworkMap(cluster="prod", version=1, pod_cidr="10.128.0.0/9", networks=[
        apb.AppNetwork(application="blog", network="net", shared="team", blocks=[
            apb.NetworkBlock(node="n2", node_address="10.0.0.2", subnet="10.128.2.0/28")]),
        apb.AppNetwork(application="shop", network="default", internal=True, blocks=[
            apb.NetworkBlock(node="n1", node_address="10.0.0.1", subnet="10.128.0.0/28")], members=[
            apb.NetworkBlock(node="n1", node_address="10.0.0.1", subnet="10.128.1.2/32")]),
        apb.AppNetwork(application="shop", network="pub", shared="team", blocks=[
            apb.NetworkBlock(node="n1", node_address="10.0.0.1", subnet="10.128.1.0/28")], members=[
            apb.NetworkBlock(node="n1", node_address="10.0.0.1", subnet="10.128.0.2/32")]),
    ])
    return plan_fabric(m, node="n1")


def test_a_shared_network_is_one_set_of_every_applications_blocks_and_members() -> None:
    """blog/net and shop/pub join "team": one set, one ACCEPT rule; a member (an address the
    network's containers have on another network) is in the set, so a container on default and
    pub reaches blog whichever address it sends from."""
    p = shared_plan()
    team = N.network_set("\0team")
    sets = {k: [str(b) for b in v] for k, v in desired_sets(p).items()}
    assert sets == {
        team: ["10.128.0.2/32", "10.128.1.0/28", "10.128.2.0/28"],
        DEFAULT: ["10.128.0.0/28", "10.128.1.2/32"],
        N.local_set: ["10.128.0.0/28", "10.128.1.0/28"],
    }
    accepts = [r for r in filter_rules(p) if r.endswith("-j ACCEPT") and "--match-set" in r]
    assert [r.split(" -m comment")[0] for r in accepts] == [
        f"-A {N.filter_chain} -m set --match-set {team} src -m set --match-set {team} dst",
        f"-A {N.filter_chain} -m set --match-set {DEFAULT} src -m set --match-set {DEFAULT} dst",
    ]


def test_internal_drops_what_leaves_its_own_blocks_not_its_members() -> None:
    """default is internal: its block on this node sends nothing outside the network; its
    member (the address of a container's other network, pub) is pub's egress, not default's."""
    drops = [r.split(" -m comment")[0] for r in filter_rules(shared_plan()) if "no egress" in r]
    assert drops == [f"-A {N.filter_chain} -s 10.128.0.0/28 -i br-+ -m set ! --match-set {DEFAULT} dst"]
