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
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import structlog

from controlplane.api.common import MAX_REPLICAS
from controlplane.compose import MAX_TEMPLATE_BYTES, ParseBudget, ParsedTemplate, parse_template
from controlplane.grpc_errors import InvalidArgument

log = structlog.get_logger("ccs.api")
MAX_FILES_BYTES = 1024 * 1024
PARSE_THREADS = max(1, min(4, os.cpu_count() or 1))
_pool = ThreadPoolExecutor(max_workers=PARSE_THREADS, thread_name_prefix="ccs-template-parse")


def check_inputs(template: str, env: Mapping[str, str], files: Mapping[str, str]) -> None:
    size = len(template.encode())
    if size > MAX_TEMPLATE_BYTES:
        raise InvalidArgument("template", f"is {size} bytes; the limit is {MAX_TEMPLATE_BYTES} bytes (1 MiB)")
    for k in env:
        if not k or "=" in k or not k.replace("_", "a").isalnum():
            raise InvalidArgument(f"env.{k}", "not a valid variable name")
    total = sum(len(v.encode()) for v in files.values())
    if total > MAX_FILES_BYTES:
        raise InvalidArgument("files", f"are {total} bytes; the limit is {MAX_FILES_BYTES} bytes")


async def parse_checked(
    template: str, env: Mapping[str, str], files: Mapping[str, str], app: str, cpu_seconds: float,
    profiles: Sequence[str] = (),
) -> ParsedTemplate:
    """Check the inputs, parse in the parse pool under a CPU budget, check the replica limits."""
    check_inputs(template, env, files)
    budget = ParseBudget(cpu_seconds, cpu_clock=time.thread_time)
    log.debug("parsing template", app=app, bytes=len(template))
    call = functools.partial(parse_template, template, env=dict(env), files=dict(files), app_name=app,
                             budget=budget, profiles=list(profiles))
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
