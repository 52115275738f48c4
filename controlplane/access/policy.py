"""Who may call what: the permission each RPC needs, and the permissions of each role.

Two tables, in the shape of Kubernetes RBAC (verbs on resources, bound with a scope) and Nomad
ACL policies (named capabilities per namespace), kept small:

- ``RULES``: RPC -> the one permission it needs, the request fields that name the cluster and
  the application it acts on (for the scope check), the object path (for the audit record),
  and whether it changes state (audited).
- ``ROLES``: role -> {permission: scope level}. A level says how the token's scope
  (``--cluster``, ``--app``) limits that permission: ``GLOBAL`` not at all, ``CLUSTER`` to the
  token's clusters, ``APP`` to its clusters and its applications.

Adding a role is one row of ``ROLES`` (e.g. ``"trigger": {RELEASE: APP}``); a new RPC is one
row of ``RULES``, and an RPC without a row is refused for every role (fail closed;
``tests/unit/test_access_policy.py`` checks every RPC of ``ccs.v1`` has one).

Pure: no clock, no I/O; the gate (``controlplane.access.gate``) feeds it the request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

# ---------------------------------------------------------------- permissions

READ = "read"            # get, list and watch clusters, nodes, applications, services, ...
LOGS = "logs"            # container logs (they may hold what a reader should not see)
EXEC = "exec"            # run a command inside a running container (`ccs exec`)
DEPLOY = "deploy"        # create an application
UPDATE = "update"        # a new template, parameters or version
RELEASE = "release"      # drive releases (shift, confirm, promote, abort, roll back)
SCALE = "scale"          # replicas of a service; stop and start an application
DELETE = "delete"        # remove an application
CLUSTERS = "clusters"    # create, change, remove clusters; their join tokens
NODES = "nodes"          # drain, pause, label, remove nodes
TOKENS = "tokens"        # create, list, revoke API tokens
AUDIT = "audit"          # read the audit log
SECRETS = "secrets"      # create, update, remove secrets, configs and registry logins (never read a value)
KEYS = "keys"            # rotate the secrets data key (re-encrypts every cluster's secrets)
TRIGGERS = "triggers"    # create, rotate, remove an application's deploy triggers (and see their secrets once)
INVOKE = "invoke"        # fire an application's triggers (InvokeTrigger)
PUSH = "push"            # get a registry login's password to push with it (GetPushCredential; audited)
#: Not a permission of any role: a call every authenticated token may make (WhoAmI: what the
#: token itself is and may do; a client needs it to offer only what the token may use).
ANY_TOKEN = "any token"

PERMISSIONS = (READ, LOGS, EXEC, DEPLOY, UPDATE, RELEASE, SCALE, DELETE, CLUSTERS, NODES, TOKENS, AUDIT, SECRETS, KEYS,
               TRIGGERS, INVOKE, PUSH)


class Scope(Enum):
    """How far a token's ``--cluster``/``--app`` limit a permission of its role."""

    GLOBAL = "global"    # not at all (the role is not scoped)
    CLUSTER = "cluster"  # the call's cluster must be one of the token's clusters (if it names any)
    APP = "app"          # ... and its application one of the token's applications (if it names any)


GLOBAL, CLUSTER, APP = Scope.GLOBAL, Scope.CLUSTER, Scope.APP

# ---------------------------------------------------------------- roles: one row each

ROLES: Mapping[str, Mapping[str, Scope]] = {
    "admin": dict.fromkeys(PERMISSIONS, GLOBAL),
    # Reads reach the whole of its clusters: a deploy's --wait watches the cluster and lists its nodes.
    # Shared secrets belong to a cluster, so a deployer's reach is its clusters; an application's
    # own names also need UPDATE on that application (checked by controlplane.api.secret_owners).
    "deployer": {READ: CLUSTER, DEPLOY: APP, UPDATE: APP, RELEASE: APP, SCALE: APP, LOGS: APP, EXEC: APP,
                 SECRETS: CLUSTER, TRIGGERS: APP, INVOKE: APP, PUSH: CLUSTER},
    "viewer": {READ: CLUSTER},
    # A CI job's token: fire one application's triggers, nothing else (check_role wants exactly
    # one cluster and one application for it).
    "trigger": {INVOKE: APP},
}
#: Roles whose token must name exactly one cluster and one application.
ONE_APPLICATION = ("trigger",)

