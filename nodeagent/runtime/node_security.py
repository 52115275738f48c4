"""Security options that name something on the node, finished by the agent before create.

- `seccomp=/path/on/node.json`: the Engine API takes a seccomp profile's JSON *content*; the
  docker CLI reads the file on the client's side. The agent is that client here: it reads the
  file on its node and sends the content, so a profile installed on the nodes (by
  configuration management, say) is used as it is there. A missing or unreadable file, or one
  that is not JSON, fails the container naming the option.
- `apparmor=PROFILE`: an engine without AppArmor accepts the option and runs the container
  without it (seen on Docker 20.10), which would report a confinement that is not there. The
  agent refuses the container unless the engine lists AppArmor among its security options.
  (`apparmor=unconfined` is what such an engine does anyway, so it passes.)

Pure: the caller passes how to read a file and whether the engine has AppArmor, so tests
need neither a node nor an engine.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .types import InvalidSpec


def needs_node(body: dict[str, Any]) -> bool:
    """Whether `resolve` has anything to do for this create body."""
    return any(opt.startswith(("seccomp=/", "apparmor=")) for opt in body.get("HostConfig", {}).get("SecurityOpt", ()))


def resolve(body: dict[str, Any], *, apparmor: bool, read_text: Callable[[str], str]) -> dict[str, Any]:
    """`body` with seccomp profile paths replaced by their content; InvalidSpec on a problem."""
    options = list(body.get("HostConfig", {}).get("SecurityOpt", ()))
    for i, opt in enumerate(options):
        where = f"spec.security_opt[{i}]"
        name, _, value = opt.partition("=")
        if name == "seccomp" and value.startswith("/"):
            try:
                text = read_text(value)
                json.loads(text)
            except OSError as exc:
                raise InvalidSpec(where, f"cannot read the seccomp profile {value} on this node: {exc}") from None
            except ValueError as exc:
                raise InvalidSpec(where, f"the seccomp profile {value} on this node is not JSON: {exc}") from None
            options[i] = f"seccomp={text}"
        elif name == "apparmor" and value != "unconfined" and not apparmor:
            raise InvalidSpec(
                where, f"AppArmor is not enabled on this node's engine, so profile {value!r} would not apply"
            )
    return {**body, "HostConfig": {**body["HostConfig"], "SecurityOpt": options}}
