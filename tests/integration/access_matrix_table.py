"""The access matrix's table (see test_access_matrix.py): every RPC of the user API, the outcome
each kind of caller must get, the calls that change state, and the request each is called with.
Written out by hand, not read from the policy table, so a policy change shows up as a failure."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from google.protobuf.message import Message

from ccs.v1 import api_pb2, triggers_pb2
from tests.integration.grpc_helpers import TEMPLATE

A, B, X, Y = "clus-a", "clus-b", "app-x", "app-y"

# ---------------------------------------------------------------- the matrix (written by hand)

ok, no, un = "ok", "no", "un"
CALLERS = ("admin", "deployer", "deployer@A/Y", "deployer@B", "viewer", "none", "revoked", "expired", "trigger",
           "trigger@A/Y")

MATRIX: dict[str, tuple[str, ...]] = {
    #                                           admin dep dep@A/Y dep@B viewer none revoked expired trig trig@A/Y
    "ClusterService/CreateCluster":             (ok, no, no, no, no, un, un, un, no, no),
    "ClusterService/GetCluster":                (ok, ok, ok, no, ok, un, un, un, no, no),
    "ClusterService/ListClusters":              (ok, no, no, no, ok, un, un, un, no, no),
    "ClusterService/DeleteCluster":             (ok, no, no, no, no, un, un, un, no, no),
    "ClusterService/UpdateCluster":             (ok, no, no, no, no, un, un, un, no, no),
    "ClusterService/GetJoinToken":              (ok, no, no, no, no, un, un, un, no, no),
    "ClusterService/GetServerInfo":             (ok, no, no, no, ok, un, un, un, no, no),
    "NodeService/GetNode":                      (ok, ok, ok, no, ok, un, un, un, no, no),
    "NodeService/ListNodes":                    (ok, ok, ok, no, ok, un, un, un, no, no),
    "NodeService/UpdateNode":                   (ok, no, no, no, no, un, un, un, no, no),
    "NodeService/DeleteNode":                   (ok, no, no, no, no, un, un, un, no, no),
    "NodeService/RevokeNode":                   (ok, no, no, no, no, un, un, un, no, no),
    "NodeService/PruneNode":                    (ok, no, no, no, no, un, un, un, no, no),
    "ApplicationService/CreateApplication":     (ok, ok, no, no, no, un, un, un, no, no),
    "ApplicationService/GetApplication":        (ok, ok, ok, no, ok, un, un, un, no, no),
    "ApplicationService/ListApplications":      (ok, ok, ok, no, ok, un, un, un, no, no),
    "ApplicationService/UpdateApplication":     (ok, ok, no, no, no, un, un, un, no, no),
    "ApplicationService/DeleteApplication":     (ok, no, no, no, no, un, un, un, no, no),
    "ApplicationService/StartApplication":      (ok, ok, no, no, no, un, un, un, no, no),
    "ApplicationService/StopApplication":       (ok, ok, no, no, no, un, un, un, no, no),
    "ApplicationService/RollbackApplication":   (ok, ok, no, no, no, un, un, un, no, no),
    "ApplicationService/ListRevisions":         (ok, ok, ok, no, ok, un, un, un, no, no),
    "ApplicationService/DiffApplication":       (ok, ok, no, no, no, un, un, un, no, no),
    "ServiceService/GetService":                (ok, ok, ok, no, ok, un, un, un, no, no),
    "ServiceService/ListServices":              (ok, ok, ok, no, ok, un, un, un, no, no),
    "ServiceService/ScaleService":              (ok, ok, no, no, no, un, un, un, no, no),
    "ContainerService/GetContainer":            (ok, ok, ok, no, ok, un, un, un, no, no),
    "ContainerService/ListContainers":          (ok, ok, ok, no, ok, un, un, un, no, no),
    "ContainerService/Logs":                    (ok, ok, no, no, no, un, un, un, no, no),
    "ContainerService/Exec":                    (ok, ok, no, no, no, un, un, un, no, no),
    "EventService/ListEvents":                  (ok, ok, ok, no, ok, un, un, un, no, no),
    "EventService/Watch":                       (ok, ok, ok, no, ok, un, un, un, no, no),
    "ReleaseService/ListReleases":              (ok, ok, ok, no, ok, un, un, un, no, no),
    "ReleaseService/GetRelease":                (ok, ok, ok, no, ok, un, un, un, no, no),
    "ReleaseService/ShiftTraffic":              (ok, ok, no, no, no, un, un, un, no, no),
    "ReleaseService/ConfirmRelease":            (ok, ok, no, no, no, un, un, un, no, no),
    "ReleaseService/RollbackRelease":           (ok, ok, no, no, no, un, un, un, no, no),
    "ReleaseService/PromoteRelease":            (ok, ok, no, no, no, un, un, un, no, no),
    "ReleaseService/AbortRelease":              (ok, ok, no, no, no, un, un, un, no, no),
    "RouteService/ListRoutes":                  (ok, ok, ok, no, ok, un, un, un, no, no),
    "NetworkService/CreateNetwork":             (ok, no, no, no, no, un, un, un, no, no),
    "NetworkService/GetNetwork":                (ok, ok, ok, no, ok, un, un, un, no, no),
    "NetworkService/ListNetworks":              (ok, ok, ok, no, ok, un, un, un, no, no),
    "NetworkService/DeleteNetwork":             (ok, no, no, no, no, un, un, un, no, no),
    "TokenService/CreateToken":                 (ok, no, no, no, no, un, un, un, no, no),
    "TokenService/ListTokens":                  (ok, no, no, no, no, un, un, un, no, no),
    "TokenService/RevokeToken":                 (ok, no, no, no, no, un, un, un, no, no),
    "TokenService/WhoAmI":                      (ok, ok, ok, ok, ok, un, un, un, ok, ok),
    "AuditService/ListAudit":                   (ok, no, no, no, no, un, un, un, no, no),
    "AuditService/WatchAudit":                  (ok, no, no, no, no, un, un, un, no, no),
    # Secrets and configs named here are the application's own ({app}_{key}): changing one needs
    # the update permission on that application, so deployer@A/Y (scoped to X) is refused. Shared
    # names reach a deployer's whole cluster (test_an_app_scoped_deployer_and_shared_or_owned_names).
    "SecretService/CreateSecret":               (ok, ok, no, no, no, un, un, un, no, no),
    "SecretService/UpdateSecret":               (ok, ok, no, no, no, un, un, un, no, no),
    "SecretService/GetSecret":                  (ok, ok, ok, no, ok, un, un, un, no, no),
    "SecretService/ListSecrets":                (ok, ok, ok, no, ok, un, un, un, no, no),
    "SecretService/DeleteSecret":               (ok, ok, no, no, no, un, un, un, no, no),
    # A registry login is the cluster's, like a shared secret: a deployer's `secrets` reach is its
    # clusters, whichever of their applications it is scoped to.
    "RegistryService/LoginRegistry":            (ok, ok, ok, no, no, un, un, un, no, no),
    "RegistryService/ListRegistryLogins":       (ok, ok, ok, no, ok, un, un, un, no, no),
    "RegistryService/DeleteRegistryLogin":      (ok, ok, ok, no, no, un, un, un, no, no),
    # The password to push with (--build --push-to): the deployer's reach is its clusters, as for
    # the login itself; never a viewer or a trigger token.
    "RegistryService/GetPushCredential":        (ok, ok, ok, no, no, un, un, un, no, no),
    "SecretService/RotateSecretsKey":           (ok, no, no, no, no, un, un, un, no, no),
    "ConfigService/CreateConfig":               (ok, ok, no, no, no, un, un, un, no, no),
    "ConfigService/UpdateConfig":               (ok, ok, no, no, no, un, un, un, no, no),
    "ConfigService/GetConfig":                  (ok, ok, ok, no, ok, un, un, un, no, no),
    "ConfigService/ListConfigs":                (ok, ok, ok, no, ok, un, un, un, no, no),
    "ConfigService/DeleteConfig":               (ok, ok, no, no, no, un, un, un, no, no),
    # Triggers: made, rotated and removed with the deployer's reach; fired by a trigger token for
    # its one application (and by whoever may manage it), nothing else by it.
    "TriggerService/CreateTrigger":             (ok, ok, no, no, no, un, un, un, no, no),
    "TriggerService/ListTriggers":              (ok, ok, ok, no, ok, un, un, un, no, no),
    "TriggerService/DeleteTrigger":             (ok, ok, no, no, no, un, un, un, no, no),
    "TriggerService/RotateTrigger":             (ok, ok, no, no, no, un, un, un, no, no),
    "TriggerService/InvokeTrigger":             (ok, ok, no, no, no, un, un, un, ok, no),
}

# Calls that change state (audited; a refused one must leave etcd as it was, but for its record).
MUTATIONS = {
    "ClusterService/CreateCluster", "ClusterService/DeleteCluster", "ClusterService/UpdateCluster",
    "ClusterService/GetJoinToken", "NodeService/UpdateNode", "NodeService/DeleteNode",
    "NodeService/RevokeNode", "NodeService/PruneNode",
    "RegistryService/LoginRegistry", "RegistryService/DeleteRegistryLogin",
    "RegistryService/GetPushCredential",  # changes nothing, but hands out a password: audited
    "ApplicationService/CreateApplication", "ApplicationService/UpdateApplication",
    "ApplicationService/DeleteApplication", "ApplicationService/StartApplication",
    "ApplicationService/StopApplication", "ApplicationService/RollbackApplication",
    "ServiceService/ScaleService", "ReleaseService/ShiftTraffic", "ReleaseService/ConfirmRelease",
    "ReleaseService/RollbackRelease", "ReleaseService/PromoteRelease", "ReleaseService/AbortRelease",
    "TokenService/CreateToken", "TokenService/RevokeToken",
    "NetworkService/CreateNetwork", "NetworkService/DeleteNetwork",
    "SecretService/CreateSecret", "SecretService/UpdateSecret", "SecretService/DeleteSecret",
    "SecretService/RotateSecretsKey", "ConfigService/CreateConfig", "ConfigService/UpdateConfig",
    "ConfigService/DeleteConfig",
    "TriggerService/CreateTrigger", "TriggerService/DeleteTrigger", "TriggerService/RotateTrigger",
    "TriggerService/InvokeTrigger",
    "ContainerService/Exec",  # changes nothing in etcd, but every exec is audited, refused ones too
}


def fresh() -> str:
    return f"m{uuid.uuid4().hex[:8]}"


# Each request, aimed at cluster c and application a; none destroys what the matrix needs (deletes
# name what does not exist or carry a stale resource_version, creates are dry runs or new names).
REQUESTS: dict[str, Callable[[str, str], Message]] = {
    "ClusterService/CreateCluster": lambda c, a: api_pb2.CreateClusterRequest(name=fresh()),
    "ClusterService/GetCluster": lambda c, a: api_pb2.GetClusterRequest(name=c),
    "ClusterService/ListClusters": lambda c, a: api_pb2.ListClustersRequest(),
    "ClusterService/DeleteCluster": lambda c, a: api_pb2.DeleteClusterRequest(name=c, resource_version=1),
    "ClusterService/UpdateCluster": lambda c, a: api_pb2.UpdateClusterRequest(name=c),
    "ClusterService/GetJoinToken": lambda c, a: api_pb2.GetJoinTokenRequest(cluster=c),
    "NodeService/GetNode": lambda c, a: api_pb2.GetNodeRequest(cluster=c, name="n1"),
    "NodeService/ListNodes": lambda c, a: api_pb2.ListNodesRequest(cluster=c),
    "NodeService/UpdateNode": lambda c, a: api_pb2.UpdateNodeRequest(cluster=c, name="n1"),
    "NodeService/DeleteNode": lambda c, a: api_pb2.DeleteNodeRequest(cluster=c, name="n1"),
    "NodeService/RevokeNode": lambda c, a: api_pb2.RevokeNodeRequest(cluster=c, name="n1"),
    "NodeService/PruneNode": lambda c, a: api_pb2.PruneNodeRequest(cluster=c, name="n1"),
    "RegistryService/LoginRegistry": lambda c, a: api_pb2.LoginRegistryRequest(
        cluster=c, host=f"{fresh()}.example", username="u", password="p"),
    "RegistryService/ListRegistryLogins": lambda c, a: api_pb2.ListRegistryLoginsRequest(cluster=c),
    "RegistryService/DeleteRegistryLogin": lambda c, a: api_pb2.DeleteRegistryLoginRequest(
        cluster=c, host="nope.example"),
    "RegistryService/GetPushCredential": lambda c, a: api_pb2.GetPushCredentialRequest(
        cluster=c, host="nope.example"),
    "ApplicationService/CreateApplication": lambda c, a: api_pb2.CreateApplicationRequest(
        cluster=c, name=a, template=TEMPLATE, dry_run=True),
    "ApplicationService/GetApplication": lambda c, a: api_pb2.GetApplicationRequest(cluster=c, name=a),
    "ApplicationService/ListApplications": lambda c, a: api_pb2.ListApplicationsRequest(cluster=c),
    "ApplicationService/UpdateApplication": lambda c, a: api_pb2.UpdateApplicationRequest(
        cluster=c, name=a, version="v2", dry_run=True),
    "ApplicationService/DeleteApplication": lambda c, a: api_pb2.DeleteApplicationRequest(
        cluster=c, name=a, resource_version=1),
    "ApplicationService/StartApplication": lambda c, a: api_pb2.StartApplicationRequest(cluster=c, name=a),
    "ApplicationService/StopApplication": lambda c, a: api_pb2.StopApplicationRequest(cluster=c, name=a),
    "ApplicationService/RollbackApplication": lambda c, a: api_pb2.RollbackApplicationRequest(cluster=c, name=a),
    "ApplicationService/ListRevisions": lambda c, a: api_pb2.ListRevisionsRequest(cluster=c, name=a),
    "ApplicationService/DiffApplication": lambda c, a: api_pb2.UpdateApplicationRequest(cluster=c, name=a, version="v2"),
    "ClusterService/GetServerInfo": lambda c, a: api_pb2.GetServerInfoRequest(),
    "ServiceService/GetService": lambda c, a: api_pb2.GetServiceRequest(cluster=c, application=a, name="web"),
    "ServiceService/ListServices": lambda c, a: api_pb2.ListServicesRequest(cluster=c, application=a),
    "ServiceService/ScaleService": lambda c, a: api_pb2.ScaleServiceRequest(
        cluster=c, application=a, name="web", replicas=2),
    "ContainerService/GetContainer": lambda c, a: api_pb2.GetContainerRequest(
        cluster=c, application=a, service="web", name="nope"),
    "ContainerService/ListContainers": lambda c, a: api_pb2.ListContainersRequest(cluster=c, application=a),
    "ContainerService/Logs": lambda c, a: api_pb2.LogsRequest(cluster=c, application=a, service="web"),
    "ContainerService/Exec": lambda c, a: api_pb2.ExecRequest(cluster=c, application=a, service="web",
                                                              container="web-1-nope", command=["true"]),
    "EventService/ListEvents": lambda c, a: api_pb2.ListEventsRequest(cluster=c),
    "EventService/Watch": lambda c, a: api_pb2.WatchRequest(cluster=c, from_revision=1),
    "ReleaseService/ListReleases": lambda c, a: api_pb2.ListReleasesRequest(cluster=c, application=a),
    "ReleaseService/GetRelease": lambda c, a: api_pb2.GetReleaseRequest(cluster=c, application=a),
    "ReleaseService/ShiftTraffic": lambda c, a: api_pb2.ShiftTrafficRequest(cluster=c, application=a, weight=50),
    "ReleaseService/ConfirmRelease": lambda c, a: api_pb2.ReleaseActionRequest(cluster=c, application=a),
    "ReleaseService/RollbackRelease": lambda c, a: api_pb2.ReleaseActionRequest(cluster=c, application=a),
    "ReleaseService/PromoteRelease": lambda c, a: api_pb2.ReleaseActionRequest(cluster=c, application=a),
    "ReleaseService/AbortRelease": lambda c, a: api_pb2.ReleaseActionRequest(cluster=c, application=a),
    "RouteService/ListRoutes": lambda c, a: api_pb2.ListRoutesRequest(cluster=c),
    "SecretService/CreateSecret": lambda c, a: api_pb2.CreateSecretRequest(
        cluster=c, name=f"{a}_{fresh()}", data=b"v"),
    "SecretService/UpdateSecret": lambda c, a: api_pb2.UpdateSecretRequest(
        cluster=c, name=f"{a}_nope", data=b"v"),
    "SecretService/GetSecret": lambda c, a: api_pb2.GetSecretRequest(cluster=c, name="nope"),
    "SecretService/ListSecrets": lambda c, a: api_pb2.ListSecretsRequest(cluster=c),
    "SecretService/DeleteSecret": lambda c, a: api_pb2.DeleteSecretRequest(cluster=c, name=f"{a}_nope"),
    "SecretService/RotateSecretsKey": lambda c, a: api_pb2.RotateSecretsKeyRequest(),
    "ConfigService/CreateConfig": lambda c, a: api_pb2.CreateSecretRequest(
        cluster=c, name=f"{a}_{fresh()}", data=b"v"),
    "ConfigService/UpdateConfig": lambda c, a: api_pb2.UpdateSecretRequest(
        cluster=c, name=f"{a}_nope", data=b"v"),
    "ConfigService/GetConfig": lambda c, a: api_pb2.GetSecretRequest(cluster=c, name="nope"),
    "ConfigService/ListConfigs": lambda c, a: api_pb2.ListSecretsRequest(cluster=c),
    "ConfigService/DeleteConfig": lambda c, a: api_pb2.DeleteSecretRequest(cluster=c, name=f"{a}_nope"),
    "NetworkService/CreateNetwork": lambda c, a: api_pb2.CreateNetworkRequest(cluster=c, name=fresh()),
    "NetworkService/GetNetwork": lambda c, a: api_pb2.GetNetworkRequest(cluster=c, name="no-such-network"),
    "NetworkService/ListNetworks": lambda c, a: api_pb2.ListNetworksRequest(cluster=c),
    "NetworkService/DeleteNetwork": lambda c, a: api_pb2.DeleteNetworkRequest(cluster=c, name="no-such-network"),
    "TokenService/CreateToken": lambda c, a: api_pb2.CreateTokenRequest(name=fresh(), role="viewer"),
    "TokenService/ListTokens": lambda c, a: api_pb2.ListTokensRequest(),
    "TokenService/RevokeToken": lambda c, a: api_pb2.RevokeTokenRequest(name="no-such-token"),
    "TokenService/WhoAmI": lambda c, a: api_pb2.WhoAmIRequest(cluster=c, application=a),
    "AuditService/ListAudit": lambda c, a: api_pb2.ListAuditRequest(),
    "AuditService/WatchAudit": lambda c, a: api_pb2.WatchAuditRequest(from_revision=1),
    "TriggerService/CreateTrigger": lambda c, a: triggers_pb2.CreateTriggerRequest(
        cluster=c, application=a, name=fresh(), action=triggers_pb2.TRIGGER_ACTION_REDEPLOY),
    "TriggerService/ListTriggers": lambda c, a: triggers_pb2.ListTriggersRequest(cluster=c, application=a),
    "TriggerService/DeleteTrigger": lambda c, a: triggers_pb2.DeleteTriggerRequest(cluster=c, application=a,
                                                                                   name="nope"),
    "TriggerService/RotateTrigger": lambda c, a: triggers_pb2.RotateTriggerRequest(cluster=c, application=a,
                                                                                   name="nope"),
    "TriggerService/InvokeTrigger": lambda c, a: triggers_pb2.InvokeTriggerRequest(cluster=c, application=a,
                                                                                   name="nope"),
}
