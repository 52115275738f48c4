"""Limits that keep a hostile template from costing more than a bounded amount of work.

A Compose template is user input that the API server parses, so its cost must be bounded by
something the server chooses, not by the template:

- **Aliases** (``&a``/``*a``) are shared in the composed YAML graph but copied when the graph
  becomes plain data, so ten levels of ten aliases ("billion laughs") are 10^10 nodes from a
  few hundred bytes. ``GuardedComposer`` counts, while composing and before anything walks the
  expanded tree, how many nodes every alias stands for, and refuses the template once the
  aliases together would add more than ``MAX_ALIAS_NODES``. Counting uses the composed graph, so
  it costs one step per node written in the file whatever the expansion. An alias to a
  collection that is still open (``&a [*a]``) would expand forever and is refused too.
- **Depth**: every later stage (conversion, interpolation, schema validation) walks the tree
  recursively, and so does the composer itself, so 10,000 nested lists end in a
  ``RecursionError``. The composer refuses nesting deeper than ``MAX_DEPTH`` first. ruamel.yaml
  has a ``max_depth`` of its own, but its message tells users to change ``YAML().max_depth``;
  the check sits in the same override that counts aliases and names ccs's limit instead.
- **CPU**: ruamel.yaml is pure Python (a legal 1 MiB template can take tens of seconds of CPU on
  a small machine), so a parse runs under a ``ParseBudget``: CPU seconds of the parsing thread,
  checked per node by every stage that walks the document. The caller hands the budget its CPU
  clock (the server passes ``time.thread_time``): compose is pure and reads no clock itself, an
  import-linter contract forbids ``time`` here. The same budget carries a cancel
  flag, so an RPC that is cancelled (client gone, server shutting down) stops its parse
  thread at the next node instead of keeping the process alive.

The limits are README facts ("Compose support" section); change them there too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ruamel.yaml.composer import Composer
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode

from controlplane.compose.errors import FieldError, TemplateError

MAX_DEPTH = 100
MAX_ALIAS_NODES = 100_000
DEFAULT_PARSE_CPU_SECONDS = 20.0
_CLOCK_EVERY = 128  # read the thread's CPU clock once per this many nodes


class ParseCancelled(Exception):
    """The caller gave up on this parse (its RPC was cancelled); nobody reads the result."""


def _refuse(message: str) -> TemplateError:
    return TemplateError([FieldError("template", message)])


class ParseBudget:
    """CPU seconds one parse may use, and a flag another thread sets to stop it.

    ``tick()`` is called once per node by every stage that walks the document. It reads
    ``cpu_clock`` (the server passes ``time.thread_time``, the parsing thread's CPU clock) only
    every few nodes, because that is a system call; the cancel flag is a plain attribute, read
    every time. ``cpu_clock=None`` sets no CPU limit (depth, aliases and cancel still apply); it
    must be said explicitly, so no caller loses the limit by forgetting the clock.
    """

    def __init__(
        self, cpu_seconds: float = DEFAULT_PARSE_CPU_SECONDS, *, cpu_clock: Callable[[], float] | None
    ) -> None:
        self.cpu_seconds = cpu_seconds
        self._clock = cpu_clock
        self.cancelled = False
        self._start: float | None = None
        self._ticks = 0

    def cancel(self) -> None:
        """Ask the parsing thread to stop at its next node (called from another thread)."""
        self.cancelled = True

    def tick(self) -> None:
        if self.cancelled:
            raise ParseCancelled()
        self._ticks += 1
        if self._start is None or self._ticks % _CLOCK_EVERY == 0:
            self.check_time()

    def check_time(self) -> None:
        if self._clock is None:
            return
        if self._start is None:
            self._start = self._clock()
            return
        if self._clock() - self._start > self.cpu_seconds:
            raise _refuse(
                f"parsing used more than {self.cpu_seconds:g} s of CPU time, the limit for one "
                "template; make the template smaller"
            )


def _line(node_or_event: Any) -> str:
    mark = getattr(node_or_event, "start_mark", None)
    return f" at line {mark.line + 1}" if mark is not None else ""


class GuardedComposer(Composer):
    """ruamel.yaml's composer, plus the depth limit, the alias budget and the parse budget.

    ``_sizes`` maps each composed node (by id; the graph keeps every node alive) to the number of
    nodes it stands for once aliases are copied. A node gets its size when it is complete, so an
    alias to a node without one points into a collection that is still open: a cycle.
    """

    budget: ParseBudget  # set by guarded_composer()

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self._sizes: dict[int, int] = {}
        self._alias_nodes = 0
        self._nesting = 0
        self.warn_double_anchors = False  # YAML allows redefining an anchor; not worth a warning

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.budget.tick()
        if self.parser.check_event(AliasEvent):
            event = self.parser.peek_event()
            target = self.anchors.get(event.anchor)
            if target is not None:  # an undefined alias is reported by ruamel itself
                self._count_alias(event, target)
            return super().compose_node(parent, index)
        self._nesting += 1
        if self._nesting > MAX_DEPTH:
            raise _refuse(
                f"nesting deeper than {MAX_DEPTH} levels{_line(self.parser.peek_event())}; "
                f"the limit is {MAX_DEPTH} levels of mappings and lists"
            )
        node = super().compose_node(parent, index)
        self._nesting -= 1
        self._sizes[id(node)] = self._size(node)
        return node

    def _size(self, node: Node) -> int:
        if isinstance(node, SequenceNode):
            return 1 + sum(self._sizes[id(child)] for child in node.value)
        if isinstance(node, MappingNode):
            return 1 + sum(self._sizes[id(k)] + self._sizes[id(v)] for k, v in node.value)
        return 1

    def _count_alias(self, event: Any, target: Node) -> None:
        size = self._sizes.get(id(target))
        if size is None:
            raise _refuse(
                f"alias *{event.anchor}{_line(event)} refers to the collection it is part of; "
                "it would expand without end"
            )
        self._alias_nodes += size
        if self._alias_nodes > MAX_ALIAS_NODES:
            raise _refuse(
                f"aliases expand to more than {MAX_ALIAS_NODES} nodes (alias *{event.anchor}"
                f"{_line(event)}); the limit is {MAX_ALIAS_NODES} nodes copied by aliases in "
                "one template"
            )


def guarded_composer(budget: ParseBudget) -> type[GuardedComposer]:
    """A composer class bound to ``budget`` (ruamel instantiates the class it is given)."""
    return type("BudgetedComposer", (GuardedComposer,), {"budget": budget})
