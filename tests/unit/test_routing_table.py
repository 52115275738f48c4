"""``routing_table``: entries, backends, groups, drain, A/B and the content-hash version."""

from __future__ import annotations

from datetime import UTC, datetime

from ccs.v1 import resources_pb2 as pb
from controlplane.routing import FULL, routing_table

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def service(name: str = "web", *routes: pb.Route, sticky: bool = False, hc: bool = False) -> pb.Service:
    s = pb.Service(cluster="c1", application="app", generation=2,
                   spec=pb.ServiceSpec(routes=routes or [pb.Route(port=80, domain="web.test")],
                                       session_sticky=sticky))
    if hc:
        s.spec.healthcheck.test.extend(["CMD", "true"])
    s.meta.name = name
    return s


def ctr(cid: str, gen: int = 2, state: int = pb.CONTAINER_STATE_RUNNING, *, svc: str = "web",
        desired: int = pb.DESIRED_STATE_RUNNING, ports: tuple[tuple[int, int], ...] = ((80, 30001),),
        cluster: str = "c1") -> pb.Container:
    c = pb.Container(cluster=cluster, application="app", service=svc, node="n1", spec_generation=gen,
                     app_revision=gen, desired_state=desired)  # type: ignore[arg-type]
    c.meta.id = cid
    c.status.state = state  # type: ignore[assignment]
    for target, published in ports:
        c.status.endpoints.append(pb.Endpoint(address="10.0.0.5", published=published, target=target))
    return c


def release(strategy: str, weight: int, phase: int = pb.RELEASE_PHASE_PROGRESSING, match: str = "") -> pb.Release:
    r = pb.Release(application="app", spec=pb.ReleaseSpec(strategy=strategy, services=["web"]))
    if match:
        r.spec.match_header, r.spec.match_value = match, "yes"
    r.spec.previous_generations["web"] = 1
    r.status.phase = phase  # type: ignore[assignment]
    r.status.weight = weight
    return r


def table(services: list[pb.Service], containers: list[pb.Container],
          rel: pb.Release | None = None) -> pb.RoutingTable:
    return routing_table("c1", {("app", s.meta.name): s for s in services}, containers, {"app": rel})


def rows(t: pb.RoutingTable, i: int = 0) -> list[tuple[str, str, int]]:
    return [(b.container, b.group, b.weight) for b in t.routes[i].backends]


def test_no_release_gives_every_ready_container_equal_weight() -> None:
    t = table([service()], [ctr("b"), ctr("a", gen=1), ctr("c", state=pb.CONTAINER_STATE_STARTING)])
    assert rows(t) == [("a", "stable", FULL), ("b", "stable", FULL)]
    entry = t.routes[0]
    assert (entry.domain, entry.path, entry.application, entry.service) == ("web.test", "/", "app", "web")
    assert (entry.backends[0].address, entry.backends[0].port, entry.backends[0].node) == ("10.0.0.5", 30001, "n1")


def test_health_checked_containers_route_only_when_healthy() -> None:
    # "a" runs but is not healthy yet: configured, with weight 0, so it joins by a weight change
    t = table([service(hc=True)], [ctr("a"), ctr("b", state=pb.CONTAINER_STATE_HEALTHY)])
    assert rows(t) == [("a", "stable", 0), ("b", "stable", FULL)]


def test_a_health_flip_changes_only_weights() -> None:
    healthy = table([service(hc=True)], [ctr("a", state=pb.CONTAINER_STATE_HEALTHY), ctr("b", state=pb.CONTAINER_STATE_HEALTHY)])
    flipped = table([service(hc=True)], [ctr("a", state=pb.CONTAINER_STATE_UNHEALTHY), ctr("b", state=pb.CONTAINER_STATE_HEALTHY)])
    assert [r[0] for r in rows(healthy)] == [r[0] for r in rows(flipped)] == ["a", "b"]
    assert rows(flipped)[0][2] == 0 and rows(healthy)[0][2] == FULL


def test_leaving_containers_stay_with_weight_zero_until_they_stop() -> None:
    draining = ctr("b")
    draining.stop_after.FromDatetime(T0)
    removed = ctr("c", desired=pb.DESIRED_STATE_REMOVED)
    stopped = ctr("d", desired=pb.DESIRED_STATE_REMOVED, state=pb.CONTAINER_STATE_EXITED)
    t = table([service()], [ctr("a"), draining, removed, stopped])
    assert rows(t) == [("a", "stable", FULL), ("b", "stable", 0), ("c", "stable", 0)]


