"""Which assignment gets which registry login (controlplane.dispatcher.pull_auth), and the agent
keeping it beside its container only (nodeagent.assignments)."""

from __future__ import annotations

import datetime as dt

import pytest

from ccs.v1 import agent_pb2
from ccs.v1 import resources_pb2 as pb
from controlplane.dispatcher import outgoing
from controlplane.dispatcher.outgoing import attach
from controlplane.dispatcher.pull_auth import login_host
from controlplane.registry.logins import Login
from nodeagent.assignments import AssignmentBook

UPDATE, REMOVE = agent_pb2.Assignment.ACTION_UPDATE, agent_pb2.Assignment.ACTION_REMOVE


class Logins:
    def __init__(self, *hosts: str) -> None:
        self.hosts = hosts
        self.reads = 0

    async def get(self, cluster: str, host: str) -> Login | None:
        self.reads += 1
        return Login(host, "ci", f"pw-{host}", "", dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) if host in self.hosts else None


def assignment(cid: str, image: str, action: int = UPDATE, registry_login: str = "") -> agent_pb2.Assignment:
    c = pb.Container(spec=pb.ServiceSpec(image=image, registry_login=registry_login))
    c.meta.id = cid
    return agent_pb2.Assignment(action=action, container=c)  # type: ignore[arg-type]


def test_login_host() -> None:
    assert login_host("127.0.0.1:5000/web:1@sha256:" + "a" * 64, "") == "127.0.0.1:5000"
    assert login_host("local/busybox:1", "") == ""
    assert login_host("local/busybox:1", "r.example.com") == ""  # no password to Docker Hub
    assert login_host("other.example.com/x:1", "r.example.com") == ""  # nor to another registry
    assert login_host("r.example.com/x:1", "r.example.com") == "r.example.com"
    assert login_host("Not A Ref", "") == ""


async def test_only_the_pulls_that_need_a_login_get_it() -> None:
    msg = agent_pb2.SessionMessage(assignments=[
        assignment("a", "127.0.0.1:5000/web:1"),
        assignment("b", "local/busybox:1"),
        assignment("c", "other.example.com/x:1"),
        assignment("d", "127.0.0.1:5000/web:1", REMOVE),
        assignment("e", "local/busybox:1", registry_login="127.0.0.1:5000"),
    ])
    logins = Logins("127.0.0.1:5000")
    out = await attach(None, logins, "c1", msg)
    got = {a.container.meta.id: a.pull_auth.password for a in out.assignments if a.HasField("pull_auth")}
    assert got == {"a": "pw-127.0.0.1:5000"}  # "e": 127.0.0.1:5000's password is not for Docker Hub
    assert not any(a.HasField("pull_auth") for a in msg.assignments)  # the hub's message is not changed
    assert logins.reads == 2  # once per host (127.0.0.1:5000, other.example.com)


async def test_a_message_without_registry_images_reads_nothing() -> None:
    msg = agent_pb2.SessionMessage(assignments=[assignment("b", "local/busybox:1")])
    logins = Logins("127.0.0.1:5000")
    assert await attach(None, logins, "c1", msg) is msg
    assert logins.reads == 0


def test_the_agent_keeps_a_login_only_while_its_container_is_desired() -> None:
    book = AssignmentBook()
    a = assignment("a", "127.0.0.1:5000/web:1")
    a.pull_auth.CopyFrom(agent_pb2.PullAuth(registry="127.0.0.1:5000", username="ci", password="pw"))
    book.apply(agent_pb2.SessionMessage(type=agent_pb2.SessionMessage.TYPE_COMPLETE, version=1, assignments=[a]))
    assert book.auth["a"].password == "pw"
    book.apply(agent_pb2.SessionMessage(type=agent_pb2.SessionMessage.TYPE_INCREMENTAL, version=2, base_version=1,
                                        assignments=[assignment("a", "127.0.0.1:5000/web:1", REMOVE)]))
    assert "a" not in book.auth


class Values:
    """The secret values the dispatcher mounts, by name (as controlplane.secrets.store.SecretStore answers)."""

    async def get(self, cluster: str, kind: str, name: str, version: int | None) -> str:
        return name

    async def value(self, v: str) -> bytes:
        return f"value-of-{v}".encode()


async def test_a_message_with_mounted_values_and_logins_is_copied_once(monkeypatch: pytest.MonkeyPatch) -> None:
    copies = []
    real_copy = outgoing._copy

    def counted(msg: agent_pb2.SessionMessage) -> agent_pb2.SessionMessage:
        copies.append(msg)
        return real_copy(msg)

    monkeypatch.setattr(outgoing, "_copy", counted)
    a = assignment("a", "127.0.0.1:5000/web:1")
    a.container.spec.secrets.add(name="db", version=1)
    msg = agent_pb2.SessionMessage(assignments=[a])
    out = await outgoing.attach(Values(), Logins("127.0.0.1:5000"), "c1", msg)  # type: ignore[arg-type]
    assert [(f.name, f.data) for f in out.assignments[0].files] == [("db", b"value-of-db")]
    assert out.assignments[0].pull_auth.password == "pw-127.0.0.1:5000"
    assert len(copies) == 1
    assert not msg.assignments[0].files and not msg.assignments[0].HasField("pull_auth")