# ---------------------------------------------------------------- RPCs: one row each


@dataclass(frozen=True)
class Rule:
    permission: str
    # What the call acts on, for the audit record: a kind and the request fields naming it.
    kind: str
    path: tuple[str, ...] = ()
    # The request fields naming the cluster and the application (scope); "" when it names none.
    cluster: str = "cluster"
    app: str = ""
    mutates: bool = False
    # A bidirectional stream whose first request names what it acts on (ContainerService/Exec).
    first_request: bool = False


def _app(permission: str, *, mutates: bool = False) -> Rule:
    """An ApplicationService call: the application is the request's ``name``."""
    return Rule(permission, "application", ("cluster", "name"), app="name", mutates=mutates)


def _release(permission: str, *, mutates: bool = True) -> Rule:
    return Rule(permission, "release", ("cluster", "application"), app="application", mutates=mutates)


def _trigger(permission: str) -> Rule:
    return Rule(permission, "trigger", ("cluster", "application", "name"), app="application", mutates=True)


RULES: Mapping[str, Rule] = {
    "ClusterService/CreateCluster": Rule(CLUSTERS, "cluster", ("name",), cluster="name", mutates=True),
    "ClusterService/GetCluster": Rule(READ, "cluster", ("name",), cluster="name"),
    "ClusterService/ListClusters": Rule(READ, "clusters", cluster=""),
    "ClusterService/DeleteCluster": Rule(CLUSTERS, "cluster", ("name",), cluster="name", mutates=True),
    "ClusterService/UpdateCluster": Rule(CLUSTERS, "cluster", ("name",), cluster="name", mutates=True),
    # A join token admits nodes: reading it is audited like a change (and it may rotate).
    "ClusterService/GetServerInfo": Rule(READ, "server", cluster=""),
    "ClusterService/GetJoinToken": Rule(CLUSTERS, "join token", ("cluster",), mutates=True),
    "NodeService/GetNode": Rule(READ, "node", ("cluster", "name")),
    "NodeService/ListNodes": Rule(READ, "nodes", ("cluster",)),
    "NodeService/UpdateNode": Rule(NODES, "node", ("cluster", "name"), mutates=True),
    "NodeService/DeleteNode": Rule(NODES, "node", ("cluster", "name"), mutates=True),
    "NodeService/RevokeNode": Rule(NODES, "node", ("cluster", "name"), mutates=True),
    "NodeService/PruneNode": Rule(NODES, "node", ("cluster", "name"), mutates=True),
    "ApplicationService/CreateApplication": _app(DEPLOY, mutates=True),
    "ApplicationService/GetApplication": _app(READ),
    "ApplicationService/ListApplications": Rule(READ, "applications", ("cluster",)),
    "ApplicationService/UpdateApplication": _app(UPDATE, mutates=True),
    "ApplicationService/DeleteApplication": _app(DELETE, mutates=True),
    "ApplicationService/StartApplication": _app(SCALE, mutates=True),
    "ApplicationService/StopApplication": _app(SCALE, mutates=True),
    "ApplicationService/RollbackApplication": _app(RELEASE, mutates=True),
    "ApplicationService/ListRevisions": _app(READ),
    # A diff is an update's dry run (it reads the application's own secret values to check them).
    "ApplicationService/DiffApplication": _app(UPDATE),
    "ServiceService/GetService": Rule(READ, "service", ("cluster", "application", "name"), app="application"),
    "ServiceService/ListServices": Rule(READ, "services", ("cluster", "application"), app="application"),
    "ServiceService/ScaleService": Rule(SCALE, "service", ("cluster", "application", "name"), app="application",
                                        mutates=True),
    "ContainerService/GetContainer": Rule(READ, "container", ("cluster", "application", "service", "name"),
                                          app="application"),
    "ContainerService/ListContainers": Rule(READ, "containers", ("cluster", "application", "service"),
                                            app="application"),
    "ContainerService/Logs": Rule(LOGS, "logs", ("cluster", "application", "service", "container"),
                                  app="application"),
    # A bidirectional stream: the gate checks and audits its first request (the container and
    # the command; never the input or output), before the exec starts and when it ends.
    "ContainerService/Exec": Rule(EXEC, "container", ("cluster", "application", "service", "container"),
                                  app="application", mutates=True, first_request=True),
    "EventService/ListEvents": Rule(READ, "events", ("cluster",)),
    "EventService/Watch": Rule(READ, "watch", ("cluster",)),
    "ReleaseService/ListReleases": _release(READ, mutates=False),
    "ReleaseService/GetRelease": _release(READ, mutates=False),
    "ReleaseService/ShiftTraffic": _release(RELEASE),
    "ReleaseService/ConfirmRelease": _release(RELEASE),
    "ReleaseService/RollbackRelease": _release(RELEASE),
    "ReleaseService/PromoteRelease": _release(RELEASE),
    "ReleaseService/AbortRelease": _release(RELEASE),
    "RouteService/ListRoutes": Rule(READ, "routes", ("cluster",)),
    # Cluster networks are the cluster's, shared between applications: made and removed like
    # the cluster's own settings; joining one is part of a template (DEPLOY/UPDATE).
    "NetworkService/CreateNetwork": Rule(CLUSTERS, "network", ("cluster", "name"), mutates=True),
    "NetworkService/GetNetwork": Rule(READ, "network", ("cluster", "name")),
    "NetworkService/ListNetworks": Rule(READ, "networks", ("cluster",)),
    "NetworkService/DeleteNetwork": Rule(CLUSTERS, "network", ("cluster", "name"), mutates=True),
    "TokenService/CreateToken": Rule(TOKENS, "token", ("name",), cluster="", mutates=True),
    "TokenService/ListTokens": Rule(TOKENS, "tokens", cluster=""),
    "TokenService/RevokeToken": Rule(TOKENS, "token", ("name",), cluster="", mutates=True),
    # Secrets and configs: the value never appears in a request's audit record (only the path).
    "SecretService/CreateSecret": Rule(SECRETS, "secret", ("cluster", "name"), mutates=True),
    "SecretService/UpdateSecret": Rule(SECRETS, "secret", ("cluster", "name"), mutates=True),
    "SecretService/GetSecret": Rule(READ, "secret", ("cluster", "name")),
    "SecretService/ListSecrets": Rule(READ, "secrets", ("cluster",)),
    "SecretService/DeleteSecret": Rule(SECRETS, "secret", ("cluster", "name"), mutates=True),
    "SecretService/RotateSecretsKey": Rule(KEYS, "secrets key", cluster="", mutates=True),
    "ConfigService/CreateConfig": Rule(SECRETS, "config", ("cluster", "name"), mutates=True),
    "ConfigService/UpdateConfig": Rule(SECRETS, "config", ("cluster", "name"), mutates=True),
    "ConfigService/GetConfig": Rule(READ, "config", ("cluster", "name")),
    "ConfigService/ListConfigs": Rule(READ, "configs", ("cluster",)),
    "ConfigService/DeleteConfig": Rule(SECRETS, "config", ("cluster", "name"), mutates=True),
    "TriggerService/CreateTrigger": _trigger(TRIGGERS),
    "TriggerService/ListTriggers": Rule(READ, "triggers", ("cluster", "application"), app="application"),
    "TriggerService/DeleteTrigger": _trigger(TRIGGERS),
    "TriggerService/RotateTrigger": _trigger(TRIGGERS),
    "TriggerService/InvokeTrigger": _trigger(INVOKE),
    # Registry logins: set and removed like secrets, listed like them (never the password).
    "RegistryService/LoginRegistry": Rule(SECRETS, "registry login", ("cluster", "host"), mutates=True),
    "RegistryService/ListRegistryLogins": Rule(READ, "registry logins", ("cluster",)),
    "RegistryService/DeleteRegistryLogin": Rule(SECRETS, "registry login", ("cluster", "host"), mutates=True),
    # Hands out a password: audited like a change (who, which host; the answer is never recorded).
    "RegistryService/GetPushCredential": Rule(PUSH, "registry login", ("cluster", "host"), mutates=True),
    "TokenService/WhoAmI": Rule(ANY_TOKEN, "token", cluster=""),
    "AuditService/ListAudit": Rule(AUDIT, "audit", cluster=""),
    "AuditService/WatchAudit": Rule(AUDIT, "audit", cluster=""),
}

