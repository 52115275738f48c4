"""Key builders for the layout documented in :mod:`controlplane.store`. Pure functions."""

from __future__ import annotations

ROOT = "/ccs/"
CLUSTERS = "/ccs/clusters/"
TOKENS = "/ccs/tokens/"
TOKEN_NAMES = "/ccs/tokennames/"
AUDIT = "/ccs/audit/"
BOOTSTRAP = "/ccs/bootstrap"
POD_CIDRS = "/ccs/podcidrs/"
#: The cluster CA (certificate, and its key wrapped by the master key): see controlplane.pki.
PKI_CA = "/ccs/pki/ca"


#: Secrets and configs, outside the clusters' subtrees (controlplane.secrets says why).
SECRETS = "/ccs/secrets/"
SECRET_KEYS = "/ccs/secretkeys/"
#: Held (on a lease) by the one running ``rotate-key``: rotations run one at a time.
SECRET_ROTATION = "/ccs/secretrotation"
#: Deploy triggers and the delivery ids they accepted (controplane.triggers), outside the
#: clusters' subtrees like secrets: never in the informer's cache or a cluster watch.
TRIGGERS = "/ccs/triggers/"
TRIGGER_DELIVERIES = "/ccs/triggerdeliveries/"
#: The kind of a trigger's secret in the secrets store.
TRIGGER_SECRET_KIND = "trigger"


def cluster(name: str) -> str:
    return f"{CLUSTERS}{name}"


def secrets(cluster: str) -> str:
    """Every secret and config version of a cluster."""
    return f"{SECRETS}{cluster}/"


def triggers(cluster: str, app: str | None = None) -> str:
    return f"{TRIGGERS}{cluster}/" + (f"{app}/" if app is not None else "")


def trigger_deliveries(cluster: str, app: str | None = None) -> str:
    return f"{TRIGGER_DELIVERIES}{cluster}/" + (f"{app}/" if app is not None else "")


def trigger_secrets(cluster: str, app: str) -> str:
    """The secrets of an application's triggers (named ``APP.TRIGGER``; no name holds a dot)."""
    return f"{secrets(cluster)}{TRIGGER_SECRET_KIND}/{app}."


def subtree(cluster: str) -> str:
    """The prefix holding everything that belongs to a cluster."""
    return f"/ccs/c/{cluster}/"


def nodes(cluster: str) -> str:
    return f"{subtree(cluster)}nodes/"


def node(cluster: str, name: str) -> str:
    return f"{nodes(cluster)}{name}"


def apps(cluster: str) -> str:
    return f"{subtree(cluster)}apps/"


def app(cluster: str, name: str) -> str:
    return f"{apps(cluster)}{name}"


def services(cluster: str, app: str | None = None) -> str:
    base = f"{subtree(cluster)}services/"
    return base if app is None else f"{base}{app}/"


def service(cluster: str, app: str, name: str) -> str:
    return f"{services(cluster, app)}{name}"


def containers(cluster: str, app: str | None = None, service: str | None = None) -> str:
    base = f"{subtree(cluster)}containers/"
    if app is None:
        return base
    if service is None:
        return f"{base}{app}/"
    return f"{base}{app}/{service}/"


def container(cluster: str, app: str, service: str, name: str) -> str:
    return f"{containers(cluster, app, service)}{name}"


def events(cluster: str) -> str:
    return f"{subtree(cluster)}events/"


def event(cluster: str, event_id: str) -> str:
    return f"{events(cluster)}{event_id}"


def releases(cluster: str, app: str | None = None) -> str:
    base = f"{subtree(cluster)}releases/"
    return base if app is None else f"{base}{app}/"


def release(cluster: str, app: str, number: int) -> str:
    return f"{releases(cluster, app)}{release_name(number)}"


def release_name(number: int) -> str:
    # zero-padded so that key order is release order
    return f"r{number:06d}"


def revisions(cluster: str, app: str) -> str:
    return f"{subtree(cluster)}revisions/{app}/"


def revision(cluster: str, app: str, number: int) -> str:
    return f"{revisions(cluster, app)}{number:010d}"


