"""``cli.output`` (-o formats, --no-headers, -l selectors), the events filter and the context
commands' config functions: pure code, tables of cases."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from google.protobuf.timestamp_pb2 import Timestamp

from ccs.config import (
    Context,
    ContextExists,
    ContextNotFound,
    load_config,
    remove_context,
    rename_context,
    upsert_context,
    use_context,
)
from ccs.v1 import resources_pb2 as pb
from cli.commands.events import EventFilter
from cli.output import (
    Format,
    emit,
    jsonpath_lines,
    kind_name,
    matches,
    object_labels,
    parse_output,
    parse_selector,
    render,
    select,
    to_data,
)


def apps() -> list[pb.Application]:
    return [pb.Application(meta=pb.Meta(name=n, labels={"team": t})) for n, t in (("one", "a"), ("two", "b"))]


@pytest.mark.parametrize(("value", "fmt"), [
    ("table", Format.table), ("WIDE", Format.wide), ("name", Format.name), ("json", Format.json),
    ("yaml", Format.yaml), ("jsonpath={.meta.name}", Format.jsonpath), ("jsonpath=$.items[0]", Format.jsonpath),
])
def test_output_formats_parse(value: str, fmt: Format) -> None:
    assert parse_output(value).format is fmt


@pytest.mark.parametrize("value", ["xml", "jsonpath", "jsonpath=", "jsonpath={.items[}", "json=x"])
def test_a_bad_output_is_a_usage_error_naming_the_option(value: str) -> None:
    with pytest.raises(typer.BadParameter) as info:
        parse_output(value)
    assert info.value.param_hint == "'-o' / '--output'"


@pytest.mark.parametrize(("expr", "lines"), [
    ("{.items[*].meta.name}", ["one", "two"]),
    ("$.items[*].meta.name", ["one", "two"]),
    (".items[1].meta.labels", ['{"team":"b"}']),
    ("$.items[?(@.meta.labels.team == 'b')].meta.name", ["two"]),
    ("$.items[5].meta.name", []),
])
def test_jsonpath_on_a_list_is_kubectl_like(expr: str, lines: list[str]) -> None:
    assert jsonpath_lines({"items": to_data(apps())}, parse_output(f"jsonpath={expr}")) == lines


def test_names_are_kind_slash_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert kind_name(pb.ClusterNetwork(meta=pb.Meta(name="shared"))) == "network/shared"
    assert kind_name(pb.Container(meta=pb.Meta(name="web-1"))) == "container/web-1"
    assert render(apps(), parse_output("name"))
    assert capsys.readouterr().out == "application/one\napplication/two\n"
    assert not render(apps(), parse_output("table"))


def test_tables_with_and_without_headers_and_wide(capsys: pytest.CaptureFixture[str]) -> None:
    def row(a: pb.Application) -> list[str]:
        return [a.meta.name]

    emit(apps(), parse_output("table"), ("NAME",), row)
    assert capsys.readouterr().out == "NAME\none\ntwo\n"
    emit(apps(), parse_output("table"), ("NAME",), row, no_headers=True)
    assert capsys.readouterr().out == "one\ntwo\n"
    emit(apps(), parse_output("wide"), ("NAME",), row)
    assert capsys.readouterr().out.splitlines() == ["NAME  LABELS", "one   team=a", "two   team=b"]


@pytest.mark.parametrize(("terms", "labels", "ok"), [
    (["team=a"], {"team": "a"}, True),
    (["team=a"], {"team": "b"}, False),
    (["team!=a"], {"team": "b"}, True),
    (["team!=a"], {}, True),
    (["team"], {"team": ""}, True),
    (["team"], {}, False),
    (["team=a", "tier=web"], {"team": "a"}, False),
    (["v=a=b"], {"v": "a=b"}, True),
])
def test_label_selectors(terms: list[str], labels: dict[str, str], ok: bool) -> None:
    assert matches(labels, parse_selector(terms)) is ok


def test_a_selector_without_a_key_is_a_usage_error() -> None:
    with pytest.raises(typer.BadParameter):
        parse_selector(["=x"])


def test_services_and_containers_match_their_compose_labels_too() -> None:
    c = pb.Container(meta=pb.Meta(name="c", labels={"a": "1"}), spec=pb.ServiceSpec(labels={"b": "2"}))
    assert object_labels(c) == {"a": "1", "b": "2"}
    assert [a.meta.name for a in select(apps(), ["team=b"])] == ["two"]
    assert select(apps(), None) == apps()


def event(kind: str, obj: str, at: int = 100) -> pb.Event:
    return pb.Event(meta=pb.Meta(created_at=Timestamp(seconds=at)), kind=kind, object=obj)


@pytest.mark.parametrize(("wanted", "e", "shown"), [
    (EventFilter(), event("node", "n1"), True),
    (EventFilter(since=100), event("node", "n1", 100), True),
    (EventFilter(since=101), event("node", "n1", 100), False),
    (EventFilter(kinds=["release"]), event("release", "web/r000001"), True),
    (EventFilter(kinds=["release"]), event("application", "web"), False),
    (EventFilter(app="web"), event("application", "web"), True),
    (EventFilter(app="web"), event("application", "web2"), False),
    (EventFilter(app="web"), event("release", "web/r000001"), True),
    (EventFilter(app="web"), event("container", "web/api/api-1-abc"), True),
    (EventFilter(app="web"), event("service", "webx/api"), False),
    (EventFilter(app="web"), event("node", "web"), False),
])
def test_event_filter(wanted: EventFilter, e: pb.Event, shown: bool) -> None:
    assert wanted(e) is shown


def test_contexts_use_rename_and_remove(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    upsert_context("a", Context(server="h:1", token="t"), path)
    upsert_context("b", Context(server="h:2"), path, make_current=False)
    assert use_context("b", path).current_context == "b"
    with pytest.raises(ContextNotFound):
        use_context("c", path)
    cfg = rename_context("b", "c", path)
    assert (cfg.current_context, list(cfg.contexts)) == ("c", ["a", "c"])
    with pytest.raises(ContextExists):
        rename_context("c", "a", path)
    assert load_config(path).contexts["a"].token == "t"  # nothing written by the refusal
    cfg = remove_context("c", path)
    assert (cfg.current_context, list(cfg.contexts)) == (None, ["a"])
    assert load_config(path).current_context is None
