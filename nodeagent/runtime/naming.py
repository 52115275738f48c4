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


def network_name(cluster: str, app: str, network: str = DEFAULT_NETWORK, index: int = 0) -> str:
    """The bridge of one block (`index`, `Container.subnet_index`) of one Compose network of an
    application on this node.

    `ccs-<cluster>-<app>` for "default" (the name every release before per-network bridges
    gave the application's one network, so its bridges and containers stay as they are), and
    `ccs-<cluster>-<app>_<network>` for the others, Compose's `<project>_<network>`. An
    application name never holds `_` (DNS-label style), so the two never meet, and a Compose
    network name holds only [a-zA-Z0-9._-], which an engine name allows after the prefix, so it
    is kept whole and read back exactly (`compose_network`).

    A network whose first block filled has further blocks on the node, a bridge each (a bridge
    has one subnet): block `index` >= 1 is `ccs-<cluster>-<app>.<index>` for "default" and
    `ccs-<cluster>-<app>.<index>_<network>` for the others. The first block keeps the name
    above, so nothing is renamed on upgrade; an application or cluster name never holds `.`
    (DNS-label style), so no other application's bridge can have these names.
    """
    base = f"ccs-{_safe(cluster)}-{_safe(app)}"
    if index:
        base = f"{base}.{index}"
    return base if network == DEFAULT_NETWORK else f"{base}_{_UNSAFE.sub('-', network)}"


def compose_network(cluster: str, app: str, engine_name: str) -> str | None:
    """The Compose network an engine network of the application stands for, or None when it is
    not one of the application's (`network_name` read backwards, whatever its block).

    What the agent reports a container's addresses under (`ContainerStatus.addresses`), so
    that the control plane and every node's resolver speak of networks as the template does
    ("default", "front"), never of engine names or blocks.
    """
    base = network_name(cluster, app)
    rest = engine_name[len(base):] if engine_name.startswith(base) else None
    if rest is None:
        return None
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


def volume_name(app: str, volume: str) -> str:
    """The engine name of a Compose named volume: scoped to its app like Compose's project."""
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
