"""What ccs does with each Compose key: the single source for behaviour *and* README text.

Every key the Compose schema allows in the scopes below has a rule. A key is either
*supported* (converted into the ServiceSpec), *ignored with a warning* (it cannot change what the
application does on ccs, or its effect is only local-development comfort), or *refused* (ignoring
it would silently run the application differently from what the template asks, or weaker
security than asked, so the user must decide). A key present in a template but missing from this
table is refused, so a newer Compose schema can never lead to silent loss.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from controlplane.compose.errors import Diagnostics, Path


class Action(enum.StrEnum):
    SUPPORTED = "supported"
    WARN = "ignored, with a warning"
    REFUSE = "refused"


@dataclass(frozen=True)
class Rule:
    action: Action
    reason: str = ""


S, W, R = Action.SUPPORTED, Action.WARN, Action.REFUSE
_DRIVER = "ccs stores secrets and configs itself (encrypted in etcd); no other store or driver is used"
_REPLICAS = "a fixed value conflicts with running several replicas"
_RESOURCES = "not implemented; use deploy.resources.{limits,reservations} (cpus, memory, pids)"
_HOST = "shares or changes host-level isolation; ccs does not grant that to a service"
_NOT_YET = "not implemented; ignoring it could break the application at run time"
_POLICY = "under the cluster's policy (`ccs cluster update C --allow ...`)"
_LEGACY = "same as its deploy.resources twin; both set and different is refused"

# Scopes are paths with "*" for any name and "[]" for any list item (long-syntax entries).
SCOPES: tuple[tuple[str, ...], ...] = (
    (),
    ("services", "*"),
    ("services", "*", "deploy"),
    ("services", "*", "deploy", "resources"),
    ("services", "*", "deploy", "resources", "limits"),
    ("services", "*", "deploy", "resources", "reservations"),
    ("services", "*", "deploy", "placement"),
    ("services", "*", "healthcheck"),
    ("services", "*", "ports", "[]"),
    ("services", "*", "volumes", "[]"),
    ("services", "*", "volumes", "[]", "bind"),
    ("services", "*", "volumes", "[]", "volume"),
    ("services", "*", "volumes", "[]", "tmpfs"),
    ("services", "*", "networks", "*"),
    ("volumes", "*"),
    ("networks", "*"),
    ("secrets", "*"),
    ("configs", "*"),
    ("services", "*", "secrets", "[]"),
    ("services", "*", "configs", "[]"),
)

RULES: dict[str, Rule] = {
    # ---- top level
    "version": Rule(W, "obsolete in the Compose specification"),
    "name": Rule(W, "the application name comes from `ccs app deploy --name` (default: the directory name)"),
    "include": Rule(R, "templates must be self-contained; other files are not bundled"),
    "services": Rule(S),
    "networks": Rule(S),
    "volumes": Rule(S),
    "secrets": Rule(S, "stored encrypted, versioned; see Secrets and configs"),
    "configs": Rule(S, "stored like secrets; readable with `ccs config get`"),
    "x-ccs": Rule(S, "ccs extension: registry (the cluster's registry login the application's images use)"),
    "models": Rule(W, "AI model definitions are unused by ccs"),
    # ---- services.*
    "services.*.image": Rule(S),
    "services.*.build": Rule(
        S,
        "built and pushed by the CLI with `--build` (the server receives image: instead); without it, "
        "refused without image: and ignored with a warning when image: is set",
    ),
    "services.*.command": Rule(S),
    "services.*.entrypoint": Rule(S),
    "services.*.environment": Rule(S),
    "services.*.env_file": Rule(S, "the CLI bundles the files; `format:` is refused"),
    "services.*.ports": Rule(S),
    "services.*.expose": Rule(S),
    "services.*.volumes": Rule(S),
    "services.*.tmpfs": Rule(S, "with mount options (size, mode, uid, gid, noexec, ...)"),
    "services.*.labels": Rule(S),
    "services.*.healthcheck": Rule(S),
    "services.*.restart": Rule(S),
    "services.*.depends_on": Rule(S),
    "services.*.networks": Rule(S),
    "services.*.stop_grace_period": Rule(S),
    "services.*.stop_signal": Rule(S),
    "services.*.user": Rule(S),
    "services.*.working_dir": Rule(S),
    "services.*.hostname": Rule(S),
    "services.*.deploy": Rule(S),
    "services.*.scale": Rule(S, "same as deploy.replicas"),
    "services.*.pull_policy": Rule(
        S, "always -> pull on every start; missing/if_not_present is the default; others are refused"
    ),
    "services.*.container_name": Rule(
        W, "ccs names containers itself (<app>-<service>-<slot>), as Docker Swarm does; reach a "
        "service by its service name on the application network"
    ),
    "services.*.privileged": Rule(S, _POLICY),
    "services.*.cap_add": Rule(S, "the engine's default capabilities freely, others " + _POLICY),
    "services.*.cap_drop": Rule(S),
    "services.*.security_opt": Rule(
        S, "no-new-privileges, seccomp=/path/on/node.json, apparmor=PROFILE; unconfined, label=disable, "
        "systempaths=unconfined and no-new-privileges=false " + _POLICY + "; other SELinux labels are refused"
    ),
    "services.*.read_only": Rule(S),
    "services.*.devices": Rule(S, "device paths " + _POLICY + "; CDI names are refused"),
    "services.*.device_cgroup_rules": Rule(R, _HOST),
    "services.*.network_mode": Rule(
        S, "host only, " + _POLICY + " (without ports, expose, networks or routes); none/service/container "
        "modes are refused: services join the application's networks"
    ),
    "services.*.pid": Rule(S, "host only, " + _POLICY),
    "services.*.ipc": Rule(R, _HOST),
    "services.*.uts": Rule(R, _HOST),
    "services.*.userns_mode": Rule(R, _HOST),
    "services.*.cgroup": Rule(R, _HOST),
    "services.*.cgroup_parent": Rule(R, _HOST),
    "services.*.use_api_socket": Rule(R, _HOST),
    "services.*.sysctls": Rule(
        S, "namespaced ones (net.*, kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*); others would set "
        "the node's kernel, which the engine refuses for every container"
    ),
    "services.*.ulimits": Rule(S),
    "services.*.shm_size": Rule(S),
    "services.*.extra_hosts": Rule(S),
    "services.*.dns": Rule(S),
    "services.*.dns_opt": Rule(S),
    "services.*.dns_search": Rule(S),
    "services.*.group_add": Rule(S),
    "services.*.storage_opt": Rule(R, _NOT_YET),
    "services.*.runtime": Rule(R, _NOT_YET),
    "services.*.isolation": Rule(R, _NOT_YET),
    "services.*.gpus": Rule(R, _NOT_YET),
    "services.*.post_start": Rule(R, _NOT_YET),
    "services.*.pre_stop": Rule(R, _NOT_YET),
    "services.*.volumes_from": Rule(R, "containers of a service may run on different nodes"),
    "services.*.secrets": Rule(S, "a file on a tmpfs of the node, bind-mounted read-only (default /run/secrets/KEY)"),
    "services.*.configs": Rule(S, "a file on a tmpfs of the node, bind-mounted read-only (default /KEY)"),
    "services.*.models": Rule(R, "AI models are not provided by ccs"),
    "services.*.provider": Rule(R, "provider services are not supported"),
    "services.*.extends": Rule(R, "not implemented; write the service out in full"),
    "services.*.profiles": Rule(S, "chosen with `--profile` on deploy and update, kept until changed"),
    "services.*.label_file": Rule(R, "label files are not bundled; write labels inline"),
    "services.*.mac_address": Rule(R, _REPLICAS),
    "services.*.credential_spec": Rule(R, "Windows only"),
    "services.*.blkio_config": Rule(R, _RESOURCES),
    "services.*.cpu_count": Rule(R, _RESOURCES),
    "services.*.cpu_percent": Rule(R, _RESOURCES),
    "services.*.cpu_shares": Rule(S),
    "services.*.cpu_quota": Rule(R, _RESOURCES),
    "services.*.cpu_period": Rule(R, _RESOURCES),
    "services.*.cpu_rt_period": Rule(R, _RESOURCES),
    "services.*.cpu_rt_runtime": Rule(R, _RESOURCES),
    "services.*.cpus": Rule(S, _LEGACY),
    "services.*.cpuset": Rule(R, _RESOURCES),
    "services.*.mem_limit": Rule(S, _LEGACY),
    "services.*.mem_reservation": Rule(S, _LEGACY),
    "services.*.mem_swappiness": Rule(R, _RESOURCES),
    "services.*.memswap_limit": Rule(
        R, "engines on kernels without swap accounting drop it silently; use deploy.resources.limits.memory"
    ),
    "services.*.oom_kill_disable": Rule(R, _RESOURCES),
    "services.*.oom_score_adj": Rule(S, "0 to 1000; a negative value " + _POLICY),
    "services.*.pids_limit": Rule(S, _LEGACY),
    "services.*.links": Rule(W, "services reach each other by name on the application network"),
    "services.*.external_links": Rule(W, "services reach each other by name on the application network"),
    "services.*.logging": Rule(W, "containers use the node's Docker default log driver"),
    "services.*.platform": Rule(W, "each node pulls the image variant for its own platform"),
    "services.*.stdin_open": Rule(W, "ccs containers have no interactive terminal"),
    "services.*.tty": Rule(W, "ccs containers have no interactive terminal"),
    "services.*.init": Rule(S),
    "services.*.attach": Rule(W, "ccs does not attach to container output"),
    "services.*.develop": Rule(W, "compose watch is a local-development feature"),
    "services.*.annotations": Rule(W, "OCI annotations are not passed to containers"),
    "services.*.domainname": Rule(W, "containers use the cluster's DNS domain"),
    "services.*.pull_refresh_after": Rule(W, "use pull_policy: always or aliyun.latest_image"),
    "services.*.x-ccs": Rule(
        S, "ccs extension: strategy, routes (tls: a certificate secret per domain), session_sticky, always_pull, "
        "probe, replace_unhealthy, on_node_loss"),
    # ---- services.*.deploy
    "services.*.deploy.mode": Rule(S),
    "services.*.deploy.replicas": Rule(S, "at most 1000"),
    "services.*.deploy.placement": Rule(S),
    "services.*.deploy.resources": Rule(S),
    "services.*.deploy.restart_policy": Rule(S),
    "services.*.deploy.update_config": Rule(S),
    "services.*.deploy.rollback_config": Rule(S),
    "services.*.deploy.endpoint_mode": Rule(W, "the ccs router balances requests itself"),
    "services.*.deploy.labels": Rule(W, "service-level labels are not kept; use labels:"),
    "services.*.deploy.resources.limits": Rule(S),
    "services.*.deploy.resources.reservations": Rule(S),
    "services.*.deploy.resources.limits.cpus": Rule(S),
    "services.*.deploy.resources.limits.memory": Rule(S),
    "services.*.deploy.resources.limits.pids": Rule(S),
    "services.*.deploy.resources.reservations.cpus": Rule(S),
    "services.*.deploy.resources.reservations.memory": Rule(S),
    "services.*.deploy.resources.reservations.generic_resources": Rule(R, _NOT_YET),
    "services.*.deploy.resources.reservations.devices": Rule(R, _NOT_YET),
    "services.*.deploy.placement.constraints": Rule(S),
    "services.*.deploy.placement.preferences": Rule(S, "spread only"),
    "services.*.deploy.placement.max_replicas_per_node": Rule(S),
    # ---- services.*.healthcheck
    "services.*.healthcheck.test": Rule(S),
    "services.*.healthcheck.interval": Rule(S),
    "services.*.healthcheck.timeout": Rule(S),
    "services.*.healthcheck.start_period": Rule(S),
    "services.*.healthcheck.retries": Rule(S),
    "services.*.healthcheck.disable": Rule(S),
    "services.*.healthcheck.start_interval": Rule(W, "the interval applies during the start period too"),
    # ---- long-syntax ports
    "services.*.ports.[].target": Rule(S),
    "services.*.ports.[].published": Rule(S),
    "services.*.ports.[].protocol": Rule(S, "tcp or udp"),
    "services.*.ports.[].host_ip": Rule(S),
    "services.*.ports.[].mode": Rule(
        S, "host (what ccs does: publish on the node running the container); ingress (Swarm's routing "
        "mesh) is refused: route HTTP through the routers with x-ccs.routes or aliyun.routing"
    ),
    "services.*.ports.[].name": Rule(W, "descriptive only"),
    "services.*.ports.[].app_protocol": Rule(W, "descriptive only; use x-ccs.routes for HTTP"),
    # ---- long-syntax volumes
    "services.*.volumes.[].type": Rule(S, "volume, bind or tmpfs; others are refused"),
    "services.*.volumes.[].source": Rule(S),
    "services.*.volumes.[].target": Rule(S),
    "services.*.volumes.[].read_only": Rule(S),
    "services.*.volumes.[].consistency": Rule(W, "macOS-only tuning"),
    "services.*.volumes.[].bind": Rule(S, "on bind mounts only"),
    "services.*.volumes.[].volume": Rule(S, "on volume mounts only"),
    "services.*.volumes.[].tmpfs": Rule(S, "on tmpfs mounts only"),
    "services.*.volumes.[].image": Rule(R, _NOT_YET),
    "services.*.volumes.[].bind.propagation": Rule(S),
    "services.*.volumes.[].bind.create_host_path": Rule(
        S, "true creates a missing host path (the short syntax implies it, as in Compose)"
    ),
    "services.*.volumes.[].bind.selinux": Rule(S, "needs create_host_path: true"),
    "services.*.volumes.[].bind.recursive": Rule(
        S, "enabled or disabled (not with create_host_path); writable and readonly need a newer engine "
        "and are refused"
    ),
    "services.*.volumes.[].volume.nocopy": Rule(S),
    "services.*.volumes.[].volume.subpath": Rule(R, _NOT_YET),
    "services.*.volumes.[].volume.labels": Rule(
        S, "for anonymous volumes; a named volume is labelled in its top-level definition (refused here)"
    ),
    "services.*.volumes.[].tmpfs.size": Rule(S),
    "services.*.volumes.[].tmpfs.mode": Rule(S, "a string is octal ('1777')"),
    # ---- per-service network attachment
    "services.*.networks.*.aliases": Rule(S),
    "services.*.networks.*.ipv4_address": Rule(R, _REPLICAS),
    "services.*.networks.*.ipv6_address": Rule(R, _REPLICAS),
    "services.*.networks.*.mac_address": Rule(R, _REPLICAS),
    "services.*.networks.*.link_local_ips": Rule(R, _REPLICAS),
    "services.*.networks.*.interface_name": Rule(W, "Docker names the interfaces"),
    "services.*.networks.*.priority": Rule(W, "networks are attached in template order"),
    "services.*.networks.*.gw_priority": Rule(
        W, "the default route goes via the first of the service's networks, in template order, that is not internal"
    ),
    "services.*.networks.*.driver_opts": Rule(W, "driver options are not passed"),
    # ---- top-level volumes and networks
    "volumes.*.driver": Rule(S, "a driver missing on the node fails the container, naming it"),
    "volumes.*.external": Rule(
        S, "the volume must exist on the node; a container stays pending where it is missing"
    ),
    "volumes.*.labels": Rule(S, "ccs's own labels (ccs.*) win on a clash"),
    "volumes.*.name": Rule(
        S, "the engine's name for the volume (default ccs-<cluster>_<app>_<key>); ccs- names only when external"
    ),
    "volumes.*.driver_opts": Rule(S, "passed to the driver, e.g. a local NFS or tmpfs volume"),
    "secrets.*.file": Rule(S, "a file bundled with the template; stored as <app>_<key>, a new version when it changes"),
    "secrets.*.environment": Rule(S, "a deploy parameter (`--env`); stored as <app>_<key>"),
    "secrets.*.external": Rule(S, "made with `ccs secret create`; a missing one is refused at deploy"),
    "secrets.*.name": Rule(S, "with external: the stored name, NAME@N pins version N; otherwise refused"),
    "secrets.*.labels": Rule(R, "secrets carry no labels in ccs; refused rather than dropped"),
    "secrets.*.driver": Rule(R, _DRIVER),
    "secrets.*.driver_opts": Rule(R, _DRIVER),
    "secrets.*.template_driver": Rule(R, "templated secret values are not implemented"),
    "configs.*.file": Rule(S, "a file bundled with the template; stored as <app>_<key>, a new version when it changes"),
    "configs.*.environment": Rule(S, "a deploy parameter (`--env`); stored as <app>_<key>"),
    "configs.*.content": Rule(S, "inline value; stored as <app>_<key>"),
    "configs.*.external": Rule(S, "made with `ccs config create`; a missing one is refused at deploy"),
    "configs.*.name": Rule(S, "with external: the stored name, NAME@N pins version N; otherwise refused"),
    "configs.*.labels": Rule(R, "configs carry no labels in ccs; refused rather than dropped"),
    "configs.*.driver": Rule(R, _DRIVER),
    "configs.*.driver_opts": Rule(R, _DRIVER),
    "configs.*.template_driver": Rule(R, "templated config values are not implemented"),
    "services.*.secrets.[].source": Rule(S, "the top-level key"),
    "services.*.secrets.[].target": Rule(S, "absolute, or relative to /run/secrets"),
    "services.*.secrets.[].uid": Rule(S, "owner of the file (default 0)"),
    "services.*.secrets.[].gid": Rule(S, "group of the file (default 0)"),
    "services.*.secrets.[].mode": Rule(S, "permission bits (default 0444)"),
    "services.*.configs.[].source": Rule(S, "the top-level key"),
    "services.*.configs.[].target": Rule(S, "absolute, or relative to /"),
    "services.*.configs.[].uid": Rule(S, "owner of the file (default 0)"),
    "services.*.configs.[].gid": Rule(S, "group of the file (default 0)"),
    "services.*.configs.[].mode": Rule(S, "permission bits (default 0444)"),
    "networks.*.driver": Rule(
        S, "bridge or overlay: both mean the ccs network across the nodes; other drivers are refused"
    ),
    "networks.*.external": Rule(
        S, "joins a cluster network made with `ccs network create`, shared with the other applications on it; "
        "a missing one is refused at deploy"
    ),
    "networks.*.internal": Rule(S, "no traffic out of the network (the nodes' firewalls drop it)"),
    "networks.*.name": Rule(
        S, "with external: the cluster network joined; otherwise refused (ccs names each application's networks)"
    ),
    "networks.*.labels": Rule(
        R, "ccs makes each network's bridges on the nodes itself and labels them with its own labels"
    ),
    "networks.*.attachable": Rule(
        S, "false only: an application's networks hold its own containers; share one with external: true"
    ),
    "networks.*.enable_ipv4": Rule(S, "true only: ccs networks are IPv4 networks"),
    "networks.*.enable_ipv6": Rule(S, "false only: ccs networks are IPv4 only"),
    "networks.*.driver_opts": Rule(
        R, "the agents make the bridges with the control plane's subnets; driver options would hold on one "
        "node's bridge, not on the network across the nodes"
    ),
    "networks.*.ipam": Rule(
        R, "ccs allocates subnets itself; fixed subnets cannot be honoured on every node"
    ),
}

_UNKNOWN = Rule(R, "not supported by ccs")


def _walk(node: Any, scope: tuple[str, ...], path: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    if not scope:
        if isinstance(node, dict):
            yield path, node
        return
    head, rest = scope[0], scope[1:]
    if head == "*" and isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, rest, (*path, key))
    elif head == "[]" and isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, rest, (*path, index))
    elif isinstance(node, dict) and head in node:
        yield from _walk(node[head], rest, (*path, head))


def check_support(doc: dict[str, Any], diag: Diagnostics) -> None:
    """Refuse or warn about every key the table says so; ``x-`` keys are the user's business."""
    for scope in SCOPES:
        prefix = ".".join(scope)
        for path, mapping in _walk(doc, scope, ()):
            for key in mapping:
                if key.startswith("x-") and key != "x-ccs":
                    continue
                rule = RULES.get(f"{prefix}.{key}" if prefix else key, _UNKNOWN)
                if rule.action is Action.REFUSE:
                    diag.error((*path, key), f"is not supported: {rule.reason}")
                elif rule.action is Action.WARN:
                    diag.warn((*path, key), f"ignored: {rule.reason}")


def support_table_markdown() -> str:
    """The README table: every key with what ccs does with it and why."""
    lines = ["| Compose key | ccs | why |", "|---|---|---|"]
    for key, rule in RULES.items():
        lines.append(f"| `{key}` | {rule.action.value} | {rule.reason} |")
    return "\n".join(lines)
