"""Names and labels of the engine objects ccs creates: pure functions, one place.

Labels are the agent's only memory that survives its own restart: every container, network and
volume carries `ccs.managed=true` plus its ccs identity, so `list_managed` can adopt what a
previous agent process left running, and app teardown can find what belongs to an app.
"""

from __future__ import annotations

import re

# The network a service that lists none is on, the key of its block in `Container.subnets`:
# one definition with the control plane.
from ccs.networks import DEFAULT_NETWORK as DEFAULT_NETWORK
from ccs.v1 import resources_pb2

MANAGED = "ccs.managed"
CLUSTER = "ccs.cluster"
APP = "ccs.app"
SERVICE = "ccs.service"
CONTAINER = "ccs.container"
CONTAINER_ID = "ccs.container-id"
GENERATION = "ccs.generation"
APP_REVISION = "ccs.app-revision"
VOLUME = "ccs.volume"  # the Compose volume name of a named volume
NETWORK = "ccs.network"  # the Compose network name of an application network
ANONYMOUS = "ccs.anonymous"  # "true" on volumes Docker makes for anonymous mounts


_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]+")


def _safe(part: str) -> str:
    """Docker object names allow [a-zA-Z0-9][a-zA-Z0-9_.-]*; map anything else to '-'."""
    return _UNSAFE.sub("-", part).strip("-.") or "x"


def container_name(c: resources_pb2.Container) -> str:
    """`ccs-<app>-<service>-<slot>-<id prefix>`: readable in `docker ps`, unique per ccs container.

    The id prefix makes two generations of the same slot (start-first updates) coexist.
    """
    short = _safe(c.meta.id)[:12]
    return f"ccs-{_safe(c.application)}-{_safe(c.service)}-{c.slot}-{short}"


_NOT_LABEL = re.compile(r"[^a-zA-Z0-9-]+")


def _label(part: str) -> str:
    """A cluster or application name as a part of an engine network name: DNS-label
    characters only (what the API accepts; anything else maps to '-'), so it never holds the
    '_' and '.' that separate the parts."""
    return _NOT_LABEL.sub("-", part).strip("-") or "x"


def network_name(cluster: str, app: str, network: str = DEFAULT_NETWORK, index: int = 0) -> str:
    """The bridge of one block (`index`, `Container.subnet_index`) of one Compose network of an
    application on this node.

    `ccs-<cluster>_<app>` for "default", `ccs-<cluster>_<app>_<network>` for the others
    (Compose's `<project>_<network>`), and for a further block `index` >= 1 (a network whose
    first block filled has a bridge per block: a bridge has one subnet)
    `ccs-<cluster>_<app>.<index>` and `ccs-<cluster>_<app>.<index>_<network>`.

    Why `_` between cluster and application: both are DNS labels ([a-z0-9-]), so the earlier
    `ccs-<cluster>-<app>` gave cluster `a-b` with app `c` and cluster `a` with app `b-c` the
    same bridge (`ccs-a-b-c`). Neither name can hold `_` or `.`, so the cluster ends at the
    first `_`, the application at the next `.` or `_`, and a Compose network name (only
    [a-zA-Z0-9._-], which an engine name allows after the prefix) is kept whole at the end and
    read back exactly (`compose_network`). The Linux interface is the engine's `br-<id>`, so
    the name's length is not bound by the 15 characters of an interface name. Bridges made
    under the earlier names are found by `legacy_network_name` and their labels, and adopted
    or replaced (`docker_networks.AppNetworks.ensure`).
    """
    base = f"ccs-{_label(cluster)}_{_label(app)}"
    if index:
        base = f"{base}.{index}"
    return base if network == DEFAULT_NETWORK else f"{base}_{_UNSAFE.sub('-', network)}"


def legacy_network_name(cluster: str, app: str, network: str = DEFAULT_NETWORK, index: int = 0) -> str:
    """The name `network_name` gave before it separated cluster and application with `_`
    (`ccs-<cluster>-<app>[.<index>][_<network>]`): ambiguous across clusters, so a bridge of
    that name is the application's only if its labels say so."""
    base = f"ccs-{_safe(cluster)}-{_safe(app)}"
    if index:
        base = f"{base}.{index}"
    return base if network == DEFAULT_NETWORK else f"{base}_{_UNSAFE.sub('-', network)}"


def compose_network(cluster: str, app: str, engine_name: str) -> str | None:
    """The Compose network an engine network of the application stands for, or None when it is
    not one of the application's (`network_name`, or `legacy_network_name`, read backwards,
    whatever its block).

    What the agent reports a container's addresses under (`ContainerStatus.addresses`), so
    that the control plane and every node's resolver speak of networks as the template does
    ("default", "front"), never of engine names or blocks.
    """
    for base in (network_name(cluster, app), legacy_network_name(cluster, app)):
        if engine_name.startswith(base):
            found = _compose_rest(engine_name[len(base):])
            if found is not None:
                return found
    return None


def _compose_rest(rest: str) -> str | None:
    """The Compose network from what follows an application's base name."""
    if rest.startswith("."):  # a further block: ".<index>" then "" or "_<network>"
        digits = rest[1:].split("_", 1)[0]
        if not digits.isdigit() or int(digits) < 1 or digits != str(int(digits)):
            return None
        rest = rest[1 + len(digits):]
    if rest == "":
        return DEFAULT_NETWORK
    if rest.startswith("_") and len(rest) > 1:
        return rest[1:]
    return None


def network_labels(cluster: str, app: str, network: str) -> dict[str, str]:
    """Labels on an application network's bridge: the app's, and its Compose network name."""
    return {**app_labels(cluster, app), NETWORK: network}


def volume_name(cluster: str, app: str, volume: str) -> str:
    """The engine name of a Compose named volume: `ccs-<cluster>_<app>_<volume>`, scoped to its
    application like Compose's `<project>_<volume>`.

    Why `_` separators, as in `network_name`: the earlier `ccs-<app>-<volume>` gave application
    `a-b` with volume `c` and application `a` with volume `b-c` the same volume, so one
    application mounted the other's data. Cluster and application names cannot hold `_`, so the
    cluster ends at the first `_` and the application at the second."""
    return f"ccs-{_safe(cluster)}_{_safe(app)}_{_safe(volume)}"


def legacy_volume_name(app: str, volume: str) -> str:
    """The name `volume_name` gave before (`ccs-<app>-<volume>`): ambiguous, so a volume of that
    name is the application's only if its labels say so (`docker_volumes.Volumes.ensure` adopts
    it then: its data stays where it is)."""
    return f"ccs-{_safe(app)}-{_safe(volume)}"


def app_labels(cluster: str, app: str) -> dict[str, str]:
    """Labels on app-level objects (network, volumes)."""
    return {MANAGED: "true", CLUSTER: cluster, APP: app}


def container_labels(c: resources_pb2.Container) -> dict[str, str]:
    """User labels from the spec, then the ccs labels, which always win."""
    labels = dict(c.spec.labels)
    labels.update(
        {
            MANAGED: "true",
            CLUSTER: c.cluster,
            APP: c.application,
            SERVICE: c.service,
            CONTAINER: c.meta.name,
            CONTAINER_ID: c.meta.id,
            GENERATION: str(c.spec_generation),
            APP_REVISION: str(c.app_revision),
        }
    )
    return labels