def test_canary_weight_is_spread_over_groups() -> None:
    cs = [ctr("new1"), ctr("old1", 1), ctr("old2", 1), ctr("old3", 1)]
    t = table([service()], cs, release("canary", 10))
    weights = {c: w for c, _, w in rows(t)}
    groups = {c: g for c, g, _ in rows(t)}
    assert groups == {"new1": "canary", "old1": "stable", "old2": "stable", "old3": "stable"}
    share = weights["new1"] / sum(weights.values())
    assert abs(share - 0.10) < 0.01
    assert [r[1] for r in rows(t)] == ["canary", "stable", "stable", "stable"]  # sorted by group, id


def test_blue_green_at_zero_keeps_green_configured_with_weight_zero() -> None:
    t = table([service()], [ctr("g"), ctr("b", 1)], release("blue-green", 0, pb.RELEASE_PHASE_AWAITING_SHIFT))
    assert rows(t) == [("g", "green", 0), ("b", "stable", FULL)]


def test_a_finished_or_rolling_release_does_not_split() -> None:
    for rel in (release("canary", 50, pb.RELEASE_PHASE_SUCCEEDED), release("rolling", 0)):
        t = table([service()], [ctr("n"), ctr("o", 1)], rel)
        assert rows(t) == [("n", "stable", FULL), ("o", "stable", FULL)]


def test_ab_copies_the_match_until_completion_or_rollback() -> None:
    cs = [ctr("n"), ctr("o", 1)]
    t = table([service()], cs, release("canary", 0, match="X-Canary"))
    e = t.routes[0]
    assert (e.match_header, e.match_cookie, e.match_value) == ("X-Canary", "", "yes")
    assert rows(t) == [("n", "canary", FULL), ("o", "stable", FULL)]
    done = table([service()], cs, release("canary", 100, match="X-Canary"))
    assert done.routes[0].match_header == "" and rows(done) == [("n", "canary", FULL), ("o", "stable", 0)]
    back = table([service()], cs, release("canary", 0, pb.RELEASE_PHASE_ROLLING_BACK, match="X-Canary"))
    assert back.routes[0].match_header == "" and rows(back) == [("n", "canary", 0), ("o", "stable", FULL)]


def test_one_entry_per_route_matched_on_the_container_port_and_sorted() -> None:
    api = service("api", pb.Route(port=8080, domain="b.test", path="/api"), pb.Route(port=80, domain="a.test"),
                  sticky=True)
    t = table([api, service()], [ctr("x", svc="api", ports=((80, 30010), (8080, 30011))), ctr("y")])
    assert [(e.service, e.domain, e.path) for e in t.routes] == [
        ("api", "a.test", "/"), ("api", "b.test", "/api"), ("web", "web.test", "/")]
    assert [e.backends[0].port for e in t.routes] == [30010, 30011, 30001]
    assert t.routes[0].session_sticky and not t.routes[2].session_sticky


def test_containers_without_the_port_or_of_another_cluster_are_skipped() -> None:
    t = table([service()], [ctr("a", ports=((81, 30001),)), ctr("b", cluster="c2"), ctr("c", ports=())])
    assert rows(t) == []


def test_version_is_a_stable_content_hash() -> None:
    cs = [ctr("a"), ctr("b", 1)]
    first = table([service()], cs, release("canary", 10))
    again = table([service()], list(reversed(cs)), release("canary", 10))
    shifted = table([service()], cs, release("canary", 20))
    assert first.version == again.version != 0
    assert shifted.version != first.version
    assert first.version < 2**63


def test_a_route_certificate_reference_is_copied_and_a_new_version_changes_the_table() -> None:
    tls = pb.RouteTLS(secret="web-cert", version=1)
    web = service("web", pb.Route(port=80, domain="web.test", tls=tls), pb.Route(port=80, domain="plain.test"))
    t1 = table([web], [ctr("a")])
    by_domain = {e.domain: e for e in t1.routes}
    assert by_domain["web.test"].tls == tls and not by_domain["plain.test"].HasField("tls")
    web.spec.routes[0].tls.version = 2
    t2 = table([web], [ctr("a")])
    assert {e.domain: e for e in t2.routes}["web.test"].tls.version == 2
    assert t2.version != t1.version  # every router gets the new table, and the new certificate
