"""Version chaining of session messages and the assignment book (nodeagent.assignments)."""

from __future__ import annotations

import pytest

from ccs.v1 import agent_pb2
from ccs.v1 import resources_pb2 as pb
from nodeagent.assignments import AssignmentBook, ChainBroken, Decision, decide

from .test_agent_helpers import complete, container, incremental

UPD, REM = agent_pb2.Assignment.ACTION_UPDATE, agent_pb2.Assignment.ACTION_REMOVE


@pytest.mark.parametrize(
    ("held", "msg", "decision"),
    [
        (None, complete(5), Decision.APPLY_COMPLETE),
        (7, complete(5), Decision.APPLY_COMPLETE),  # a COMPLETE always resets
        (5, incremental(5, 6), Decision.APPLY_INCREMENTAL),
        (5, incremental(4, 6), Decision.RESYNC),  # a message was lost
        (5, incremental(6, 7), Decision.RESYNC),
        (None, incremental(0, 1), Decision.RESYNC),  # increment before any complete set
        (5, agent_pb2.SessionMessage(version=6, base_version=5), Decision.RESYNC),  # unknown type
    ],
)
def test_decide(held: int | None, msg: agent_pb2.SessionMessage, decision: Decision) -> None:
    assert decide(held, msg) is decision


def test_book_applies_chain_and_tracks_removals() -> None:
    book = AssignmentBook()
    assert not book.synced
    assert book.apply(complete(1, container("a"), container("b"))) == {"a", "b"}
    assert book.synced and book.version == 1
    changed = book.apply(incremental(1, 2, (REM, container("a")), (UPD, container("c"))))
    assert changed == {"a", "c"}
    assert set(book.desired) == {"b", "c"} and set(book.removing) == {"a"}
    assert book.get("a") == (book.removing["a"], True)
    # desired_state REMOVED with action UPDATE is a removal too
    book.apply(incremental(2, 3, (UPD, container("b", pb.DESIRED_STATE_REMOVED))))
    assert set(book.removing) == {"a", "b"}
    book.forget("a")
    assert book.get("a") == (None, False)


def test_book_refuses_a_broken_chain_and_keeps_state() -> None:
    book = AssignmentBook()
    book.apply(complete(3, container("a")))
    with pytest.raises(ChainBroken, match="held version 3"):
        book.apply(incremental(2, 4, (UPD, container("z"))))
    assert book.version == 3 and set(book.desired) == {"a"}


def test_complete_set_moves_dropped_containers_to_removing() -> None:
    book = AssignmentBook()
    book.apply(complete(1, container("a"), container("b")))
    assert book.apply(complete(9, container("b"))) == {"a", "b"}
    assert set(book.desired) == {"b"} and set(book.removing) == {"a"} and book.version == 9


def test_the_book_keeps_each_containers_mounted_values_and_drops_them_with_it() -> None:
    book = AssignmentBook()
    msg = complete(1, container("a"), container("b"))
    msg.assignments[0].files.add(kind="secret", name="db", version=2, data=b"pw")
    book.apply(msg)
    assert [(f.name, f.data) for f in book.files["a"]] == [("db", b"pw")] and book.files["b"] == []
    # A newer assignment replaces them; a removal or a complete set without the container drops them.
    update = incremental(1, 2, (agent_pb2.Assignment.ACTION_UPDATE, container("a")))
    update.assignments[0].files.add(kind="secret", name="db", version=3, data=b"pw3")
    book.apply(update)
    assert [f.version for f in book.files["a"]] == [3]
    book.apply(incremental(2, 3, (agent_pb2.Assignment.ACTION_REMOVE, container("a"))))
    assert "a" not in book.files
    book.apply(complete(4))
    assert book.files == {}
