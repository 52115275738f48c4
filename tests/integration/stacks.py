"""The stacks of a process that a test found hung, for its failure message.

Why py-spy: it reads another process's Python and native stacks from outside, without the
process's help, so it works for a process stuck anywhere (the event loop, a grpc thread,
interpreter shutdown); a signal handler inside the process would need the process to run it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def dump_stacks(pid: int) -> str:
    """``py-spy dump --native`` of ``pid`` (every thread), or why it could not be taken."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    try:
        done = subprocess.run([spy, "dump", "--native", "--pid", str(pid)],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"(no stack dump: {exc})"
    return done.stdout + done.stderr
