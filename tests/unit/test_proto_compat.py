"""The current protos against the previous release's: an agent one release older keeps working.

The previous schema is a snapshot of its descriptors (``tests/data/protos-previous``, written by
``protos/generate.py --previous REF``). Its message classes are built at run time from those
descriptors, in a pool of their own, so the two schemas meet only on the wire, as an old agent
and a new server do."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, cast

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from ccs.v1 import agent_pb2, resources_pb2
from tests.proto_compat import PACKAGE, PREVIOUS_SET, ROOT, check, current_files, previous_files

OLD: dict[str, type[Message]] = message_factory.GetMessages(previous_files(), pool=descriptor_pool.DescriptorPool())
CURRENT = current_files()  # imports every generated ccs.v1 module, so the default pool holds them all
NEW_POOL = descriptor_pool.Default()


def new_class(full_name: str) -> type[Message]:
    return message_factory.GetMessageClass(NEW_POOL.FindMessageTypeByName(full_name))


def old_agent_messages() -> list[str]:
    """Every request and response of the previous release's Dispatcher service: what an agent sends and receives."""
    pool = next(iter(OLD.values())).DESCRIPTOR.file.pool
    service = pool.FindServiceByName(f"{PACKAGE}.Dispatcher")
    names = {m.input_type.full_name for m in service.methods} | {m.output_type.full_name for m in service.methods}
    return sorted(names)


OLD_MESSAGES = sorted(n for n in OLD if n.startswith(f"{PACKAGE}.") and not OLD[n].DESCRIPTOR.GetOptions().map_entry)


# ---------------------------------------------------------------- schema


def test_current_schema_is_compatible_with_the_previous_release() -> None:
    found = check(previous_files(), CURRENT)
    assert not found, (
        "these proto changes break a peer of the previous release; add fields instead of changing them, "
        "and reserve a removed field's number and name (README, Protocol compatibility):\n"
        + "\n".join(map(str, found)))


def test_snapshot_is_the_previous_release_compiled() -> None:
    """The snapshot is what ``generate.py --previous`` makes of the commit SOURCE names, not a
    hand-edited binary. Skipped where that commit is not in the clone (a shallow checkout)."""
    commit = (PREVIOUS_SET.parent / "SOURCE").read_text().split()[0]
    if subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{commit}^{{commit}}"],
                      capture_output=True).returncode != 0:
        pytest.skip(f"commit {commit} is not in this clone")
    assert {f.name for f in previous_files()} >= {"ccs/v1/agent.proto", "ccs/v1/resources.proto"}
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, str(ROOT / "protos" / "generate.py"), "--previous", commit, "--out", tmp],
                       check=True, capture_output=True)
        fresh = descriptor_pb2.FileDescriptorSet.FromString((Path(tmp) / PREVIOUS_SET.name).read_bytes())
        source = (Path(tmp) / "SOURCE").read_text()
    # Compared as descriptors, not bytes, so a newer protoc that encodes the same schema passes.
    assert fresh == descriptor_pb2.FileDescriptorSet(file=previous_files())
    assert source == (PREVIOUS_SET.parent / "SOURCE").read_text()


# ---------------------------------------------------------------- every message, both ways


def descriptor(msg: Message | type[Message]) -> Descriptor:
    # The stubs type DESCRIPTOR as the pure-Python or the upb class; both have this interface.
    return cast(Descriptor, msg.DESCRIPTOR)


def fill(msg: Message, depth: int = 0) -> Message:
    """Set every field of ``msg`` (one member per oneof, two items per repeated field) to a
    non-default value derived from its number, down to a few levels of nesting."""
    seen_oneofs: set[str] = set()
    for f in descriptor(msg).fields:
        if f.containing_oneof is not None and not f.containing_oneof.name.startswith("_"):
            if f.containing_oneof.name in seen_oneofs:
                continue
            seen_oneofs.add(f.containing_oneof.name)
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            entries = getattr(msg, f.name)
            value_field = f.message_type.fields_by_name["value"]
            for i in (1, 2):
                key = _scalar(f.message_type.fields_by_name["key"], i)
                if value_field.message_type is not None:
                    if depth < 4:
                        fill(entries[key], depth + 1)
                else:
                    entries[key] = _scalar(value_field, i)
        elif f.message_type is not None:
            if depth >= 4:
                continue
            if f.is_repeated:
                for _ in (1, 2):
                    fill(getattr(msg, f.name).add(), depth + 1)
            else:
                fill(getattr(msg, f.name), depth + 1)
        elif f.is_repeated:
            getattr(msg, f.name).extend([_scalar(f, 1), _scalar(f, 2)])
        else:
            setattr(msg, f.name, _scalar(f, 1))
    return msg


