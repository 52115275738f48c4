"""``ccs.spec_diff``: a DiffApplicationResponse as a unified diff (pure; tables of cases)."""

from __future__ import annotations

from ccs.spec_diff import FIRST_FIELDS, has_changes, normalized, render, spec_lines
from ccs.v1 import api_pb2
from ccs.v1 import resources_pb2 as pb


def spec(image: str = "web:1", replicas: int = 2, **env: str) -> pb.ServiceSpec:
    s = pb.ServiceSpec(image=image, replicas=replicas, environment=env, restart="always")
    s.ports.add(target=8080, published=80)
    s.routes.add(domain="a.example", port=8080)
    s.resources.limits.cpus = 0.5
    return s


def response(*changes: api_pb2.ServiceChange, version: tuple[str, str] = ("v1", "v1"),
             revision: tuple[int, int] = (1, 1), strategy: str = "") -> api_pb2.DiffApplicationResponse:
    app = pb.Application(revision=revision[1], spec=pb.ApplicationSpec(version=version[1]))
    return api_pb2.DiffApplicationResponse(application=app, services=changes, version_before=version[0],
                                           revision_before=revision[0], release_strategy=strategy)


def test_the_fields_people_look_at_come_first_then_the_rest_by_name() -> None:
    keys = list(normalized(spec(A="1")))
    assert keys == [*FIRST_FIELDS, "restart"]
    assert list(normalized(spec()))[:3] == ["image", "replicas", "ports"]  # absent fields are skipped
    assert normalized(pb.ServiceSpec(image="x"))["replicas"] == 0  # 0 is shown, not hidden as a default


def test_environment_is_sorted_whatever_the_template_order() -> None:
    a = spec_lines(spec(B="2", A="1"))
    assert a == spec_lines(spec(A="1", B="2"))
    assert a[a.index("environment:") + 1:a.index("environment:") + 3] == ["  A: '1'", "  B: '2'"]


def test_a_changed_service_shows_only_what_changed_with_context() -> None:
    before, after = spec("web:1", 2, GREETING="hi"), spec("web:2", 3, GREETING="bye")
    text = render(response(api_pb2.ServiceChange(name="web", change="changed", before=before, after=after),
                           revision=(1, 2), strategy="rolling"))
    lines = text.splitlines()
    assert lines[:2] == ["--- a/application", "+++ b/application"]
    assert {"-revision: 1", "+revision: 2"} <= set(lines) and "-version: v1" not in lines
    assert "--- a/service/web" in lines and "+++ b/service/web" in lines
    assert {"-image: web:1", "+image: web:2", "-replicas: 2", "+replicas: 3", "-  GREETING: hi",
            "+  GREETING: bye"} <= set(lines)
    assert " restart: always" not in lines  # more than 3 lines from any change
    assert lines[-1] == "# the update would start a rolling release"
    assert "\x1b[" not in text


def test_added_and_removed_services_diff_against_nothing() -> None:
    text = render(response(api_pb2.ServiceChange(name="new", change="added", after=spec()),
                           api_pb2.ServiceChange(name="old", change="removed", before=spec()),
                           api_pb2.ServiceChange(name="same", change="unchanged", before=spec(), after=spec())))
    lines = text.splitlines()
    assert lines[0:2] == ["--- /dev/null", "+++ b/service/new"]
    assert "+image: web:1" in lines
    i = lines.index("--- a/service/old")
    assert lines[i + 1] == "+++ /dev/null" and "-image: web:1" in lines
    assert "same" not in text


def test_nothing_to_change_is_an_empty_diff() -> None:
    same = response(api_pb2.ServiceChange(name="web", change="unchanged", before=spec(), after=spec()))
    assert render(same) == "" and not has_changes(same)
    assert has_changes(response(version=("v1", "v2")))
    assert has_changes(response(revision=(1, 2)))  # parameters that change no service still make a revision
    assert has_changes(response(api_pb2.ServiceChange(name="x", change="removed", before=spec())))


def test_colour_marks_removed_added_and_hunk_lines() -> None:
    text = render(response(version=("v1", "v2")), color=True)
    assert "\x1b[31m-version: v1\x1b[0m" in text and "\x1b[32m+version: v2\x1b[0m" in text
    assert "\x1b[1m--- a/application\x1b[0m" in text and "\x1b[36m@@" in text
