"""The access policy (controlplane/access/policy.py), as pure tables: every RPC has a rule, the
scope rules narrow what they should, a role is one row. The same decisions against a real
server, for every RPC and role, are in tests/integration/test_access_matrix.py."""

from __future__ import annotations

import pytest

from ccs.v1 import api_pb2, triggers_pb2
from controlplane.access.policy import (
    APP,
    RELEASE,
    ROLES,
    RULES,
    Caller,
    allowed_calls,
    check_role,
    decide,
    rule_for,
    target,
)

SERVICES = {**api_pb2.DESCRIPTOR.services_by_name, **triggers_pb2.DESCRIPTOR.services_by_name}
USER_API = {f"{s.name}/{m.name}" for s in SERVICES.values() for m in s.methods}


def test_every_rpc_of_the_user_api_has_exactly_one_rule() -> None:
    assert USER_API - set(RULES) == set(), "RPCs without an access rule (refused for every role)"
    assert set(RULES) - USER_API == set(), "rules for RPCs that do not exist"


def test_every_rule_names_request_fields_that_exist() -> None:
    for name, rule in RULES.items():
        service, method = name.split("/")
        desc = SERVICES[service].methods_by_name[method].input_type
        for field in (*rule.path, rule.cluster, rule.app):
            assert not field or field in desc.fields_by_name, f"{name}: {field!r} is not a field of {desc.name}"


def test_an_rpc_without_a_rule_is_refused_even_for_admin() -> None:
    why = decide(Caller("root", "admin"), "/ccs.v1.ClusterService/Frobnicate", api_pb2.GetClusterRequest())
    assert why == "token 'root' (role admin): no access rule covers ClusterService/Frobnicate; refused"


DEPLOYER = Caller("ci", "deployer", ("prod",), ("shop",))
TRIGGER = Caller("ci", "trigger", ("prod",), ("shop",))


