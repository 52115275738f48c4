"""Spec -> Engine API body: what every field becomes, and clear errors for bad input."""

from __future__ import annotations

from typing import Any

import pytest

from ccs.v1 import resources_pb2 as pb
from nodeagent.runtime import InvalidSpec, naming, translate
from nodeagent.runtime.translate import create_request, network_ipam


def make(**spec: Any) -> pb.Container:
    c = pb.Container(
        meta=pb.Meta(id="0123456789abcdef", name="web-3"),
        cluster="prod",
        application="shop",
        service="web",
        slot=3,
        spec_generation=4,
        app_revision=9,
    )
    c.spec.CopyFrom(pb.ServiceSpec(**{"image": "local/webapp:v1", **spec}))
    return c


def body(**spec: Any) -> dict[str, Any]:
    return create_request(make(**spec), bind_address="10.0.0.5").body


def test_minimal_spec_defaults() -> None:
    request = create_request(make(), bind_address="10.0.0.5")
    assert request.name == "ccs-shop-web-3-0123456789ab"
    assert request.network == "ccs-prod_shop"
    assert request.volumes == ()
    b = request.body
    assert b["Image"] == "local/webapp:v1"
    assert "Cmd" not in b and "Entrypoint" not in b and "Healthcheck" not in b  # image defaults
    assert b["HostConfig"]["RestartPolicy"] == {"Name": "no"}
    assert b["HostConfig"]["NetworkMode"] == "ccs-prod_shop"
    assert b["NetworkingConfig"] == {"EndpointsConfig": {"ccs-prod_shop": {"Aliases": ["web"]}}}
    assert b["Labels"] == {
        "ccs.managed": "true",
        "ccs.cluster": "prod",
        "ccs.app": "shop",
        "ccs.service": "web",
        "ccs.container": "web-3",
        "ccs.container-id": "0123456789abcdef",
        "ccs.generation": "4",
        "ccs.app-revision": "9",
    }


def test_user_labels_cannot_override_ccs_labels() -> None:
    labels = body(labels={"team": "a", "ccs.app": "spoofed"})["Labels"]
    assert (labels["team"], labels["ccs.app"]) == ("a", "shop")


def test_process_fields() -> None:
    b = body(
        command=["serve", "--port", "80"],
        entrypoint=["/bin/sh", "-c"],
        environment={"B": "2", "A": "x=y"},
        user="1000:1000",
        working_dir="/srv",
        hostname="h1",
        stop_signal="SIGQUIT",
        stop_grace_period_ms=2500,
    )
    assert (b["Cmd"], b["Entrypoint"]) == (["serve", "--port", "80"], ["/bin/sh", "-c"])
    assert b["Env"] == ["A=x=y", "B=2"]
    assert (b["User"], b["WorkingDir"], b["Hostname"]) == ("1000:1000", "/srv", "h1")
    assert (b["StopSignal"], b["StopTimeout"]) == ("SIGQUIT", 3)  # rounded up to whole seconds


def test_ports_publish_on_bind_address_or_own_host_ip_and_expose() -> None:
    b = body(
        ports=[
            pb.PortSpec(target=80, published=8080),
            pb.PortSpec(target=53, published=5353, protocol="udp", host_ip="127.0.0.1"),
            pb.PortSpec(target=9000),  # published 0: only on the app network
        ],
        expose=["3000", "4000-4001/udp"],
    )
    assert set(b["ExposedPorts"]) == {"80/tcp", "53/udp", "9000/tcp", "3000/tcp", "4000/udp", "4001/udp"}
    assert b["HostConfig"]["PortBindings"] == {
        "80/tcp": [{"HostIp": "10.0.0.5", "HostPort": "8080"}],
        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}],
    }