PACKAGE_PREFIX = "/ccs.v1."


def short_method(method: str) -> str:
    """``/ccs.v1.ClusterService/GetCluster`` -> ``ClusterService/GetCluster``."""
    return method.removeprefix(PACKAGE_PREFIX)


def rule_for(method: str) -> Rule | None:
    return RULES.get(short_method(method))


# ---------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Caller:
    """What the policy needs to know of an authenticated token."""

    name: str
    role: str
    clusters: tuple[str, ...] = ()
    applications: tuple[str, ...] = ()


def _field(request: object, name: str) -> str:
    value = getattr(request, name, "") if name else ""
    return value if isinstance(value, str) else ""


def target(rule: Rule, request: object) -> str:
    """The object a call acts on, for its audit record: ``application prod/shop``."""
    path = "/".join(v for v in (_field(request, f) for f in rule.path) if v)
    return f"{rule.kind} {path}".strip()


def decide(
    caller: Caller, method: str, request: object, roles: Mapping[str, Mapping[str, Scope]] = ROLES
) -> str | None:
    """None when ``caller`` may make this call; otherwise why not (the PERMISSION_DENIED message)."""
    rule = rule_for(method)
    who = f"token {caller.name!r} (role {caller.role})"
    if rule is None:
        return f"{who}: no access rule covers {short_method(method)}; refused"
    if rule.permission == ANY_TOKEN:
        return None
    grants = roles.get(caller.role, {})
    level = grants.get(rule.permission)
    if level is None:
        return (f"{who} may not call {short_method(method)}: it needs the {rule.permission!r} permission, "
                f"which the role does not have")
    if level is GLOBAL:
        return None
    cluster = _field(request, rule.cluster)
    if caller.clusters and cluster not in caller.clusters:
        where = f"cluster {cluster!r}" if cluster else "every cluster"
        return (f"{who} is limited to cluster(s) {', '.join(caller.clusters)}; "
                f"{short_method(method)} reaches {where}")
    if level is APP and caller.applications:
        app = _field(request, rule.app)
        if app not in caller.applications:
            where = f"application {app!r}" if app else "no single application"
            return (f"{who} may {rule.permission} only application(s) {', '.join(caller.applications)}; "
                    f"{short_method(method)} names {where}")
    return None