@pytest.mark.parametrize(
    ("caller", "method", "request_", "allowed"),
    [
        # the deployer: changes within its clusters and applications, reads within its clusters
        (DEPLOYER, "ApplicationService/UpdateApplication", api_pb2.UpdateApplicationRequest(cluster="prod", name="shop"), True),
        (DEPLOYER, "ApplicationService/UpdateApplication", api_pb2.UpdateApplicationRequest(cluster="prod", name="blog"), False),
        (DEPLOYER, "ApplicationService/UpdateApplication", api_pb2.UpdateApplicationRequest(cluster="dev", name="shop"), False),
        (DEPLOYER, "ApplicationService/GetApplication", api_pb2.GetApplicationRequest(cluster="prod", name="blog"), True),
        (DEPLOYER, "ApplicationService/GetApplication", api_pb2.GetApplicationRequest(cluster="dev", name="shop"), False),
        (DEPLOYER, "ApplicationService/DeleteApplication", api_pb2.DeleteApplicationRequest(cluster="prod", name="shop"), False),
        (DEPLOYER, "ServiceService/ScaleService", api_pb2.ScaleServiceRequest(cluster="prod", application="shop"), True),
        (DEPLOYER, "ContainerService/Logs", api_pb2.LogsRequest(cluster="prod", application="shop"), True),
        (DEPLOYER, "ContainerService/Logs", api_pb2.LogsRequest(cluster="prod", application="blog"), False),
        (DEPLOYER, "ClusterService/ListClusters", api_pb2.ListClustersRequest(), False),
        (DEPLOYER, "ClusterService/GetJoinToken", api_pb2.GetJoinTokenRequest(cluster="prod"), False),
        (DEPLOYER, "TokenService/ListTokens", api_pb2.ListTokensRequest(), False),
        # unscoped: everywhere its permissions reach
        (Caller("ci", "deployer"), "ApplicationService/CreateApplication", api_pb2.CreateApplicationRequest(cluster="x", name="y"), True),
        (Caller("ci", "deployer"), "ClusterService/ListClusters", api_pb2.ListClustersRequest(), True),
        # the viewer reads, nothing else, and no logs
        (Caller("v", "viewer"), "EventService/Watch", api_pb2.WatchRequest(cluster="prod"), True),
        (Caller("v", "viewer"), "ContainerService/Logs", api_pb2.LogsRequest(cluster="prod", application="shop"), False),
        (Caller("v", "viewer"), "ServiceService/ScaleService", api_pb2.ScaleServiceRequest(cluster="prod"), False),
        (Caller("v", "viewer", ("prod",)), "NodeService/ListNodes", api_pb2.ListNodesRequest(cluster="dev"), False),
        (Caller("v", "viewer"), "AuditService/ListAudit", api_pb2.ListAuditRequest(), False),
        # the trigger role: one application's triggers, nothing else
        (TRIGGER, "TriggerService/InvokeTrigger", triggers_pb2.InvokeTriggerRequest(cluster="prod", application="shop"), True),
        (TRIGGER, "TriggerService/InvokeTrigger", triggers_pb2.InvokeTriggerRequest(cluster="prod", application="blog"), False),
        (TRIGGER, "TriggerService/InvokeTrigger", triggers_pb2.InvokeTriggerRequest(cluster="dev", application="shop"), False),
        (TRIGGER, "TriggerService/RotateTrigger", triggers_pb2.RotateTriggerRequest(cluster="prod", application="shop"), False),
        (TRIGGER, "TriggerService/ListTriggers", triggers_pb2.ListTriggersRequest(cluster="prod", application="shop"), False),
        (TRIGGER, "ApplicationService/GetApplication", api_pb2.GetApplicationRequest(cluster="prod", name="shop"), False),
        (TRIGGER, "ServiceService/ScaleService", api_pb2.ScaleServiceRequest(cluster="prod", application="shop"), False),
        (DEPLOYER, "TriggerService/CreateTrigger", triggers_pb2.CreateTriggerRequest(cluster="prod", application="shop"), True),
        (DEPLOYER, "TriggerService/CreateTrigger", triggers_pb2.CreateTriggerRequest(cluster="prod", application="blog"), False),
        (Caller("v", "viewer"), "TriggerService/CreateTrigger", triggers_pb2.CreateTriggerRequest(cluster="prod"), False),
        # a registry password to push with: deployers in their clusters (any of its applications), not viewers
        (Caller("v", "viewer"), "RegistryService/GetPushCredential",
         api_pb2.GetPushCredentialRequest(cluster="prod", host="r.example"), False),
        (DEPLOYER, "RegistryService/GetPushCredential", api_pb2.GetPushCredentialRequest(cluster="prod", host="r"), True),
        (DEPLOYER, "RegistryService/GetPushCredential", api_pb2.GetPushCredentialRequest(cluster="dev", host="r"), False),
        (Caller("t", "trigger", ("prod",), ("shop",)), "RegistryService/GetPushCredential",
         api_pb2.GetPushCredentialRequest(cluster="prod", host="r"), False),
        # admin: everything; an unknown role: nothing
        (Caller("root", "admin"), "TokenService/CreateToken", api_pb2.CreateTokenRequest(), True),
        (Caller("x", "superuser"), "ClusterService/GetCluster", api_pb2.GetClusterRequest(name="prod"), False),
    ],
)
def test_decisions(caller: Caller, method: str, request_: object, allowed: bool) -> None:
    assert (decide(caller, f"/ccs.v1.{method}", request_) is None) == allowed


def test_refusals_say_what_is_missing() -> None:
    assert decide(DEPLOYER, "/ccs.v1.ApplicationService/UpdateApplication",
                  api_pb2.UpdateApplicationRequest(cluster="prod", name="blog")) == (
        "token 'ci' (role deployer) may update only application(s) shop; "
        "ApplicationService/UpdateApplication names application 'blog'")
    assert decide(DEPLOYER, "/ccs.v1.ClusterService/ListClusters", api_pb2.ListClustersRequest()) == (
        "token 'ci' (role deployer) is limited to cluster(s) prod; ClusterService/ListClusters reaches every cluster")
    assert decide(Caller("v", "viewer"), "/ccs.v1.ContainerService/Logs", api_pb2.LogsRequest()) == (
        "token 'v' (role viewer) may not call ContainerService/Logs: it needs the 'logs' permission, "
        "which the role does not have")


def test_a_role_is_one_row() -> None:
    """The trigger role the delivery-loop issue adds: release actions on its applications only."""
    roles = {**ROLES, "trigger": {RELEASE: APP}}
    trigger = Caller("hook", "trigger", (), ("shop",))
    promote = "/ccs.v1.ReleaseService/PromoteRelease"
    assert decide(trigger, promote, api_pb2.ReleaseActionRequest(cluster="prod", application="shop"), roles) is None
    assert decide(trigger, promote, api_pb2.ReleaseActionRequest(cluster="prod", application="blog"), roles)
    assert decide(trigger, "/ccs.v1.ApplicationService/GetApplication", api_pb2.GetApplicationRequest(), roles)