def _scalar(f: FieldDescriptor, i: int) -> Any:
    if f.enum_type is not None:
        return f.enum_type.values[-1].number  # the newest value the schema knows
    if f.cpp_type == FieldDescriptor.CPPTYPE_STRING:
        return f"{f.name}-{i}" if f.type == FieldDescriptor.TYPE_STRING else f"{f.name}-{i}".encode()
    if f.cpp_type == FieldDescriptor.CPPTYPE_BOOL:
        return True
    if f.cpp_type in (FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT):
        return f.number + i + 0.5
    return f.number * 10 + i


def as_dict(msg: Message) -> dict[str, Any]:
    return json_format.MessageToDict(msg, preserving_proto_field_name=True, use_integers_for_enums=True)


def known_to(value: Any, desc: Descriptor) -> Any:
    """``value`` (an ``as_dict`` of a newer message) without the fields ``desc`` does not have."""
    if desc.full_name.startswith("google.protobuf."):
        return value  # well-known types have their own JSON form
    out = {}
    for key, item in value.items():
        f = desc.fields_by_name.get(key)
        if f is None:
            continue
        sub = f.message_type
        if sub is not None and sub.GetOptions().map_entry:
            vt = sub.fields_by_name["value"].message_type
            out[key] = {k: known_to(v, vt) for k, v in item.items()} if vt is not None else item
        elif sub is not None and f.is_repeated:
            out[key] = [known_to(v, sub) for v in item]
        elif sub is not None:
            out[key] = known_to(item, sub)
        else:
            out[key] = item
    return out


def test_the_agents_messages_are_among_those_sent_across() -> None:
    assert set(old_agent_messages()) <= set(OLD_MESSAGES)
    assert len(OLD_MESSAGES) > 50


@pytest.mark.parametrize("name", OLD_MESSAGES)
def test_previous_message_parses_in_current_schema(name: str) -> None:
    """Old -> new: everything an old peer sets arrives, under the same names (a field the
    current schema did not know would be missing from its dict)."""
    old = fill(OLD[name]())
    new = new_class(name).FromString(old.SerializeToString())
    assert as_dict(new) == as_dict(old)


@pytest.mark.parametrize("name", OLD_MESSAGES)
def test_current_message_parses_in_previous_schema(name: str) -> None:
    """New -> old: an old peer reads every field it knows, and a newer field it does not know
    survives its re-serialization (it is kept as an unknown field, not dropped)."""
    new = fill(new_class(name)())
    old = OLD[name].FromString(new.SerializeToString())
    assert as_dict(old) == known_to(as_dict(new), descriptor(OLD[name]))
    assert new_class(name).FromString(old.SerializeToString()) == new


# ---------------------------------------------------------------- the agent's messages, by hand


def test_old_agent_heartbeat_with_router_stats() -> None:
    old = OLD[f"{PACKAGE}.HeartbeatRequest"]()
    json_format.ParseDict({
        "status": {"state": "NODE_STATE_READY", "address": "10.77.0.11", "agent_version": "0.1.0",
                   "capacity": {"cpus": 2.0, "memory_bytes": 4 << 30}},
        "router_stats": {"node": "h1", "routing_version": 7,
                         "backends": [{"application": "shop", "service": "web", "container": "c1",
                                       "requests": 120, "responses_5xx": 3, "connection_errors": 1}]},
    }, old)
    new = agent_pb2.HeartbeatRequest.FromString(old.SerializeToString())
    assert new.status.state == resources_pb2.NODE_STATE_READY
    assert new.status.address == "10.77.0.11"
    assert new.status.capacity.memory_bytes == 4 << 30
    (backend,) = new.router_stats.backends
    assert (backend.container, backend.requests, backend.responses_5xx, backend.connection_errors) == ("c1", 120, 3, 1)
    assert new.router_stats.routing_version == 7


def test_old_agent_status_update_with_container_statuses() -> None:
    old = OLD[f"{PACKAGE}.UpdateStatusRequest"]()
    json_format.ParseDict({"updates": [
        {"application": "shop", "service": "web", "container": "c1",
         "status": {"state": "CONTAINER_STATE_FAILED", "exit_code": 125, "message": "image not found: x:1",
                    "docker_id": "abc", "updated_at": "2026-11-30T05:00:00Z",
                    "endpoints": [{"container": "c1", "node": "h1", "address": "10.77.0.11",
                                   "published": 30001, "target": 80, "protocol": "tcp"}]}},
        {"application": "shop", "service": "db", "container": "c2",
         "status": {"state": "CONTAINER_STATE_HEALTHY", "started_at": "2026-11-30T04:59:00Z"}},
    ]}, old)
    new = agent_pb2.UpdateStatusRequest.FromString(old.SerializeToString())
    failed, healthy = new.updates
    assert failed.status.state == resources_pb2.CONTAINER_STATE_FAILED
    assert (failed.status.exit_code, failed.status.message) == (125, "image not found: x:1")
    assert failed.status.endpoints[0].published == 30001
    assert failed.status.updated_at.ToJsonString() == "2026-11-30T05:00:00Z"
    assert healthy.container == "c2" and healthy.status.state == resources_pb2.CONTAINER_STATE_HEALTHY