def test_routed_ports_get_an_ephemeral_host_port_unless_published() -> None:
    b = body(
        ports=[pb.PortSpec(target=80, published=8080), pb.PortSpec(target=9000)],
        routes=[
            pb.Route(port=80, domain="a.example"),  # published already: left as it is
            pb.Route(port=9000, domain="b.example"),  # published 0: routed, so ephemeral
            pb.Route(port=9000, domain="c.example", path="/x"),  # same port: one binding
            pb.Route(port=7000, domain="d.example"),  # neither exposed nor published
        ],
    )
    assert set(b["ExposedPorts"]) == {"80/tcp", "9000/tcp", "7000/tcp"}
    assert b["HostConfig"]["PortBindings"] == {
        "80/tcp": [{"HostIp": "10.0.0.5", "HostPort": "8080"}],
        "9000/tcp": [{"HostIp": "10.0.0.5", "HostPort": ""}],
        "7000/tcp": [{"HostIp": "10.0.0.5", "HostPort": ""}],
    }


def test_route_port_out_of_range_is_named() -> None:
    with pytest.raises(InvalidSpec, match=r"spec\.routes\[1\]\.port.*1-65535, got 0"):
        body(routes=[pb.Route(port=80), pb.Route(port=0, domain="x.example")])


def test_volumes() -> None:
    request = create_request(
        make(
            volumes=[
                pb.VolumeMount(type="volume", source="db", target="/var/lib/db"),
                pb.VolumeMount(source="logs", target="/logs", read_only=True),  # type defaults to volume
                pb.VolumeMount(type="bind", source="/etc/app", target="/conf", read_only=True),
                pb.VolumeMount(type="tmpfs", target="/tmp"),
                pb.VolumeMount(type="volume", target="/cache"),
            ]
        ),
        bind_address="0.0.0.0",
    )
    app = {"ccs.managed": "true", "ccs.cluster": "prod", "ccs.app": "shop"}
    assert request.body["HostConfig"]["Mounts"] == [
        {"Type": "volume", "Target": "/var/lib/db", "Source": "ccs-prod_shop_db"},
        {"Type": "volume", "Target": "/logs", "Source": "ccs-prod_shop_logs", "ReadOnly": True},
        {"Type": "bind", "Target": "/conf", "Source": "/etc/app", "ReadOnly": True},
        {"Type": "tmpfs", "Target": "/tmp"},
        {"Type": "volume", "Target": "/cache", "VolumeOptions": {"Labels": {**app, "ccs.anonymous": "true"}}},
    ]
    assert [(v.name, v.labels) for v in request.volumes] == [
        ("ccs-prod_shop_db", {**app, "ccs.volume": "db"}),
        ("ccs-prod_shop_logs", {**app, "ccs.volume": "logs"}),
    ]


def test_resources() -> None:
    b = body(
        resources=pb.Resources(
            limits=pb.ResourceAmounts(cpus=1.5, memory_bytes=256 << 20, pids=64),
            reservations=pb.ResourceAmounts(cpus=0.25, memory_bytes=128 << 20),
        )
    )
    host = b["HostConfig"]
    assert (host["NanoCpus"], host["Memory"], host["MemoryReservation"], host["PidsLimit"]) == (
        1_500_000_000,
        256 << 20,
        128 << 20,
        64,
    )


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        (
            pb.HealthCheck(test=["CMD", "curl", "-f", "http://localhost"], interval_ms=1500, retries=2),
            {"Test": ["CMD", "curl", "-f", "http://localhost"], "Interval": 1_500_000_000, "Retries": 2},
        ),
        (
            pb.HealthCheck(test=["CMD-SHELL", "pg_isready"], timeout_ms=3000, start_period_ms=10),
            {"Test": ["CMD-SHELL", "pg_isready"], "Timeout": 3_000_000_000, "StartPeriod": 10_000_000},
        ),
        (pb.HealthCheck(test=["NONE"]), {"Test": ["NONE"]}),
        (pb.HealthCheck(test=["CMD", "true"], disable=True), {"Test": ["NONE"]}),
        (pb.HealthCheck(interval_ms=2000), {"Interval": 2_000_000_000}),  # keeps the image's test
    ],
)
def test_healthcheck(check: pb.HealthCheck, expected: dict[str, Any]) -> None:
    assert body(healthcheck=check)["Healthcheck"] == expected