def owned_by_app(cluster: str, app: str) -> tuple[str, ...]:
    """Prefixes of the records an application owns besides its own key, deleted with it.

    Services and containers are removed one by one first (containers stop on their nodes);
    these are the history records: releases and revision snapshots, and its deploy triggers
    with their secrets and remembered deliveries. Events are not keyed by application; they
    outlive it until the janitor prunes them (``EVENT_RETENTION``).
    """
    return (services(cluster, app), releases(cluster, app), revisions(cluster, app), triggers(cluster, app),
            trigger_secrets(cluster, app), trigger_deliveries(cluster, app))


def alive(cluster: str, node: str | None = None, replica: str | None = None) -> str:
    """A node's liveness keys, one per API replica that holds a session of it, each attached to
    that replica's liveness lease (:mod:`controlplane.dispatcher.liveness`); the value is the
    replica's id. ``node`` None: every node's; ``replica`` None: every replica's for ``node``."""
    base = f"{subtree(cluster)}alive/"
    if node is None:
        return base
    return f"{base}{node}/" if replica is None else f"{base}{node}/{replica}"


def router_stats(cluster: str, node: str) -> str:
    return f"{subtree(cluster)}routerstats/{node}"


def subnets(cluster: str, node: str | None = None) -> str:
    base = f"{subtree(cluster)}subnets/"
    return base if node is None else f"{base}{node}/"


def subnet_blocks(cluster: str, node: str | None = None) -> str:
    """The further blocks of the pairs (index >= 1); the first ones are under ``subnets``."""
    base = f"{subtree(cluster)}subnetblocks/"
    return base if node is None else f"{base}{node}/"


def subnet(cluster: str, node: str, app: str, network: str, index: int = 0) -> str:
    """The key of one block of a (node, app, network) pair: the first (index 0) where a pair's
    one block always was, the others under a prefix of their own (``SubnetAllocation``)."""
    if index == 0:
        return f"{subnets(cluster, node)}{app}/{network}"
    return f"{subnet_blocks(cluster, node)}{app}/{network}/{index}"


def networks(cluster: str) -> str:
    """The cluster networks (``ccs network create``) that applications join with external: true."""
    return f"{subtree(cluster)}networks/"


def network(cluster: str, name: str) -> str:
    return f"{networks(cluster)}{name}"


def pod_cidrs() -> str:
    """Index of the ranges clusters own, so that a default range is picked free of the others."""
    return POD_CIDRS


def pod_cidr(cidr: str) -> str:
    return f"{POD_CIDRS}{cidr.replace('/', '_')}"


def join_token(cluster: str) -> str:
    return f"{subtree(cluster)}jointoken"


def node_certs(cluster: str, node: str | None = None) -> str:
    """Certificates issued to a cluster's nodes (or to one node), one key per serial."""
    base = f"{subtree(cluster)}nodecerts/"
    return base if node is None else f"{base}{node}/"


def node_cert(cluster: str, node: str, serial: str) -> str:
    return f"{node_certs(cluster, node)}{serial}"


def token(digest: str) -> str:
    return f"{TOKENS}{digest}"


def token_name(name: str) -> str:
    """Index: a token name (unique among tokens not revoked) -> the digest of its token."""
    return f"{TOKEN_NAMES}{name}"


def audit(record_id: str) -> str:
    """An audit record; ids start with a zero-padded nanosecond time, so key order is time order."""
    return f"{AUDIT}{record_id}"


def kind_of(key: str) -> str | None:
    """The resource kind of a key inside a cluster subtree, e.g. ``"service"``."""
    if key.startswith(CLUSTERS):
        return "cluster"
    parts = key.split("/")
    # ['', 'ccs', 'c', cluster, kind-plural, ...]
    if len(parts) < 6 or parts[1] != "ccs" or parts[2] != "c":
        return None
    return _PLURALS.get(parts[4])


_PLURALS = {
    "nodes": "node",
    "apps": "application",
    "services": "service",
    "containers": "container",
    "events": "event",
    "releases": "release",
    "subnets": "subnet",
    "subnetblocks": "subnet",
    "networks": "network",
}


def prefix_end(prefix: str) -> bytes:
    """The etcd ``range_end`` that covers exactly the keys starting with ``prefix``."""
    raw = bytearray(prefix.encode())
    for i in reversed(range(len(raw))):
        if raw[i] < 0xFF:
            raw[i] += 1
            return bytes(raw[: i + 1])
    return b"\0"
