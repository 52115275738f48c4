"""Where ``ccs-server``'s and ``ccs-agent``'s options come from: the command line, the
environment and a config file, by one rule for every option.

- **The rule.** Every long option ``--some-option`` is also the environment variable
  ``<PREFIX>SOME_OPTION`` (upper case, dashes to underscores; the prefix is the program's:
  ``CCS_SERVER_`` for ``ccs-server`` and its backup/restore, ``CCS_AGENT_`` for ``ccs-agent``)
  and the key ``some-option`` in the TOML file named by ``--config FILE`` (or
  ``<PREFIX>CONFIG_FILE``). Nothing is listed by hand, so an option added later follows it.
- **Why a prefix per program.** The names were ``CCS_<OPTION>`` for both daemons, and some are
  the CLI's own variables: ``CCS_INSECURE`` (a plaintext CLI; a ccs-server without TLS),
  ``CCS_CONTEXT`` (the CLI's context; the server's context to write), ``CCS_SERVER`` (the
  CLI's API address; the agent's server), and the two daemons shared ``CCS_STATE_DIR``,
  ``CCS_LOG_LEVEL``, ``CCS_LOG_FORMAT`` and ``CCS_METRICS_LISTEN``: a variable exported for the
  CLI or for one daemon changed the other started from the same shell or env file.
- **The old names** (``CCS_<OPTION>``, ``CCS_CONFIG_FILE``) are still read, each with a
  deprecation warning on stderr naming the new one; when the new name is set too, it wins and
  the warning says the old one was not used.
- **Precedence, per option:** command line > environment > file > built-in default. A list
  option (``--label``, ``--advertise``) is taken whole from the first source that has it: the
  command line's items replace the environment's, they are not added to them.
- **Values.** Environment: text as on the command line; a switch (``--insecure``) is
  ``1/true/yes/on`` or ``0/false/no/off``; a list is comma-separated. File: TOML's own types
  (``router-port = 9080``, ``insecure = true``, ``label = ["zone=a", "disk=ssd"]``).
- **Refusals name the source.** An unknown key in the file is refused naming it (with the
  nearest known key), a bad value names the variable or the file and key, and the process does
  not start. The value of a secret option (the join token) never appears in an error; the
  callers log which options came from where, by name only.

Why TOML through the standard library's ``tomllib``: no new dependency, typed values, comments,
and the same format as ``pyproject.toml``. Why a thin layer over ``argparse`` rather than a
settings library: the parsers, their help and their checks stay as they are, and the rule is
derived from them (``argparse``'s action list), so the three sources cannot drift apart.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["AGENT_PREFIX", "CONFIG_ENV", "ENV_PREFIX", "SERVER_PREFIX", "Resolved", "add_config_option", "env_name",
           "options", "parse"]

ENV_PREFIX = "CCS_"  # the old names' prefix, read with a deprecation warning
SERVER_PREFIX = "CCS_SERVER_"
AGENT_PREFIX = "CCS_AGENT_"
CONFIG_ENV = "CCS_CONFIG_FILE"  # the old name of <PREFIX>CONFIG_FILE
TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})
_VALUED = (argparse._StoreAction, argparse._AppendAction)
_SWITCHES = (argparse._StoreTrueAction, argparse._StoreFalseAction)


@dataclass(frozen=True)
class Resolved:
    """The parsed options and, per option taken from elsewhere than the command line, whence
    (``"env CCS_X"`` or ``"file F"``): names only, safe to log."""

    namespace: argparse.Namespace
    sources: dict[str, str] = field(default_factory=dict)
    config_file: Path | None = None


def env_name(option: str, prefix: str = ENV_PREFIX) -> str:
    """``--join-token`` -> ``CCS_AGENT_JOIN_TOKEN`` with ``prefix`` ``CCS_AGENT_`` (default: the
    old name, ``CCS_JOIN_TOKEN``)."""
    return prefix + option.lstrip("-").upper().replace("-", "_")


def add_config_option(parser: argparse.ArgumentParser, prefix: str) -> None:
    parser.add_argument(
        "--config", type=Path, metavar="FILE",
        help=f"TOML file of options (key = the option without '--'; also ${prefix}CONFIG_FILE); every option "
        f"is also read from ${prefix}<OPTION>; precedence: flag > environment > file > default")


def _env(env: Mapping[str, str], new: str, old: str, program: str, warn: Callable[[str], None]) -> str | None:
    """The value of ``new``, else of the deprecated ``old`` name; a warning for any use of ``old``."""
    if new in env:
        if old in env and old != new:
            warn(f"{program}: {old} is deprecated and was not used: {new} is set (the {old} name is shared "
                 "with the ccs CLI or the other daemon)")
        return env[new]
    if old in env and old != new:
        warn(f"{program}: {old} is deprecated (the name is shared with the ccs CLI or the other daemon); "
             f"use {new}")
        return env[old]
    return None


def _stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _long(action: argparse.Action) -> str | None:
    return next((s for s in action.option_strings if s.startswith("--")), None)


def options(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.Action]]:
    """The options the rule covers: valued options and switches (not --help, --version,
    --config), by their long name without dashes."""
    out: list[tuple[str, argparse.Action]] = []
    for action in parser._actions:
        name = _long(action)
        if name is None or name == "--config" or not isinstance(action, _VALUED + _SWITCHES):
            continue
        out.append((name[2:], action))
    return out


def _given(parser: argparse.ArgumentParser, argv: list[str] | None) -> dict[str, Any]:
    """The options given on the command line: a parse with every default suppressed."""
    saved = [(a, a.default) for a in parser._actions]
    try:
        for action in parser._actions:
            action.default = argparse.SUPPRESS
        return vars(parser.parse_args(argv))
    finally:
        for action, default in saved:
            action.default = default


def _convert(action: argparse.Action, raw: str, where: str, secret: bool) -> Any:
    shown = "the value" if secret else repr(raw)
    try:
        value = action.type(raw) if callable(action.type) else raw
    except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
        raise ValueError(f"{where}: {shown} is not valid ({exc})" if not secret else f"{where}: not valid") from None
    if action.choices is not None and value not in action.choices:
        choices = ", ".join(repr(c) for c in action.choices)
        raise ValueError(f"{where}: {shown} is not one of {choices}")
    return value


def _switch(action: argparse.Action, on: bool) -> Any:
    return action.const if on else (not action.const)


def _from_env(action: argparse.Action, raw: str, var: str, secret: bool) -> Any:
    if isinstance(action, _SWITCHES):
        word = raw.strip().lower()
        if word not in TRUE | FALSE:
            raise ValueError(f"{var}: expected one of 1/true/yes/on or 0/false/no/off, got {raw!r}")
        return _switch(action, word in TRUE)
    if isinstance(action, argparse._AppendAction):
        return [_convert(action, item.strip(), var, secret) for item in raw.split(",") if item.strip()]
    return _convert(action, raw, var, secret)


def _scalar(value: object, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{where}: expected a string or a number, got {type(value).__name__}")
    return str(value)


def _from_file(action: argparse.Action, value: object, where: str, secret: bool) -> Any:
    if isinstance(action, _SWITCHES):
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected true or false, got {type(value).__name__}")
        return _switch(action, value)
    if isinstance(action, argparse._AppendAction):
        items = value if isinstance(value, list) else [value]
        return [_convert(action, _scalar(item, where), where, secret) for item in items]
    return _convert(action, _scalar(value, where), where, secret)


def _load(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ValueError(f"--config {path}: cannot read it: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"--config {path}: not valid TOML: {exc}") from None


def parse(
    parser: argparse.ArgumentParser,
    argv: list[str] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    prefix: str,
    program: str,
    secret: Iterable[str] = (),
    extra_keys: Iterable[str] = (),
    warn: Callable[[str], None] = _stderr,
) -> Resolved:
    """Parse ``argv`` with ``parser`` (which has ``add_config_option``), filling every option
    not on the command line from ``env`` (default: ``os.environ``): ``<prefix><OPTION>``, else
    the deprecated ``CCS_<OPTION>`` (``warn`` says so, on stderr by default; ``program`` names
    the reader), then from the config file.

    ``secret``: option names (``join-token``) whose values never appear in errors.
    ``extra_keys``: file keys accepted without effect here because another command reading the
    same file uses them (``ccs-server backup`` reads the server's file). A bad source ends the
    process through ``parser.error`` (exit 2), naming the variable or the file's key."""
    env = os.environ if env is None else env
    secrets = set(secret)
    given = _given(parser, argv)
    ns = parser.parse_args(argv)
    config_file = given.get("config")
    if config_file is None:
        named = _env(env, f"{prefix}CONFIG_FILE", CONFIG_ENV, program, warn)
        config_file = Path(named) if named else None
    covered = options(parser)
    try:
        data = _load(config_file) if config_file is not None else {}
        known = {name for name, _ in covered} | set(extra_keys)
        for key in data:
            if key not in known:
                near = difflib.get_close_matches(key, sorted(known), n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                raise ValueError(f"--config {config_file}: unknown key {key!r}{hint}")
        sources: dict[str, str] = {}
        for name, action in covered:
            if action.dest in given:
                continue
            var, old = env_name(name, prefix), env_name(name)
            raw = _env(env, var, old, program, warn)
            if raw is not None:
                var = var if var in env else old
                setattr(ns, action.dest, _from_env(action, raw, var, name in secrets))
                sources[name] = f"env {var}"
            elif name in data:
                where = f"--config {config_file}: {name}"
                setattr(ns, action.dest, _from_file(action, data[name], where, name in secrets))
                sources[name] = f"file {config_file}"
    except ValueError as exc:
        parser.error(str(exc))
    return Resolved(ns, sources, config_file)
