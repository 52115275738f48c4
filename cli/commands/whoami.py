"""``ccs whoami``: the token this client uses (name, id, role, scope, expiry; never its secret)
and the calls the server's access policy admits from it on a cluster and application
(``TokenService/WhoAmI``).

Why a command of its own: a deployer scoped to one application, or a CI token, finds out what
it may do before a call is refused (exit 6), and an operator checks which context's token is
in use. The list is what the policy admits *there*, not a grant: each real call is still
decided by the policy. The cluster is ``-c``, else ``CCS_CLUSTER``, else the context's, else
none (then the list holds the calls that name no cluster and the cluster-wide reach of the
others, as the API says).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from ccs.v1 import api_pb2
from cli.commands.token import scope, state
from cli.output import TABLE, Format, OutputOpt, dump, jsonpath_lines, to_data
from cli.session import ClusterOpt, session


def whoami_command(
    ctx: typer.Context,
    cluster: ClusterOpt = None,
    application: Annotated[str, typer.Option(
        "-a", "--app", help="Also ask about this application of the cluster (needs a cluster).")] = "",
    output: OutputOpt = TABLE,
) -> None:
    """Show this client's token (name, role, scope; never the secret) and the calls it may make
    on the cluster (and -a application)."""
    s = session(ctx)
    where = s.cluster_or_none(cluster)
    if application and not where:
        raise typer.BadParameter("needs a cluster: -c, CCS_CLUSTER or the context's", param_hint="'-a' / '--app'")
    me: api_pb2.WhoAmIResponse = s.run(lambda cl: cl.tokens.whoami(where, application))
    data: dict[str, Any] = {"token": to_data(me.token), "cluster": where, "application": application,
                            "allowed": list(me.allowed)}
    if output.is_data:
        typer.echo(dump(data, output))
        return
    if output.format is Format.name:
        typer.echo(f"token/{me.token.meta.name}")
        return
    if output.format is Format.jsonpath:
        for line in jsonpath_lines(data, output):
            typer.echo(line)
        return
    t = me.token
    expires = (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t.expires_at.seconds))
               if t.expires_at.seconds else "never")
    typer.echo(f"name:     {t.meta.name}")
    typer.echo(f"id:       {t.meta.id or '-'}")
    typer.echo(f"role:     {t.role}")
    typer.echo(f"scope:    {scope(t)}")
    typer.echo(f"state:    {state(t)} (expires {expires})")
    target = (f"cluster {where}" if where else "no cluster") + (f", application {application}" if application
                                                               else "")
    typer.echo(f"allowed on {target}: {len(me.allowed)} calls")
    for call in me.allowed:
        typer.echo(f"  {call}")