@pytest.mark.parametrize(
    ("role", "clusters", "apps", "problem"),
    [
        ("deployer", ["prod"], ["shop"], None),
        ("viewer", ["prod"], [], None),
        ("admin", [], [], None),
        ("admin", ["prod"], [], ("clusters", "role admin is not limited by cluster; leave the scope out")),
        ("viewer", [], ["shop"],
         ("applications", "role viewer is limited by cluster only (use --cluster), not by application")),
        ("root", [], [], ("role", "'root' is not a role; roles: admin, deployer, viewer, trigger")),
        ("", [], [], ("role", "'' is not a role; roles: admin, deployer, viewer, trigger")),
        ("trigger", ["prod"], ["shop"], None),
        ("trigger", [], ["shop"], ("clusters", "a trigger token names exactly one cluster and one application "
                                   "(--cluster, --app)")),
        ("trigger", ["prod"], ["shop", "blog"], ("applications", "a trigger token names exactly one cluster and "
                                                 "one application (--cluster, --app)")),
    ],
)
def test_a_scope_the_role_would_not_use_is_refused(
    role: str, clusters: list[str], apps: list[str], problem: tuple[str, str] | None
) -> None:
    assert check_role(role, clusters, apps) == problem


def test_audit_targets_name_the_object() -> None:
    rule = rule_for("/ccs.v1.ServiceService/ScaleService")
    assert rule is not None and rule.mutates
    assert target(rule, api_pb2.ScaleServiceRequest(cluster="prod", application="shop", name="web")) == (
        "service prod/shop/web")
    rule = rule_for("/ccs.v1.ClusterService/ListClusters")
    assert rule is not None and not rule.mutates
    assert target(rule, api_pb2.ListClustersRequest()) == "clusters"


def test_reads_are_not_audited_and_every_change_is() -> None:
    for name, rule in RULES.items():
        # a diff is an update's dry run: it changes nothing
        reads = name.split("/")[1].startswith(("Get", "List", "Watch", "Logs", "Diff", "WhoAmI"))
        # a join token admits nodes: reading it is audited (and it may rotate); a push credential
        # hands out a registry password: every call is audited
        audited_reads = ("ClusterService/GetJoinToken", "RegistryService/GetPushCredential")
        assert rule.mutates == (not reads or name in audited_reads), name


RELEASE_CALLS = {"ReleaseService/ShiftTraffic", "ReleaseService/ConfirmRelease", "ReleaseService/RollbackRelease",
                 "ReleaseService/PromoteRelease", "ReleaseService/AbortRelease"}


@pytest.mark.parametrize(
    ("caller", "cluster", "app", "has", "lacks"),
    [
        (Caller("root", "admin"), "", "", USER_API, set()),
        (Caller("v", "viewer", ("prod",)), "prod", "shop",
         {"ReleaseService/ListReleases", "ContainerService/ListContainers", "TokenService/WhoAmI"},
         RELEASE_CALLS | {"ApplicationService/CreateApplication", "ApplicationService/UpdateApplication"}),
        (Caller("v", "viewer", ("prod",)), "dev", "", {"TokenService/WhoAmI"}, {"ContainerService/ListContainers"}),
        (DEPLOYER, "prod", "shop", RELEASE_CALLS | {"ApplicationService/UpdateApplication"},
         {"ApplicationService/DeleteApplication", "TokenService/CreateToken"}),
        (DEPLOYER, "prod", "blog", {"ApplicationService/GetApplication"}, RELEASE_CALLS),
        # no application named: what it may do to at least one (its own)
        (DEPLOYER, "prod", "", RELEASE_CALLS | {"ApplicationService/CreateApplication"}, set()),
        (TRIGGER, "prod", "shop", {"TriggerService/InvokeTrigger", "TokenService/WhoAmI"},
         {"ApplicationService/GetApplication"}),
    ],
)
def test_allowed_calls_are_what_decide_admits(
    caller: Caller, cluster: str, app: str, has: set[str], lacks: set[str]
) -> None:
    allowed = allowed_calls(caller, cluster, app)
    assert allowed == sorted(allowed) and has <= set(allowed) and not lacks & set(allowed)
