"""``ccs release ls|get|shift|confirm|rollback|promote|abort``, and the ``--wait`` follower
that ``app update``/``app rollback`` share.

The operator verbs are requests the control plane acts on, so without ``--wait`` they print
the release as it is right after the request. With ``--wait`` they follow it until it ends:
one plain line per change when stdout is not a terminal (stable for CI logs), a live status
line on a terminal. The exit code tells the outcome: 0 succeeded, 10 rolled back, failed or
superseded (the reason is printed), 9 timed out (the release goes on).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.text import Text

from ccs.client import AsyncClient
from ccs.errors import ReleaseFailed, WaitTimeout
from ccs.models import StepsError, parse_steps, phase_name
from ccs.release_phases import awaits_operator
from ccs.v1 import resources_pb2
from cli.output import TABLE, NoHeadersOpt, Output, OutputOpt, age, emit, render
from cli.session import ClusterOpt, fail, session

app = typer.Typer(
    help="Follow and steer releases (rolling, blue-green, canary).", no_args_is_help=True
)

EXIT_TIMEOUT = 9
EXIT_RELEASE_FAILED = 10
HEADERS = ("NAME", "STRATEGY", "PHASE", "REVISIONS", "UPDATED", "WEIGHT", "STEP", "AGE")
AppArg = Annotated[str, typer.Argument(help="Application name.")]
WaitOpt = Annotated[
    bool, typer.Option("--wait", help="Follow the release until it ends (exit 10 if it fails).")
]
def _duration(value: str | float) -> float:
    if isinstance(value, float | int):
        return float(value)
    from cli.progress import parse_duration

    return parse_duration(value)


TimeoutOpt = Annotated[
    float,
    typer.Option("--timeout", parser=_duration, metavar="DURATION",
                 help="How long --wait waits: 90s, 1m30s, 1h, 1d or seconds (exit 9 after)."),
]
DEFAULT_TIMEOUT = 900.0


def step_text(rel: resources_pb2.Release) -> str:
    """Where the release is: the canary step (``2/3``, status.step is the 0-based index
    into the spec's steps) or how many rolling slots have started (``started 12/30``); ``-``
    otherwise."""
    st, spec = rel.status, rel.spec
    if spec.strategy == "canary" and spec.steps:
        return f"{min(st.step + 1, len(spec.steps))}/{len(spec.steps)}"
    if spec.strategy == "rolling" and st.slots:
        return f"started {st.step}/{st.slots}"
    return "-"


def row(rel: resources_pb2.Release) -> list[str]:
    st, spec = rel.status, rel.spec
    weighted = spec.strategy in ("blue-green", "canary")
    revisions = f"{spec.from_revision}->{spec.to_revision}" + (" (rollback)" if spec.is_rollback else "")
    return [
        rel.meta.name,
        spec.strategy or "-",
        phase_name(st.phase),
        revisions,
        f"{st.updated}/{st.total}",
        f"{st.weight}%" if weighted else "-",
        step_text(rel),
        age(rel.meta.created_at),
    ]


def steps_text(steps: list[resources_pb2.CanaryStep]) -> str:
    """The inverse of ``parse_steps`` (``10%,pause 30s,50%,pause,100%``)."""
    out: list[str] = []
    for i, s in enumerate(steps):
        out.append(f"{s.weight}%")
        if s.pause_ms:
            secs = s.pause_ms / 1000
            out.append(f"pause {secs:g}s" if s.pause_ms % 1000 == 0 else f"pause {s.pause_ms}ms")
        elif i < len(steps) - 1:
            out.append("pause")
    return ",".join(out)


def progress_line(rel: resources_pb2.Release) -> str:
    """One line of live progress: phase, slots started or step, weights, health, canary analysis."""
    st, spec = rel.status, rel.spec
    parts = [f"release {rel.meta.name} {spec.strategy or '-'}: {phase_name(st.phase)}"]
    step = step_text(rel)
    if step != "-":
        parts.append(step if step.startswith("started") else f"step {step}")
    parts.append(f"{st.updated}/{st.total} updated ready")
    if spec.strategy in ("blue-green", "canary"):
        parts.append(f"weight new {st.weight}% / old {100 - st.weight}%")
    if st.observed_requests:
        parts.append(f"5xx {st.observed_5xx_ratio:.2%} of {st.observed_requests} requests")
    if st.failures:
        parts.append(f"{st.failures} failed")
    line = ", ".join(parts)
    return f"{line} - {st.message}" if st.message else line


@contextmanager
def _progress_printer(err: bool) -> Iterator[Callable[[resources_pb2.Release], None]]:
    """A callback that shows each change: a live line on a terminal, else plain lines
    (a line is printed only when it differs from the previous one). ``err``: on stderr,
    so that ``-o json --wait`` keeps stdout parseable."""
    console = Console(file=sys.stderr if err else sys.stdout)
    if console.is_terminal:
        with Live(Text(""), console=console, auto_refresh=False, transient=False) as live:
            yield lambda rel: live.update(Text(progress_line(rel)), refresh=True)
        return
    last = [""]

    def plain(rel: resources_pb2.Release) -> None:
        line = progress_line(rel)
        if line != last[0]:
            last[0] = line
            typer.echo(line, err=err)

    yield plain


async def follow(
    cl: AsyncClient, cluster: str, application: str, *, name: str = "",
    timeout: float = DEFAULT_TIMEOUT, err: bool = False, until_awaiting_shift: bool = False,
) -> resources_pb2.Release:
    """Wait for a release (the latest when ``name`` is empty) with live progress (on stderr
    with ``err``); on failure print ``error: ...`` and exit 10, on timeout exit 9. For
    ``app update --wait`` and ``app rollback --wait`` as well, which pass
    ``until_awaiting_shift``: a blue-green release whose new side is up is done for them (it
    waits for the operator's shift; see ``awaiting_shift_note``)."""
    try:
        with _progress_printer(err) as show:
            rel = await cl.releases.wait(cluster, application, name, timeout=timeout or None, on_progress=show,
                                         until_awaiting_shift=until_awaiting_shift)
    except ReleaseFailed as exc:
        fail(f"release {exc.phase}: {exc.message}", EXIT_RELEASE_FAILED)
    except WaitTimeout as exc:
        fail(exc.message, EXIT_TIMEOUT)
    if awaits_operator(rel.status):
        typer.echo(awaiting_shift_note(application, rel), err=err)
    else:
        typer.echo(f"release {rel.meta.name} succeeded", err=err)
    return rel


def awaiting_shift_note(application: str, rel: resources_pb2.Release) -> str:
    """What a blue-green release that is up waits for, and the commands that move it on."""
    st = rel.status
    return (f"release {rel.meta.name} is up and awaits a shift: the new side is ready ({st.updated}/{st.total}), "
            f"weight new {st.weight}% / old {100 - st.weight}%; move traffic with "
            f"`ccs release shift {application} PERCENT`, then `ccs release confirm {application}` "
            f"(or `ccs release rollback {application}`)")


async def follow_revision(
    cl: AsyncClient, cluster: str, app: resources_pb2.Application,
    timeout: float = DEFAULT_TIMEOUT, err: bool = False,
) -> resources_pb2.Release | None:
    """``follow`` the release an update or rollback created (the one whose ``to_revision``
    is ``app.revision``) until it ends or, blue-green, is up and awaits a shift; None, with a
    note, when it created none (nothing changed)."""
    latest = await cl.releases.list(cluster, app.meta.name)
    mine = [r for r in latest if r.spec.to_revision == app.revision]
    if not mine:
        typer.echo(f"revision {app.revision} started no release: nothing to wait for", err=err)
        return None
    return await follow(cl, cluster, app.meta.name, name=mine[-1].meta.name, timeout=timeout, err=err,
                        until_awaiting_shift=True)


def steps_option(value: str | None) -> list[resources_pb2.CanaryStep] | None:
    """A typer callback for ``--steps``: a syntax error is a usage error (exit 2) naming
    the token."""
    if value is None:
        return None
    try:
        return parse_steps(value)
    except StepsError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--steps'") from None


def _show(rel: resources_pb2.Release, output: Output) -> None:
    emit(rel, output, HEADERS, row)


@app.command("ls")
def ls(
    ctx: typer.Context, application: AppArg, cluster: ClusterOpt = None,
    output: OutputOpt = TABLE, no_headers: NoHeadersOpt = False,
) -> None:
    """List the releases of an application, oldest first."""
    s = session(ctx)
    c = s.cluster(cluster)
    emit(s.run(lambda cl: cl.releases.list(c, application)), output, HEADERS, row, no_headers=no_headers)


@app.command("get")
def get(
    ctx: typer.Context,
    application: AppArg,
    name: Annotated[str, typer.Argument(help="Release name (r<N>); default: the latest.")] = "",
    cluster: ClusterOpt = None,
    output: OutputOpt = TABLE,
    no_headers: NoHeadersOpt = False,
) -> None:
    """Show a release: phase, progress, traffic, canary analysis, pending requests, history."""
    s = session(ctx)
    c = s.cluster(cluster)
    rel = s.run(lambda cl: cl.releases.get(c, application, name))
    if render(rel, output):
        return
    emit(rel, output, HEADERS, row, no_headers=no_headers)
    st, spec = rel.status, rel.spec
    details = [("services", ", ".join(spec.services) or "-"), ("message", st.message or "-")]
    if spec.strategy == "canary":
        details.append(("steps", steps_text(list(spec.steps)) or "-"))
        if spec.match_value:
            how = f"header {spec.match_header}" if spec.match_header else f"cookie {spec.match_cookie}"
            details.append(("match", f"{how}={spec.match_value} -> canary"))
        details.append(("analysis", f"5xx {st.observed_5xx_ratio:.2%} of {st.observed_requests} "
                        f"requests (max {spec.analysis.max_5xx_ratio:.2%})"))
    if st.requests:
        details.append(("pending", ", ".join(st.requests)))
    typer.echo()
    for key, value in details:
        typer.echo(f"{key + ':':<10}{value}")
    if st.history:
        typer.echo("history:")
        for line in st.history:
            typer.echo(f"  {line}")


@app.command("wait")
def wait_cmd(
    ctx: typer.Context,
    application: AppArg,
    name: Annotated[str, typer.Argument(help="Release name (r<N>, as a trigger answers it); default: the latest.")]
    = "",
    cluster: ClusterOpt = None,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
) -> None:
    """Wait until a release ends: exit 0 if it succeeded, 10 if it failed or was rolled back, 9 on timeout."""
    s = session(ctx)
    c = s.cluster(cluster)

    async def call(cl: AsyncClient) -> None:
        await follow(cl, c, application, name=name, timeout=timeout)

    s.run(call)


@app.command("shift")
def shift(
    ctx: typer.Context,
    application: AppArg,
    weight: Annotated[
        int, typer.Option("--weight", min=0, max=100, help="Percent of traffic to the new revision.")
    ],
    cluster: ClusterOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    output: OutputOpt = TABLE,
) -> None:
    """Blue-green and canary: send WEIGHT percent of traffic to the new revision."""
    s = session(ctx)
    c = s.cluster(cluster)

    async def call(cl: AsyncClient) -> None:
        rel = await cl.releases.shift(c, application, weight)
        _show(rel, output)
        if wait:
            await follow(cl, c, application, name=rel.meta.name, timeout=timeout,
                             err=not output.is_table)

    s.run(call)


def _verb(verb: str, help_text: str) -> None:
    """Register ``ccs release VERB`` (confirm, rollback, promote, abort): one request, then
    optionally follow the release."""

    def command(
        ctx: typer.Context,
        application: AppArg,
        cluster: ClusterOpt = None,
        wait: WaitOpt = False,
        timeout: TimeoutOpt = DEFAULT_TIMEOUT,
        output: OutputOpt = TABLE,
    ) -> None:
        s = session(ctx)
        c = s.cluster(cluster)

        async def call(cl: AsyncClient) -> None:
            rel = await getattr(cl.releases, verb)(c, application)
            _show(rel, output)
            if wait:
                await follow(cl, c, application, name=rel.meta.name, timeout=timeout,
                             err=not output.is_table)

        s.run(call)

    command.__doc__ = help_text
    app.command(verb)(command)


_verb("confirm", "Blue-green: all traffic to the new revision, then remove the old one.")
_verb("rollback", "Any strategy: all traffic back to the old revision, then remove the new one.")
_verb("promote", "Canary: go to the next step now (or finish); rolling: resume after a pause.")
_verb("abort", "Canary: stop and roll back.")