def test_old_agent_register_and_session_request() -> None:
    reg = OLD[f"{PACKAGE}.RegisterRequest"]()
    json_format.ParseDict({"join_token": "tok", "name": "h1", "labels": {"zone": "a"},
                           "status": {"hostname": "h1", "os": "linux", "arch": "x86_64"}}, reg)
    new = agent_pb2.RegisterRequest.FromString(reg.SerializeToString())
    assert (new.join_token, new.name, dict(new.labels), new.status.arch) == ("tok", "h1", {"zone": "a"}, "x86_64")
    session = OLD[f"{PACKAGE}.SessionRequest"](agent_version="0.0.9")
    assert agent_pb2.SessionRequest.FromString(session.SerializeToString()).agent_version == "0.0.9"


def test_new_server_session_message_reaches_an_old_agent() -> None:
    """The server's assignments and routes as the current schema writes them, read by the
    previous release's agent: every field it knows is intact."""
    new = agent_pb2.SessionMessage(
        type=agent_pb2.SessionMessage.TYPE_INCREMENTAL, version=8, base_version=7, heartbeat_period_ms=5000)
    container = resources_pb2.Container(
        cluster="prod", application="shop", service="web", node="h1", slot=2, spec_generation=3, app_revision=4,
        desired_state=resources_pb2.DESIRED_STATE_RUNNING)
    container.meta.id = "c1"
    container.spec.image = "local/web:2"
    container.stop_after.FromSeconds(1_800_000_000)
    new.assignments.add(action=agent_pb2.Assignment.ACTION_UPDATE, container=container)
    new.assignments.add(action=agent_pb2.Assignment.ACTION_REMOVE).container.meta.id = "c0"
    route = new.routing.routes.add(application="shop", service="web", domain="shop.example", path="/")
    route.backends.add(container="c1", address="10.77.0.11", port=30001, weight=100, group="canary")
    new.routing.version = 12

    old = OLD[f"{PACKAGE}.SessionMessage"].FromString(new.SerializeToString())
    got = as_dict(old)
    assert (got["type"], got["version"], got["base_version"], got["heartbeat_period_ms"]) == (2, "8", "7", "5000")
    update, remove = got["assignments"]
    assert update["action"] == 1 and remove == {"action": 2, "container": {"meta": {"id": "c0"}}}
    assert update["container"]["spec"]["image"] == "local/web:2"
    assert update["container"]["stop_after"] == "2027-01-15T08:00:00Z"
    assert (update["container"]["slot"], update["container"]["desired_state"]) == (2, container.desired_state)
    assert got["routing"]["routes"][0]["backends"][0] == {
        "container": "c1", "address": "10.77.0.11", "port": 30001, "weight": 100, "group": "canary"}
    assert got == as_dict(new)  # no field of this message is newer than the previous release


def test_fields_the_old_agent_does_not_know_survive_it() -> None:
    """A field newer than the previous release (here ApplicationSpec.template_revision) is
    carried through an old peer's parse and re-serialization unchanged."""
    new = resources_pb2.ApplicationSpec(template="services: {}", version="v2", template_revision=9)
    old_class = OLD[f"{PACKAGE}.ApplicationSpec"]
    assert "template_revision" not in old_class.DESCRIPTOR.fields_by_name
    old = old_class.FromString(new.SerializeToString())
    assert as_dict(old) == {"template": "services: {}", "version": "v2"}
    assert resources_pb2.ApplicationSpec.FromString(old.SerializeToString()).template_revision == 9


def test_timestamps_share_one_wire_form() -> None:
    """The old pool has its own google.protobuf.Timestamp: it still reads the current one."""
    stamp = Timestamp(seconds=1_800_000_000, nanos=5)
    status = resources_pb2.ContainerStatus(started_at=stamp)
    old = OLD[f"{PACKAGE}.ContainerStatus"].FromString(status.SerializeToString())
    assert as_dict(old)["started_at"] == stamp.ToJsonString()
