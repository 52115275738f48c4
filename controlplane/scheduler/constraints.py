"""Placement constraints and spread preferences: parsing, validation and matching.

The grammar and matching rules follow Docker Swarm (swarmkit ``manager/constraint``) on purpose, so a
Compose file that deploys on Swarm means the same thing here:

- ``KEY==VALUE`` or ``KEY!=VALUE``, whitespace around the parts is ignored;
- keys: ``node.id``, ``node.hostname``, ``node.role``, ``node.platform.os``, ``node.platform.arch``
  and ``node.labels.KEY``;
- values compare case-insensitively (swarmkit uses ``strings.EqualFold``);
- a node without the label has the empty value, so ``node.labels.zone!=eu`` matches it and
  ``node.labels.zone==eu`` does not.

:func:`parse_constraints` and :func:`parse_spread` are public so that the Compose parser can validate
a template with exactly the rules the scheduler applies, instead of a second copy of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

LABEL_PREFIX = "node.labels."
ATTRIBUTE_KEYS = ("node.id", "node.hostname", "node.role", "node.platform.os", "node.platform.arch")
ROLES = ("worker", "manager")

# The same character classes as swarmkit, so that anything Swarm accepts is accepted here.
_LABEL_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9\-_./]*$")
_VALUE = re.compile(r"^[A-Za-z0-9:\-_\s.*()?+\[\]\\^$|/]+$")
_SUPPORTED = ", ".join(ATTRIBUTE_KEYS) + ", node.labels.KEY"


class InvalidSpecError(ValueError):
    """A service spec the scheduler cannot act on; ``field`` names the offending spec field.

    It is a permanent error: retrying the same spec gives the same answer, so a reconciler should
    surface it on the service instead of requeueing.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True, slots=True)
class Constraint:
    """One parsed constraint. ``label`` is set for ``node.labels.*`` keys, else ``key`` is used."""

    key: str
    equal: bool
    value: str
    label: str | None = None

    @property
    def folded(self) -> str:
        """The value as compared: case-folded, like swarmkit's EqualFold."""
        return self.value.casefold()

    def __str__(self) -> str:
        return f"{self.key}{'==' if self.equal else '!='}{self.value}"


def parse_constraint(text: str, field: str = "placement.constraints") -> Constraint:
    """Parse ``KEY==VALUE`` / ``KEY!=VALUE``; raise :class:`InvalidSpecError` naming ``field``."""
    ops = [op for op in ("==", "!=") if op in text]
    if len(ops) != 1 or text.count(ops[0]) != 1:
        raise InvalidSpecError(
            field, f"{text!r} is not a constraint; expected KEY==VALUE or KEY!=VALUE"
        )
    op = ops[0]
    raw_key, raw_value = (part.strip() for part in text.split(op))
    key = raw_key.lower() if not raw_key.lower().startswith(LABEL_PREFIX) else raw_key
    if not raw_value or not _VALUE.match(raw_value):
        raise InvalidSpecError(field, f"{text!r} has an empty or invalid value {raw_value!r}")
    label: str | None = None
    if key.lower().startswith(LABEL_PREFIX):
        label = key[len(LABEL_PREFIX) :]
        key = LABEL_PREFIX + label
        if not _LABEL_KEY.match(label):
            raise InvalidSpecError(field, f"{text!r} has an invalid label name {label!r}")
    elif key not in ATTRIBUTE_KEYS:
        raise InvalidSpecError(
            field, f"{text!r} has unknown key {raw_key!r}; supported keys: {_SUPPORTED}"
        )
    elif key == "node.role" and raw_value.lower() not in ROLES:
        raise InvalidSpecError(
            field, f"{text!r}: node.role must be worker or manager, not {raw_value!r}"
        )
    return Constraint(key=key, equal=op == "==", value=raw_value, label=label)


@lru_cache(maxsize=4096)
def _parse_all(texts: tuple[str, ...]) -> tuple[Constraint, ...]:
    return tuple(
        parse_constraint(text, f"placement.constraints[{i}]") for i, text in enumerate(texts)
    )


def parse_constraints(texts: Sequence[str]) -> tuple[Constraint, ...]:
    """Parse a spec's constraint list; cached, since every service in every pass re-reads them."""
    return _parse_all(tuple(texts))


def parse_spread(keys: Sequence[str]) -> tuple[str, ...]:
    """Validate spread preferences and return the label names, in order of precedence.

    Only node labels can be spread over: spreading over ids or hostnames is what the scheduler
    does anyway, and roles are a constraint, not a topology.
    """
    labels: list[str] = []
    for i, raw in enumerate(keys):
        key = raw.strip()
        label = key[len(LABEL_PREFIX) :] if key.lower().startswith(LABEL_PREFIX) else ""
        if not label or not _LABEL_KEY.match(label):
            raise InvalidSpecError(
                f"placement.spread[{i}]", f"{raw!r} is not supported; use node.labels.KEY"
            )
        labels.append(label)
    return tuple(labels)
