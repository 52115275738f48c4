"""The console's pure parts: view rows, release controls, the weight and parameter fields, and the
session cookie and CSRF token."""

from __future__ import annotations

import pytest

from ccs.v1 import resources_pb2 as pb
from controlplane.console import session, views

NOW = 1_800_000_000.0


def test_a_pending_container_shows_its_reason_and_no_node() -> None:
    c = pb.Container(meta=pb.Meta(name="web-1"), application="shop", service="web",
                     status=pb.ContainerStatus(state=pb.CONTAINER_STATE_PENDING,
                                               message="no node has 2 CPUs free"))
    c.meta.created_at.FromSeconds(int(NOW) - 90)
    (row,) = views.container_rows([c], NOW)
    assert row["state"] == "pending" and row["node"] == "-" and row["reason"] == "no node has 2 CPUs free"
    assert row["age"] == "1m"


def test_node_rows_show_capacity_state_and_labels() -> None:
    n = pb.Node(meta=pb.Meta(name="n1", labels={"zone": "a", "disk": "ssd"}),
                status=pb.NodeStatus(state=pb.NODE_STATE_READY, capacity=pb.NodeResources(cpus=4, memory_bytes=8 << 30)))
    (row,) = views.node_rows([n], NOW)
    assert (row["state"], row["cpus"], row["memory"], row["labels"]) == ("ready", "4", "8.0 GiB", "disk=ssd, zone=a")


def test_route_rows_carry_each_backends_weight_and_group() -> None:
    table = pb.RoutingTable(routes=[pb.RouteEntry(application="shop", service="web", domain="shop.local", backends=[
        pb.RouteBackend(container="a", node="n1", address="10.0.0.1", port=32000, weight=128, group="stable"),
        pb.RouteBackend(container="b", node="n1", address="10.0.0.1", port=32001, weight=0, group="green")])])
    rows = views.route_rows(table)
    assert [(r["group"], r["weight"]) for r in rows] == [("stable", "128"), ("green", "0")]
    assert rows[0]["route"] == "shop.local/"


@pytest.mark.parametrize(("strategy", "phase", "controls"), [
    ("blue-green", pb.RELEASE_PHASE_AWAITING_SHIFT, ("shift", "confirm", "rollback", "abort")),
    ("canary", pb.RELEASE_PHASE_PAUSED, ("promote", "abort", "rollback")),
    ("rolling", pb.RELEASE_PHASE_PROGRESSING, ("abort", "rollback")),
    ("blue-green", pb.RELEASE_PHASE_SUCCEEDED, ("rollback",)),
])
def test_release_controls_fit_the_phase(strategy: str, phase: int, controls: tuple[str, ...]) -> None:
    assert views.controls_for(strategy, phase) == controls


def test_releases_by_app_puts_the_latest_first_with_its_history() -> None:
    rs = [pb.Release(application="shop", number=n, spec=pb.ReleaseSpec(strategy="blue-green"),
                     status=pb.ReleaseStatus(phase=pb.RELEASE_PHASE_SUCCEEDED if n < 3 else pb.RELEASE_PHASE_AWAITING_SHIFT,
                                             weight=20, history=[f"h{n}"]))
          for n in (1, 3, 2)]
    ((latest, older),) = views.releases_by_app(rs, {"shop": views.EVERY_CALL})
    assert latest.number == 3 and latest.live and latest.phase == "awaiting-shift" and latest.history == ["h3"]
    assert latest.controls == ("shift", "confirm", "rollback", "abort")
    assert [r.number for r in older] == [2, 1]


def test_only_the_controls_whoami_allows_are_shown() -> None:
    r = pb.Release(application="shop", number=2, spec=pb.ReleaseSpec(strategy="blue-green"),
                   status=pb.ReleaseStatus(phase=pb.RELEASE_PHASE_AWAITING_SHIFT))
    reads_only = ["ReleaseService/ListReleases", "ReleaseService/GetRelease"]
    assert views.release_view(r, reads_only).controls == ()
    assert views.release_view(r, [*reads_only, "ReleaseService/ShiftTraffic"]).controls == ("shift",)
    # no answer for the application (WhoAmI was not asked about it): no controls
    ((latest, _),) = views.releases_by_app([r], {})
    assert latest.controls == ()


@pytest.mark.parametrize("text", ["", "-1", "101", "50.5", "fifty"])
def test_a_bad_weight_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(ValueError, match=r"^weight: "):
        views.parse_weight(text)


def test_parameters_are_key_value_lines() -> None:
    assert views.parse_params("# comment\nA=1\n\n B = two words\nC=") == {"A": "1", "B": " two words", "C": ""}
    with pytest.raises(ValueError, match="parameters: line 2: 'oops' is not KEY=VALUE"):
        views.parse_params("A=1\noops")
    with pytest.raises(ValueError, match="line 1"):
        views.parse_params("1A=x")


def test_the_cookie_is_http_only_strict_and_secure_over_https() -> None:
    header = session.cookie_header("ccs_abc", secure=True)
    assert header.startswith("ccs_console=ccs_abc; Path=/console;")
    assert "HttpOnly" in header and "SameSite=Strict" in header and header.endswith("Secure")
    assert "Secure" not in session.cookie_header("ccs_abc", secure=False)
    assert "Max-Age=0" in session.cookie_header("", secure=True, max_age=0)


def test_the_csrf_token_belongs_to_its_session() -> None:
    token = session.csrf_token("ccs_abc")
    assert session.csrf_ok("ccs_abc", token)
    assert not session.csrf_ok("ccs_other", token)
    assert not session.csrf_ok("ccs_abc", "")
    assert not session.csrf_ok("", session.csrf_token(""))
    assert session.plausible_token("ccs_a-b.c") is None
    assert session.plausible_token("a b") is not None and session.plausible_token("") == "token: empty"
