"""The stacks of a process that a test found hung, for its failure message; and starting a
Python child the way a terminal would, with SIGINT at its default.

Why py-spy: it reads another process's Python and native stacks from outside, without the
process's help, so it works for a process stuck anywhere (the event loop, a grpc thread,
interpreter shutdown); a signal handler inside the process would need the process to run it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def signal_state(pid: int) -> str:
    """The signal masks of ``pid`` (ignored, blocked, caught, pending) from /proc: a process
    started with SIGINT ignored (a background job of a non-interactive shell passes that on
    through exec) never sees a Ctrl-C, whatever its code does."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError as exc:
        return f"(no signal state: {exc})"
    return " ".join(line.replace("\t", "") for line in lines if line.startswith(("SigIgn", "SigBlk", "SigCgt", "SigPnd", "ShdPnd")))


def dump_stacks(pid: int) -> str:
    """``py-spy dump --native`` of ``pid`` (every thread), or why it could not be taken."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    try:
        done = subprocess.run([spy, "dump", "--native", "--pid", str(pid)],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"(no stack dump: {exc})"
    return done.stdout + done.stderr


def with_default_sigint() -> list[str]:
    """The argv prefix that runs this Python with SIGINT set back to its default first.

    Ignored signals stay ignored across exec, so a child of a process that ignores SIGINT
    (any background job of a non-interactive shell) would ignore Ctrl-C. Resetting it in a
    tiny exec shim, rather than with ``preexec_fn``, keeps it safe in a multi-threaded
    parent. Append ``-m module ...`` or a script and its arguments.
    """
    shim = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
            "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])")
    return [sys.executable, "-c", shim]
