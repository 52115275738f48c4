"""Compose template parser: a Compose file in, ccs ServiceSpecs (or every problem found) out.

Design choices:

- **ruamel.yaml + the official compose-spec.json (jsonschema)**, not PyYAML and not the
  ``compose-spec`` PyPI package. ruamel reads YAML 1.2 like Compose's Go parser (``no`` and ``on``
  stay strings), refuses duplicate keys, and gives line numbers for messages. Validating against
  the upstream schema, after interpolation as compose-go does, means ccs accepts exactly the
  Compose language and stays current by replacing one vendored file. ``compose-spec`` 0.2.1 is a
  Rust extension (binary wheels) that validates and round-trips but does no interpolation and
  reports plain ValueErrors without field paths, so we would still need most of this package.
- **Pure**: strings in, messages out; no I/O, and the only clock read is the parsing thread's
  CPU time for the budget (below). The client (``ccs.template.load_bundle``, for the CLI and the
  SDK) reads ``.env`` and every env_file the template names and sends them as ``files``;
  variables come from deploy-time ``env`` then ``.env`` and never from ``os.environ``, so a
  parse gives the same result on every API server.
- **Every error at once**: stages report into one Diagnostics and the caller gets a
  TemplateError listing each field path and what is wrong, with the YAML line when known.
- **No silent loss**: ``support.RULES`` decides, per Compose key, supported / ignored with a
  warning / refused, and is also the README table; unknown keys are refused.
- **Privileged keys** (``privileged``, ``cap_add`` beyond the defaults, ``devices``, host
  ``network_mode``/``pid``, widening ``security_opt``, negative ``oom_score_adj``) are converted
  and listed in ``ParsedTemplate.privileged``; the API refuses them unless the cluster's policy
  allows them (``security.py``). **Profiles** choose the services deployed (``profiles.py``).
- **Claims**: settings that can come from several places (``deploy.replicas``, ``scale``,
  ``aliyun.scale``; ``x-ccs`` vs aliyun labels; ``mem_limit`` vs ``deploy.resources``) must
  agree; a disagreement names both.
- **Bounded cost**: a template is hostile input; ``limits`` bounds nesting depth, the nodes
  aliases may copy, and the CPU time of one parse, which another thread can also cancel.
- **Service names** must be DNS labels (``[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?``), stricter than
  Compose's ``[a-zA-Z0-9._-]+``, because they become DNS names and resource names in ccs.
"""

from controlplane.compose.errors import FieldError, TemplateError
from controlplane.compose.limits import (
    DEFAULT_PARSE_CPU_SECONDS,
    MAX_ALIAS_NODES,
    MAX_DEPTH,
    ParseBudget,
    ParseCancelled,
)
from controlplane.compose.support import RULES, Action, support_table_markdown
from controlplane.compose.template import (
    MAX_TEMPLATE_BYTES,
    ParsedTemplate,
    check_template_size,
    parse_template,
)

__all__ = [
    "DEFAULT_PARSE_CPU_SECONDS",
    "MAX_ALIAS_NODES",
    "MAX_DEPTH",
    "MAX_TEMPLATE_BYTES",
    "RULES",
    "Action",
    "FieldError",
    "ParseBudget",
    "ParseCancelled",
    "ParsedTemplate",
    "TemplateError",
    "check_template_size",
    "parse_template",
    "support_table_markdown",
]
