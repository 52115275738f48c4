"""``ccs``: the command-line client of the ccs control plane.

Design choices:

- A thin shell over the SDK's ``AsyncClient``: every command is "parse flags, make one or a few
  SDK calls, render". Each command runs one coroutine with ``asyncio.run`` through
  ``cli.session.Session.run``, which is also the one place SDK errors become exit codes.
- typer (click) for parsing, help and shell completion (``--install-completion``); rich
  tables only on a terminal, plain aligned text otherwise, so pipes and scripts get stable
  output. ``-o json|yaml`` is the protobuf JSON mapping with proto field names.
- Connection settings: ``--server``/``--token`` (or ``CCS_SERVER``/``CCS_TOKEN``) override the
  context selected by ``--context`` (``CCS_CONTEXT``) from ``--config`` (``CCS_CONFIG``,
  default ``~/.config/ccs/config.yaml``). ``-c/--cluster`` falls back to ``CCS_CLUSTER`` and
  then to the context's ``cluster`` field.

Exit codes (an error prints exactly one line, ``error: <message>``, on stderr):

====  =====================================================================
code  meaning
====  =====================================================================
0     success
1     any other error (configuration, I/O, server INTERNAL, ...)
2     usage error (bad flag or argument; reported by click)
3     not found
4     invalid argument (including an invalid template; the message names the field)
5     conflict: already exists, stale resource_version (ABORTED), failed precondition
6     unauthenticated (no, unknown, expired or revoked token) or permission denied (role, scope,
      or the cluster's policy on privileged Compose keys)
7     server unavailable (unreachable)
8     ``--wait``: the deploy failed (image not found, crash loop, no node fits)
9     ``--wait``: timed out before every service was ready (or the release ended)
10    ``--wait``: the release was rolled back, failed or superseded (reason printed)
11    a stored record does not decode (DATA_LOSS; the message names every key)
12    ``ccs app diff``: the update would change something (0: it would change nothing)
13    ``--build``: the local engine refused a build or a push (the message names the service)
14    rate limited (a trigger's calls a second): retry later; the message says when
130   interrupted (Ctrl-C)
====  =====================================================================
"""
