"""Nothing accepted is ignored: every key of the parser's support table (``support.RULES``) is either
proven to have its effect by a named test, or refused, or ignored with a warning the user sees.

How it holds: ``PROOFS`` maps each supported key to the tests that prove its effect (the parse
side and the engine or control-plane side); a supported key that is in neither ``PROOFS``,
``STRUCTURAL`` nor ``PENDING_OTHER_BRANCHES`` fails ``test_every_supported_key_has_a_proof``, so a
key added to the table without a proof fails here. Each named test must exist. Refused and warned
keys are checked against the parser's support stage. For the volume and port keys the proofs must
include a test against the real engine (``docker inspect`` / ``docker volume inspect``) from
tests/integration/test_compose_volume_effects.py or test_external_volume.py; for the container keys
(``CONTAINER_KEYS``: cap_drop, ulimits, the privileged keys, ...) one from
tests/integration/test_compose_keys_docker.py. The corpus test on the 3-host testbed
(tests/integration/e2e/test_corpus.py) checks the same fields again on real templates.

To add a key: add its rule, write the test that shows its effect on the created container, network
or volume (``docker inspect``) or on what the control plane does, and name that test here.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import Any

import pytest

from controlplane.compose import RULES, Action
from controlplane.compose.errors import Diagnostics, format_path
from controlplane.compose.support import SCOPES, check_support

ROOT = Path(__file__).resolve().parents[2]

CV = "tests/unit/test_compose_convert.py::test_key_conversion"
ENGINE = "tests/integration/test_docker_runtime.py::test_create_applies_every_option"  # docker inspect
TRANSLATE = "tests/unit/test_runtime_translate.py"
VOLUMES = "tests/integration/test_compose_volume_effects.py"  # docker inspect / docker volume inspect
MOUNTS = f"{VOLUMES}::test_mount_options_reach_the_container"
PORTS = f"{VOLUMES}::test_ports_target_published_protocol_host_ip_and_mode_host"
DEFINITIONS = f"{VOLUMES}::test_driver_driver_opts_labels_and_name_reach_the_volume_create"
EXTERNAL = ("tests/integration/test_external_volume.py::"
            "test_a_container_waits_pending_for_a_missing_external_volume_then_runs_with_it")
SCHEDULER = "tests/unit/test_scheduler.py::test_placement"
NETS = "tests/unit/test_compose_networks.py"
NETWORK_API = "tests/integration/test_cluster_networks.py"  # a real server and etcd
DOCKER_NETS = "tests/integration/test_docker_runtime_network.py"  # docker inspect
E2E = "tests/integration/e2e/test_networks_multi.py"  # the 3-host testbed, several networks
E2E_ISOLATION = f"{E2E}::test_front_and_back_are_isolated_across_hosts_and_a_service_on_both_reaches_both"
RESTART = "tests/unit/test_planner_restart.py"
CK = "tests/unit/test_compose_container_keys.py::test_key_conversion"
KEYS_DOCKER = "tests/integration/test_compose_keys_docker.py"  # docker inspect + effects seen inside
NARROW = f"{KEYS_DOCKER}::test_narrowing_and_harmless_keys_have_their_effect"
PRIVILEGED = f"{KEYS_DOCKER}::test_privileged_keys_have_their_effect"
PRIV_SPEC = "tests/unit/test_compose_container_keys.py::test_privileged_values_reach_the_spec"
SECRETS_PARSE = "tests/unit/test_compose_secrets.py"
SECRETS_API = ("tests/integration/test_secrets.py::"
               "test_a_template_mounts_versions_and_an_update_rolls_the_unpinned_services")
SECRET_FILES = "tests/integration/test_secret_files.py::test_secrets_and_configs_are_files_in_the_container_and_nowhere_else"
DEFS = f"{SECRETS_PARSE}::test_definitions_become_stored_names_and_values"
GRANTS = f"{SECRETS_PARSE}::test_external_names_pin_and_defaults_and_long_syntax"
POLICY = ("tests/integration/test_cluster_policy.py::"
          "test_privileged_keys_wait_for_the_policy_and_narrowing_it_keeps_what_runs")

#: Supported key -> the tests that prove its effect (parse side first, then the effect).
PROOFS: dict[str, tuple[str, ...]] = {
    "services.*.image": (f"{CV}[defaults]", ENGINE),
    "services.*.build": (f"{CV}[build with image is ignored]",
                         "tests/unit/test_compose_errors.py::test_error_names_field_and_reason[build without image]"),
    "services.*.command": (f"{CV}[command string is shell-split]", f"{TRANSLATE}::test_process_fields"),
    "services.*.entrypoint": (f"{CV}[entrypoint]", f"{TRANSLATE}::test_process_fields"),
    "services.*.environment": (f"{CV}[environment map]", ENGINE),
    "services.*.env_file": ("tests/unit/test_compose_convert.py::test_env_file_merged_first_then_environment_overrides",
                            ENGINE),
    "services.*.ports": (f"{CV}[ports short]", PORTS),
    "services.*.expose": (f"{CV}[expose]", f"{TRANSLATE}::test_ports_publish_on_bind_address_or_own_host_ip_and_expose"),
    "services.*.volumes": (f"{CV}[volumes short]", MOUNTS, DEFINITIONS),
    "services.*.labels": (f"{CV}[labels list and map]", ENGINE),
    "services.*.restart": (f"{CV}[restart]", f"{RESTART}::test_restart_policy"),
    "services.*.depends_on": ("tests/unit/test_compose_convert.py::test_depends_on_list_and_map_and_start_order",
                              f"{RESTART}::test_depends_on_gates_new_containers"),
    "services.*.stop_grace_period": (f"{CV}[stop and identity]", ENGINE),
    "services.*.stop_signal": (f"{CV}[stop and identity]", ENGINE),
    "services.*.user": (f"{CV}[stop and identity]", ENGINE),
    "services.*.working_dir": (f"{CV}[stop and identity]", ENGINE),
    "services.*.hostname": (f"{CV}[stop and identity]", ENGINE),
    "services.*.scale": (f"{CV}[scale is replicas]", "tests/unit/test_planner_service.py::test_plan_service"),
    "services.*.pull_policy": (f"{CV}[pull_policy always]",
                               "tests/unit/test_runtime_fake.py::test_always_pull_reports_pulling"),
    "x-ccs": ("tests/unit/test_image_pins.py::test_x_ccs_registry_names_the_login_and_must_exist",
              "tests/integration/test_registry.py::test_login_pinning_refusals_and_moved_tags"),
    "services.*.x-ccs": ("tests/unit/test_compose_aliases.py::test_x_ccs_extension",
                         "tests/unit/test_planner_node_loss.py::test_the_effective_policy",
                         "tests/integration/e2e/test_node_loss.py::"
                         "test_a_service_with_a_named_volume_waits_for_its_node_and_returns_with_its_data"),
    "services.*.deploy.mode": (f"{CV}[deploy global has no replicas]",
                               "tests/unit/test_scheduler.py::test_global_mode_ignores_spread_and_gets_one_per_node"),
    "services.*.deploy.replicas": (f"{CV}[deploy]", "tests/unit/test_planner_service.py::test_plan_service"),
    "services.*.deploy.restart_policy": (f"{CV}[deploy]", f"{RESTART}::test_restart_policy"),
    "services.*.deploy.update_config": (
        f"{CV}[deploy]", "tests/unit/test_release_rolling.py::test_rolling_replaces_every_slot_and_succeeds"),
    "services.*.deploy.rollback_config": (
        f"{CV}[deploy]", "tests/unit/test_release_rolling.py::test_a_rollback_rolls_with_the_services_rollback_config"),
    "services.*.deploy.resources.limits.cpus": (f"{CV}[deploy]", ENGINE),
    "services.*.deploy.resources.limits.memory": (f"{CV}[deploy]", ENGINE),
    "services.*.deploy.resources.limits.pids": (f"{CV}[deploy]", ENGINE),
    "services.*.deploy.resources.reservations.cpus": (
        f"{CV}[deploy]", f"{SCHEDULER}[cpu reserved by live containers is not free]"),
    "services.*.deploy.resources.reservations.memory": (
        f"{CV}[deploy]", f"{SCHEDULER}[memory reserved by live containers is not free]",
        f"{TRANSLATE}::test_resources"),
    "services.*.deploy.placement.constraints": (f"{CV}[deploy]", f"{SCHEDULER}[label ==]"),
    "services.*.deploy.placement.preferences": (f"{CV}[deploy]",
                                                f"{SCHEDULER}[spread over zones, not nodes: a(2 nodes) b(1 node) -> 3/3]"),
    "services.*.deploy.placement.max_replicas_per_node": (f"{CV}[deploy]", f"{SCHEDULER}[max_replicas_per_node]"),
    "services.*.healthcheck.test": (f"{CV}[healthcheck]", ENGINE),
    "services.*.healthcheck.interval": (f"{CV}[healthcheck]", ENGINE),
    "services.*.healthcheck.timeout": (f"{CV}[healthcheck]", ENGINE),
    "services.*.healthcheck.start_period": (f"{CV}[healthcheck]", ENGINE),
    "services.*.healthcheck.retries": (f"{CV}[healthcheck]", ENGINE),
    "services.*.healthcheck.disable": (f"{CV}[healthcheck list and NONE]", f"{TRANSLATE}::test_healthcheck"),
    # ---- ports and volumes (issue 11): each proven on the real engine
    "services.*.ports.[].target": (f"{CV}[ports long]", PORTS),
    "services.*.ports.[].published": (f"{CV}[ports long]", PORTS),
    "services.*.ports.[].protocol": (f"{CV}[ports long]", PORTS),
    "services.*.ports.[].host_ip": (f"{CV}[ports long]", PORTS),
    "services.*.ports.[].mode": (
        "tests/unit/test_compose_volumes.py::test_ports_mode_host_is_kept_and_ingress_is_refused_at_its_key", PORTS),
    "services.*.volumes.[].type": (f"{CV}[volumes long and tmpfs]", MOUNTS),
    "services.*.volumes.[].source": (f"{CV}[volumes long options]", MOUNTS),
    "services.*.volumes.[].target": (f"{CV}[volumes long options]", MOUNTS),
    "services.*.volumes.[].read_only": (f"{CV}[volumes long and tmpfs]", MOUNTS),
    "services.*.volumes.[].bind.propagation": (f"{CV}[volumes long options]", MOUNTS),
    "services.*.volumes.[].bind.create_host_path": (f"{CV}[volumes long options]", MOUNTS),
    "services.*.volumes.[].bind.selinux": (f"{CV}[volumes long options]", MOUNTS),
    "services.*.volumes.[].bind.recursive": (f"{CV}[volumes long options]", MOUNTS),
    "services.*.volumes.[].volume.nocopy": (f"{CV}[volumes long options]", MOUNTS),
    "services.*.volumes.[].volume.labels": (f"{CV}[volumes long options]", MOUNTS),
    "services.*.volumes.[].tmpfs.size": (f"{CV}[volumes long options]", MOUNTS),
    "services.*.volumes.[].tmpfs.mode": (f"{CV}[volumes long options]", MOUNTS),
    "volumes.*.driver": (
        "tests/unit/test_compose_volumes.py::test_each_named_mount_carries_its_definition_unless_it_is_only_a_name",
        DEFINITIONS, f"{VOLUMES}::test_a_driver_the_node_lacks_fails_naming_the_driver_the_volume_and_the_node"),
    "volumes.*.driver_opts": (
        "tests/unit/test_compose_volumes.py::test_each_named_mount_carries_its_definition_unless_it_is_only_a_name",
        DEFINITIONS, f"{VOLUMES}::test_options_the_driver_refuses_fail_with_the_drivers_reason",
        f"{VOLUMES}::test_an_existing_volume_with_other_options_is_refused_not_silently_used"),
    "volumes.*.labels": (
        "tests/unit/test_compose_volumes.py::test_labels_ccs_sets_itself_are_warned_about", DEFINITIONS),
    "volumes.*.name": (
        "tests/unit/test_compose_volumes.py::test_each_named_mount_carries_its_definition_unless_it_is_only_a_name",
        DEFINITIONS, f"{VOLUMES}::test_a_missing_external_volume_is_never_created_and_is_used_once_it_exists"),
    "volumes.*.external": (
        f"{VOLUMES}::test_a_missing_external_volume_is_never_created_and_is_used_once_it_exists", EXTERNAL),
    # ---- Compose keys users hit (issue 11, branch i11-keys): each proven on the real engine
    "services.*.cap_drop": (f"{CK}[cap_drop]", NARROW),
    "services.*.cap_add": (f"{CK}[cap_add of a default capability]", NARROW, PRIVILEGED, POLICY),
    "services.*.security_opt": (
        f"{CK}[narrowing security_opt]", NARROW, PRIVILEGED,
        f"{KEYS_DOCKER}::test_what_the_node_cannot_honour_fails_the_container_naming_the_option"),
    "services.*.read_only": (f"{CK}[read_only]", NARROW),
    "services.*.ulimits": (f"{CK}[ulimits single and soft/hard]", NARROW),
    "services.*.shm_size": (f"{CK}[shm_size]", NARROW),
    "services.*.sysctls": (f"{CK}[namespaced sysctls, map]", NARROW),
    "services.*.extra_hosts": (f"{CK}[extra_hosts list and map]", NARROW),
    "services.*.dns": (
        f"{CK}[dns list]", NARROW,
        "tests/unit/test_agent_e2e.py::test_a_containers_compose_dns_servers_are_its_resolver_upstreams"),
    "services.*.dns_opt": (f"{CK}[dns_opt]", NARROW),
    "services.*.dns_search": (f"{CK}[dns_search]", NARROW),
    "services.*.group_add": (f"{CK}[group_add]", NARROW),
    "services.*.tmpfs": (f"{CK}[tmpfs with options]", NARROW),
    "services.*.init": (f"{CK}[init]", NARROW),
    "services.*.mem_limit": (f"{CK}[legacy resources]", NARROW),
    "services.*.mem_reservation": (f"{CK}[legacy resources]", NARROW),
    "services.*.cpus": (f"{CK}[legacy resources]", NARROW),
    "services.*.cpu_shares": (f"{CK}[legacy resources]", NARROW),
    "services.*.pids_limit": (f"{CK}[legacy resources]", NARROW),
    "services.*.oom_score_adj": (f"{CK}[oom_score_adj positive]", NARROW, PRIVILEGED),
    "services.*.privileged": (PRIV_SPEC, PRIVILEGED, POLICY),
    "services.*.devices": (PRIV_SPEC, PRIVILEGED, POLICY),
    "services.*.pid": (PRIV_SPEC, PRIVILEGED, POLICY,
                       "tests/integration/test_cluster_policy_agent.py::test_policy_and_profiles_through_the_server_and_agent"),
    "services.*.network_mode": (PRIV_SPEC, PRIVILEGED, POLICY),
    "services.*.profiles": (
        "tests/unit/test_compose_container_keys.py::test_profiles_choose_the_services",
        "tests/integration/test_cluster_policy.py::test_profiles_are_chosen_kept_replaced_cleared_and_rolled_back",
        "tests/integration/test_cluster_policy_agent.py::test_policy_and_profiles_through_the_server_and_agent"),
    # ---- networks (issue 11): each Compose network is a network of its own across the nodes
    "services.*.networks": (
        f"{NETS}::test_each_network_and_each_services_networks_are_kept_in_template_order",
        "tests/unit/test_reconcile_subnets.py::test_each_compose_network_gets_its_own_block_per_node",
        f"{TRANSLATE}::test_a_container_joins_each_of_its_services_networks_in_template_order",
        f"{DOCKER_NETS}::test_a_container_joins_every_network_of_its_service_before_it_starts", E2E_ISOLATION),
    "services.*.networks.*.aliases": (
        f"{NETS}::test_each_network_and_each_services_networks_are_kept_in_template_order",
        "tests/unit/test_netmap.py::test_aliases_answer_what_the_service_answers_on_their_own_network",
        E2E_ISOLATION),
    "networks.*.driver": (f"{NETS}::test_each_network_and_each_services_networks_are_kept_in_template_order",
                          f"{NETS}::test_what_ccs_cannot_honour_is_refused_naming_the_field[driver macvlan]",
                          E2E_ISOLATION),
    "networks.*.internal": (
        f"{NETS}::test_each_network_and_each_services_networks_are_kept_in_template_order",
        "tests/unit/test_netmap.py::test_internal_is_each_networks_own_flag",
        "tests/unit/test_network_rules.py::test_internal_drops_what_leaves_its_own_blocks_not_its_members",
        f"{E2E}::test_an_internal_network_has_no_egress"),
    "networks.*.external": (
        f"{NETS}::test_an_external_network_joins_the_cluster_network_named_by_name_or_by_its_key",
        f"{NETWORK_API}::test_a_template_joining_a_missing_cluster_network_is_refused_naming_the_field_and_the_fix",
        f"{E2E}::test_two_applications_share_a_cluster_network_on_purpose"),
    "networks.*.name": (f"{NETS}::test_an_external_network_joins_the_cluster_network_named_by_name_or_by_its_key",
                        f"{NETS}::test_what_ccs_cannot_honour_is_refused_naming_the_field[name without external]"),
    "networks.*.attachable": (f"{NETS}::test_each_network_and_each_services_networks_are_kept_in_template_order",
                              f"{NETS}::test_what_ccs_cannot_honour_is_refused_naming_the_field[attachable]"),
    "networks.*.enable_ipv4": (f"{NETS}::test_each_network_and_each_services_networks_are_kept_in_template_order",
                               f"{NETS}::test_what_ccs_cannot_honour_is_refused_naming_the_field[ipv4 off]"),
    "networks.*.enable_ipv6": (f"{NETS}::test_each_network_and_each_services_networks_are_kept_in_template_order",
                               f"{NETS}::test_what_ccs_cannot_honour_is_refused_naming_the_field[ipv6]"),
    "secrets.*.file": (f"{DEFS}[file]", SECRETS_API, SECRET_FILES),
    "secrets.*.environment": (f"{DEFS}[environment]", SECRETS_API),
    "secrets.*.external": (GRANTS, SECRETS_API, SECRET_FILES),
    "secrets.*.name": (GRANTS, SECRETS_API),
    "configs.*.file": (f"{DEFS}[config file]", SECRETS_API),
    "configs.*.environment": (f"{DEFS}[config environment]", SECRETS_API),
    "configs.*.content": (f"{DEFS}[config content]", SECRET_FILES),
    "configs.*.external": (GRANTS, SECRETS_API),
    "configs.*.name": (GRANTS, SECRETS_API),
    "services.*.secrets.[].source": (GRANTS, SECRET_FILES),
    "services.*.secrets.[].target": (GRANTS, SECRET_FILES),
    "services.*.secrets.[].uid": (GRANTS, SECRET_FILES),
    "services.*.secrets.[].gid": (GRANTS, SECRET_FILES),
    "services.*.secrets.[].mode": (GRANTS, SECRET_FILES),
    "services.*.configs.[].source": (GRANTS, SECRET_FILES),
    "services.*.configs.[].target": (GRANTS, SECRET_FILES),
    "services.*.configs.[].uid": (GRANTS, SECRET_FILES),
    "services.*.configs.[].gid": (GRANTS, SECRET_FILES),
    "services.*.configs.[].mode": (GRANTS, SECRET_FILES),
}

#: Supported keys whose value is only a mapping of keys with rules of their own (a scope of the
#: table): their effect is their keys' effects.
STRUCTURAL = frozenset({
    "services", "volumes", "networks", "services.*.deploy", "services.*.deploy.placement", "services.*.deploy.resources",
    "services.*.deploy.resources.limits", "services.*.deploy.resources.reservations", "services.*.healthcheck",
    "services.*.volumes.[].bind", "services.*.volumes.[].volume", "services.*.volumes.[].tmpfs",
    "secrets", "configs", "services.*.secrets", "services.*.configs",
})

#: pending: keys owned by issue 11 branches still being merged; allowed here in any state until the
#: lead, after merging, moves each to PROOFS (or leaves it refused). Empty: every branch is in.
PENDING_OTHER_BRANCHES: frozenset[str] = frozenset()

#: The keys this module holds to the real engine: their proofs include a docker-inspect test.
ENGINE_PROVEN_PREFIXES = ("volumes.*.", "services.*.volumes.[].", "services.*.ports.[].")
ENGINE_PROOF_FILES = (VOLUMES, EXTERNAL.split("::")[0])
#: The container keys of issue 11 ("Compose keys that users hit"), held to the real engine too.
CONTAINER_KEYS = frozenset({
    "services.*.cap_drop", "services.*.cap_add", "services.*.security_opt", "services.*.read_only",
    "services.*.ulimits", "services.*.shm_size", "services.*.sysctls", "services.*.extra_hosts",
    "services.*.dns", "services.*.dns_opt", "services.*.dns_search", "services.*.group_add",
    "services.*.tmpfs", "services.*.init", "services.*.mem_limit", "services.*.mem_reservation",
    "services.*.cpus", "services.*.cpu_shares", "services.*.pids_limit", "services.*.oom_score_adj",
    "services.*.privileged", "services.*.devices", "services.*.pid", "services.*.network_mode",
})


def _supported() -> set[str]:
    return {k for k, r in RULES.items() if r.action is Action.SUPPORTED}


def test_every_supported_key_has_a_proof() -> None:
    missing = sorted(_supported() - set(PROOFS) - STRUCTURAL - PENDING_OTHER_BRANCHES)
    assert not missing, f"supported keys with no test named for their effect: {missing}"


def test_proofs_and_structure_name_only_supported_keys() -> None:
    stale = sorted((set(PROOFS) | STRUCTURAL) - _supported())
    assert not stale, f"listed as proven or structural but not supported by the table: {stale}"
    assert not (set(PROOFS) & PENDING_OTHER_BRANCHES), "a key is either proven here or pending"


def test_structural_keys_are_scopes_of_the_table() -> None:
    scopes = {".".join(s[:-1]) if s and s[-1] in ("*", "[]") else ".".join(s) for s in SCOPES}
    assert sorted(STRUCTURAL - scopes) == []


@functools.cache
def _test_names(path: str) -> frozenset[str]:
    tree = ast.parse((ROOT / path).read_text())
    return frozenset(n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))


@pytest.mark.parametrize("key", sorted(PROOFS))
def test_each_named_proof_exists(key: str) -> None:
    for ref in PROOFS[key]:
        path, _, name = ref.partition("::")
        function, _, param = name.partition("[")
        assert (ROOT / path).is_file(), f"{key}: no file {path}"
        assert function in _test_names(path), f"{key}: no test {function} in {path}"
        if param:
            assert param[:-1] in (ROOT / path).read_text(), f"{key}: no case {param[:-1]!r} in {path}"


@pytest.mark.parametrize("key", [k for k in sorted(PROOFS) if k.startswith(ENGINE_PROVEN_PREFIXES)])
def test_volume_and_port_keys_are_proven_on_the_real_engine(key: str) -> None:
    assert any(ref.startswith(ENGINE_PROOF_FILES) for ref in PROOFS[key]), PROOFS[key]


@pytest.mark.parametrize("key", sorted(CONTAINER_KEYS))
def test_container_keys_are_proven_on_the_real_engine(key: str) -> None:
    assert any(ref.startswith(KEYS_DOCKER) for ref in PROOFS.get(key, ())), PROOFS.get(key)


def _doc_with(parts: list[str]) -> Any:
    """A document holding the key at `parts` (``*`` -> a name, ``[]`` -> a list item)."""
    if not parts:
        return "value"
    head, rest = parts[0], parts[1:]
    if head == "*":
        return {"x": _doc_with(rest)}
    if head == "[]":
        return [_doc_with(rest)]
    return {head: _doc_with(rest)}


def _where(key: str) -> str:
    return format_path(tuple(0 if p == "[]" else "x" if p == "*" else p for p in key.split(".")))


@pytest.mark.parametrize("key", sorted(k for k, r in RULES.items()
                                       if r.action is Action.REFUSE and k not in PENDING_OTHER_BRANCHES))
def test_every_refused_key_is_refused_with_its_path_and_reason(key: str) -> None:
    diag = Diagnostics()
    check_support(_doc_with(key.split(".")), diag)
    assert [str(e) for e in diag.errors] == [f"{_where(key)}: is not supported: {RULES[key].reason}"]


@pytest.mark.parametrize("key", sorted(k for k, r in RULES.items()
                                       if r.action is Action.WARN and k not in PENDING_OTHER_BRANCHES))
def test_every_warned_key_is_warned_about_with_its_path_and_reason(key: str) -> None:
    diag = Diagnostics()
    check_support(_doc_with(key.split(".")), diag)
    assert diag.errors == [] and diag.warnings == [f"{_where(key)}: ignored: {RULES[key].reason}"]