def test_without_a_resolver_aliases_include_compose_network_aliases() -> None:
    b = body(networks=[pb.ServiceNetwork(name="default", aliases=["www", "web"])])
    assert b["NetworkingConfig"]["EndpointsConfig"]["ccs-prod_shop"]["Aliases"] == ["web", "www"]
    assert "Dns" not in b["HostConfig"]


def test_with_the_node_resolver_names_come_from_it_and_not_from_engine_aliases() -> None:
    c = make(networks=[pb.ServiceNetwork(name="default", aliases=["www"])])
    b = create_request(c, bind_address="10.0.0.5", dns=["169.254.20.53"]).body
    assert b["HostConfig"]["Dns"] == ["169.254.20.53"]
    assert b["NetworkingConfig"] == {"EndpointsConfig": {"ccs-prod_shop": {}}}


def test_names_are_docker_safe() -> None:
    c = make()
    c.application, c.service, c.meta.id = "My App", "web/api", "id:with:colons"
    assert naming.container_name(c) == "ccs-My-App-web-api-3-id-with-colo"  # 12-char id prefix
    assert naming.network_name("prod cluster", "a") == "ccs-prod-cluster_a"


@pytest.mark.parametrize(
    ("spec", "field", "why"),
    [
        ({"image": ""}, "spec.image", "must not be empty"),
        ({"ports": [pb.PortSpec(target=0)]}, "spec.ports[0].target", "1-65535"),
        ({"ports": [pb.PortSpec(target=80, published=70000)]}, "spec.ports[0].published", "0-65535"),
        ({"ports": [pb.PortSpec(target=80, protocol="http")]}, "spec.ports[0].protocol", "'http'"),
        ({"expose": ["80", "abc"]}, "spec.expose[1]", "PORT[-PORT][/PROTOCOL]"),
        ({"expose": ["90-80"]}, "spec.expose[0]", "start <= end"),
        ({"volumes": [pb.VolumeMount(source="d", target="data")]}, "spec.volumes[0].target", "absolute"),
        (
            {"volumes": [pb.VolumeMount(type="bind", source="./conf", target="/c")]},
            "spec.volumes[0].source",
            "absolute host path",
        ),
        ({"volumes": [pb.VolumeMount(type="npipe", target="/x")]}, "spec.volumes[0].type", "'npipe'"),
        (
            {"resources": pb.Resources(limits=pb.ResourceAmounts(memory_bytes=1024))},
            "spec.resources.limits.memory_bytes",
            "at least 6 MiB",
        ),
        (
            {"resources": pb.Resources(limits=pb.ResourceAmounts(cpus=-1))},
            "spec.resources.limits.cpus",
            "negative",
        ),
        ({"healthcheck": pb.HealthCheck(test=["curl", "x"])}, "spec.healthcheck.test", "'curl'"),
        ({"healthcheck": pb.HealthCheck(test=["CMD"])}, "spec.healthcheck.test", "needs a command"),
        ({"healthcheck": pb.HealthCheck(interval_ms=-5)}, "spec.healthcheck.interval_ms", "negative"),
        ({"working_dir": "srv"}, "spec.working_dir", "absolute"),
        ({"stop_grace_period_ms": -1}, "spec.stop_grace_period_ms", "negative"),
    ],
)
def test_bad_spec_names_the_field(spec: dict[str, Any], field: str, why: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        body(**spec)
    assert err.value.field == field
    assert why in err.value.reason
    assert err.value.reason.startswith(f"invalid spec: {field}: ")
    assert err.value.permanent


@pytest.mark.parametrize(("subnets", "expected", "ipam"), [
    ({}, "", None),  # a cluster older than the allocator: the engine picks
    ({naming.DEFAULT_NETWORK: "10.128.0.16/28"}, "10.128.0.16/28",
     {"Driver": "default", "Config": [{"Subnet": "10.128.0.16/28"}]}),
    ({"other": "10.128.0.32/28"}, "", None),  # not a network of the service: not made
])
def test_the_app_network_subnet_comes_from_the_assignment(
    subnets: dict[str, str], expected: str, ipam: dict[str, Any] | None
) -> None:
    c = make()
    c.subnets.update(subnets)
    request = create_request(c, bind_address="10.0.0.5")
    assert request.subnet == expected
    assert network_ipam(request.subnet) == ipam


@pytest.mark.parametrize(("subnet", "why"), [
    ("10.128.0.0/33", "must be an IPv4 network"),
    ("10.128.0.1/28", "must be an IPv4 network"),  # host bits set
    ("nonsense", "must be an IPv4 network"),
    ("10.128.0.0/31", "must leave room for containers"),
])
def test_a_bad_subnet_is_an_invalid_spec_naming_it(subnet: str, why: str) -> None:
    c = make()
    c.subnets[naming.DEFAULT_NETWORK] = subnet
    with pytest.raises(InvalidSpec) as err:
        create_request(c, bind_address="10.0.0.5")
    assert err.value.field == "subnets.default" and why in err.value.why
    assert err.value.failure_reason == pb.FAILURE_REASON_INVALID_SPEC


def test_a_container_joins_each_of_its_services_networks_in_template_order() -> None:
    """The create body holds the first network (with its subnet); the others are joined after the
    create (`joins`), each a bridge of its own named after its Compose network."""
    c = make(networks=[pb.ServiceNetwork(name="front", aliases=["www"]), pb.ServiceNetwork(name="back")])
    c.subnets.update({"front": "10.128.0.16/28", "back": "10.128.0.32/28"})
    request = create_request(c, bind_address="10.0.0.5", dns=("169.254.20.53",))
    assert [(j.name, j.compose, j.subnet, j.aliases) for j in request.joins] == [
        ("ccs-prod_shop_front", "front", "10.128.0.16/28", ()),
        ("ccs-prod_shop_back", "back", "10.128.0.32/28", ()),
    ]
    assert (request.network, request.subnet) == ("ccs-prod_shop_front", "10.128.0.16/28")
    assert request.body["HostConfig"]["NetworkMode"] == "ccs-prod_shop_front"
    assert request.body["NetworkingConfig"] == {"EndpointsConfig": {"ccs-prod_shop_front": {}}}
    # Without the node resolver, a network's engine aliases are the service and its aliases there.
    plain = create_request(c, bind_address="10.0.0.5")
    assert [j.aliases for j in plain.joins] == [("web", "www"), ("web",)]
    assert plain.body["NetworkingConfig"]["EndpointsConfig"]["ccs-prod_shop_front"] == {"Aliases": ["web", "www"]}


def test_an_assignment_from_an_older_control_plane_joins_the_default_bridge_only() -> None:
    """Before per-network blocks the control plane gave every container the "default" block
    whatever its networks: the container joins that one bridge, as those releases did."""
    c = make(networks=[pb.ServiceNetwork(name="front", aliases=["www"]), pb.ServiceNetwork(name="back")])
    c.subnets[naming.DEFAULT_NETWORK] = "10.128.0.16/28"
    request = create_request(c, bind_address="10.0.0.5")
    assert [(j.name, j.compose, j.subnet, j.aliases) for j in request.joins] == [
        ("ccs-prod_shop", "default", "10.128.0.16/28", ("web", "www"))]


def test_bridge_names_read_back_as_their_compose_networks() -> None:
    for network in ("default", "front", "my_net.v2", "x-y"):
        engine = naming.network_name("prod", "shop", network)
        assert naming.compose_network("prod", "shop", engine) == network
    assert naming.network_name("prod", "shop") == "ccs-prod_shop"
    assert naming.compose_network("prod", "shop", "ccs-prod_shopping") is None
    assert naming.compose_network("prod", "shop", "ccs-prod_shop_") is None
    assert naming.compose_network("prod", "shop", "ccs-prod_other_front") is None


def test_a_further_block_is_a_bridge_of_its_own_and_the_first_keeps_its_name() -> None:
    """A container on a network's second block joins that block's bridge; the first block's
    bridge is named as before growth (no rename on upgrade); every block's bridge reads back
    as its Compose network, and no other application's bridge reads as one of them."""
    c = make(networks=[pb.ServiceNetwork(name="front"), pb.ServiceNetwork(name="back")])
    c.subnets.update({"front": "10.128.0.32/27", "back": "10.128.0.16/28"})
    c.subnet_index["front"] = 2
    request = create_request(c, bind_address="10.0.0.5", dns=("169.254.20.53",))
    assert [(j.name, j.compose, j.subnet) for j in request.joins] == [
        ("ccs-prod_shop.2_front", "front", "10.128.0.32/27"), ("ccs-prod_shop_back", "back", "10.128.0.16/28")]
    assert request.body["NetworkingConfig"] == {"EndpointsConfig": {"ccs-prod_shop.2_front": {}}}
    assert naming.network_name("prod", "shop", "default", 0) == "ccs-prod_shop"
    assert naming.network_name("prod", "shop", "default", 1) == "ccs-prod_shop.1"
    for network in ("default", "front", "my_net.v2", "7"):
        for index in (0, 1, 12):
            engine = naming.network_name("prod", "shop", network, index)
            assert naming.compose_network("prod", "shop", engine) == network
            assert naming.compose_network("prod", "sho", engine) is None
    for stranger in ("ccs-prod_shop.", "ccs-prod_shop.0", "ccs-prod_shop.01", "ccs-prod_shop.x_front",
                     "ccs-prod_shop.1_", "ccs-prod_shop.1x"):
        assert naming.compose_network("prod", "shop", stranger) is None, stranger


def test_bridge_names_of_two_clusters_never_meet() -> None:
    """Cluster `a-b` with app `c` and cluster `a` with app `b-c` had one bridge, `ccs-a-b-c`;
    cluster and application are DNS labels, so `_` between them makes every name distinct."""
    names = {naming.network_name(cluster, app, network, index)
             for cluster, app in (("a-b", "c"), ("a", "b-c"), ("a-b-c", "x"), ("a", "b"))
             for network in ("default", "c", "x_y") for index in (0, 1)}
    assert len(names) == 4 * 3 * 2
    assert naming.network_name("a-b", "c") == "ccs-a-b_c" and naming.network_name("a", "b-c") == "ccs-a_b-c"
    assert naming.compose_network("a", "b-c", naming.network_name("a-b", "c")) is None
    assert naming.network_name("my_cluster", "app.x") == "ccs-my-cluster_app-x"  # never a separator inside


def test_bridges_named_by_an_older_agent_read_back_as_their_compose_networks() -> None:
    for network in ("default", "front"):
        for index in (0, 3):
            old = naming.legacy_network_name("prod", "shop", network, index)
            assert old.startswith("ccs-prod-shop")
            assert naming.compose_network("prod", "shop", old) == network


def test_an_adopted_older_bridge_replaces_the_name_everywhere_in_the_create_request() -> None:
    c = make(networks=[pb.ServiceNetwork(name="front"), pb.ServiceNetwork(name="back")])
    c.subnets.update({"front": "10.128.0.16/28", "back": "10.128.0.32/28"})
    request = create_request(c, bind_address="10.0.0.5", dns=("169.254.20.53",))
    assert translate.with_network_names(request, {"ccs-other": "x"}) is request
    renamed = translate.with_network_names(request, {"ccs-prod_shop_front": "ccs-prod-shop_front",
                                                     "ccs-prod_shop_back": "ccs-prod-shop_back"})
    assert [j.name for j in renamed.joins] == ["ccs-prod-shop_front", "ccs-prod-shop_back"]
    assert renamed.network == renamed.body["HostConfig"]["NetworkMode"] == "ccs-prod-shop_front"
    assert renamed.body["NetworkingConfig"] == {"EndpointsConfig": {"ccs-prod-shop_front": {}}}
    assert request.body["HostConfig"]["NetworkMode"] == "ccs-prod_shop_front"  # the original is untouched
