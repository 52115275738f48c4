"""Parse a template sent to the API: input checks, then the parse off the event loop.

Why a pool of its own: a template is untrusted input and a parse may use up to
``--template-cpu-seconds`` of CPU. Run through ``asyncio.to_thread`` it would share the loop's
default executor with every other blocking call, and many slow templates sent at once would
each take a thread and a core. Parses therefore run in a small dedicated pool, one thread per
core: at most that many parse at once, the others wait in the pool's queue (costing nothing),
and a call cancelled while it waits never starts. A parse that has started is stopped at its
next node through its budget when its call is cancelled (a thread cannot be killed), so a
SIGTERM is not held up by it.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import structlog

from controlplane.api.common import MAX_REPLICAS
from controlplane.compose import ParseBudget, ParsedTemplate, check_template_size, parse_template
from controlplane.grpc_errors import InvalidArgument
from controlplane.names import shown

log = structlog.get_logger("ccs.api")
# The template (compose's MAX_TEMPLATE_BYTES), its files together and its env together are
# each at most 1 MiB: the three documents a deploy carries, bounded alike. What is stored
# must also fit one etcd request with the parsed services (app_update.check_fits).
MAX_FILES_BYTES = 1024 * 1024
MAX_ENV_BYTES = 1024 * 1024
MAX_PATH_BYTES = 4096
PARSE_THREADS = max(1, min(4, os.cpu_count() or 1))
_pool = ThreadPoolExecutor(max_workers=PARSE_THREADS, thread_name_prefix="ccs-template-parse")


def check_inputs(template: str, env: Mapping[str, str], files: Mapping[str, str]) -> None:
    """The deploy's inputs before any parsing: sizes, names, and no NUL where none can go."""
    check_template_size(template)
    for k, v in env.items():
        if not k or "=" in k or not k.replace("_", "a").isalnum():
            raise InvalidArgument(f"env[{shown(k)}]", "not a valid variable name")
        if "\0" in v:
            raise InvalidArgument(f"env.{k}", "contains a NUL byte (\\0), which no environment value can hold")
    total = sum(len(k.encode()) + len(v.encode()) for k, v in env.items())
    if total > MAX_ENV_BYTES:
        raise InvalidArgument("env", f"is {total} bytes (names and values); the limit is {MAX_ENV_BYTES} bytes")
    for path in files:
        if not path or "\0" in path or len(path.encode()) > MAX_PATH_BYTES:
            raise InvalidArgument(f"files[{shown(path)}]", f"not a file path: 1 to {MAX_PATH_BYTES} bytes, no NUL")
    total = sum(len(v.encode()) for v in files.values())
    if total > MAX_FILES_BYTES:
        raise InvalidArgument("files", f"are {total} bytes; the limit is {MAX_FILES_BYTES} bytes")


async def parse_checked(
    template: str, env: Mapping[str, str], files: Mapping[str, str], app: str, cpu_seconds: float,
    profiles: Sequence[str] = (),
    stored_values: Collection[str] = (),
) -> ParsedTemplate:
    """Check the inputs, parse in the parse pool under a CPU budget, check the replica limits."""
    check_inputs(template, env, files)
    budget = ParseBudget(cpu_seconds, cpu_clock=time.thread_time)
    log.debug("parsing template", app=app, bytes=len(template))
    call = functools.partial(parse_template, template, env=dict(env), files=dict(files), app_name=app,
                             budget=budget, profiles=list(profiles),
                             stored_values=frozenset(stored_values))
    try:
        parsed = await asyncio.get_running_loop().run_in_executor(_pool, call)
    except asyncio.CancelledError:
        budget.cancel()
        log.info("template parse cancelled", app=app)
        raise
    for name, spec in parsed.services.items():
        if spec.replicas > MAX_REPLICAS:
            raise InvalidArgument(
                f"services.{name}.deploy.replicas", f"{spec.replicas} exceeds the limit of {MAX_REPLICAS}"
            )
    return parsed