class _Names:
    """A stand-in request: only the fields a rule reads for its scope check."""

    def __init__(self, fields: Mapping[str, str]) -> None:
        self.__dict__.update(fields)


def allowed_calls(caller: Caller, cluster: str, application: str,
                  roles: Mapping[str, Mapping[str, Scope]] = ROLES) -> list[str]:
    """The RPCs (``Service/Method``) :func:`decide` admits from ``caller`` on ``cluster`` and
    ``application``; with ``application`` empty, on at least one application (any, or one of the
    token's own). WhoAmI answers with this, so a client (the web console) offers exactly what
    the policy would admit and keeps no copy of these tables."""
    apps = [application] if application else list(caller.applications) or [""]
    out = []
    for name, rule in sorted(RULES.items()):
        for app in apps:
            fields = {f: v for f, v in ((rule.cluster, cluster), (rule.app, app)) if f}
            if decide(caller, PACKAGE_PREFIX + name, _Names(fields), roles) is None:
                out.append(name)
                break
    return out


def check_role(role: str, clusters: Sequence[str], applications: Sequence[str]) -> tuple[str, str] | None:
    """None if a token of ``role`` with this scope makes sense; else (field, why).

    A scope the role would not use is refused rather than ignored: ``--app`` on a viewer
    (reads are per cluster) or any scope on an admin.
    """
    if role not in ROLES:
        return "role", f"{role!r} is not a role; roles: {', '.join(ROLES)}"
    if role in ONE_APPLICATION and (len(clusters) != 1 or len(applications) != 1):
        field = "clusters" if len(clusters) != 1 else "applications"
        return field, f"a {role} token names exactly one cluster and one application (--cluster, --app)"
    levels = set(ROLES[role].values())
    if clusters and not levels & {CLUSTER, APP}:
        return "clusters", f"role {role} is not limited by cluster; leave the scope out"
    if applications and APP not in levels:
        scoped = "by cluster only (use --cluster)" if CLUSTER in levels else "by nothing"
        return "applications", f"role {role} is limited {scoped}, not by application"
    return None
