"""The etcd store: the only module that talks to etcd.

Key layout (every value is a binary-encoded ``ccs.v1`` protobuf message unless noted)::

    /ccs/clusters/{cluster}                               Cluster
    /ccs/c/{cluster}/nodes/{node}                         Node
    /ccs/c/{cluster}/apps/{app}                           Application
    /ccs/c/{cluster}/services/{app}/{service}             Service
    /ccs/c/{cluster}/containers/{app}/{service}/{name}    Container
    /ccs/c/{cluster}/events/{sortable id}                 Event (pruned after an hour)
    /ccs/c/{cluster}/releases/{app}/r{NNNNNN}             Release
    /ccs/c/{cluster}/revisions/{app}/{NNNNNNNNNN}         ApplicationRevision (for rollback; the one
                                                          place a template is stored, see
                                                          controlplane.api.app_specs)
    /ccs/c/{cluster}/routerstats/{node}                   RouterStats (from the node's agent)
    /ccs/c/{cluster}/alive/{node}/{replica}               the replica's id, on its lease: it hears the node now
                                                          (controlplane.dispatcher.liveness)
    /ccs/c/{cluster}/subnets/{node}/{app}/{network}       SubnetAllocation (controlplane/ipam)
    /ccs/c/{cluster}/subnetblocks/{node}/{app}/{network}/{index}  its further blocks (index >= 1)
    /ccs/c/{cluster}/networks/{name}                      ClusterNetwork (ccs network create; joined by
                                                          Compose networks marked external: true)
    /ccs/c/{cluster}/nodecred/{node}                      digest of the node's credential
    /ccs/c/{cluster}/jointoken                            join token (CCSJOIN-{cluster}-{secret}; the
                                                          CA fingerprint is added when it is shown)
    /ccs/c/{cluster}/nodecerts/{node}/{serial hex}        a node certificate issued and not yet
                                                          expired: JSON {not_after, issued_at,
                                                          revoked_at} (controlplane.pki.node_certs)
    /ccs/tokens/{sha256 of token}                         API token or node credential record (JSON)
    /ccs/tokennames/{name}                                index: token name -> its digest (text)
    /ccs/audit/{sortable id}                              AuditRecord (pruned after --audit-retention)
    /ccs/bootstrap                                        marker: admin token was created
    /ccs/podcidrs/{cidr with _ for /}                     cluster owning that pod range (text)
    /ccs/pki/ca                                           the cluster CA: JSON {cert_pem, key (wrapped
                                                          by the master key), master_key_id}
    /ccs/secrets/{cluster}/{secret|config}/{name}/{version}  a secret or config version, encrypted
                                                          (JSON; controlplane.secrets)
    /ccs/secretkeys/{generation}                          a secrets data key, wrapped by the key of
                                                          --secrets-key-file (JSON; controlplane.secrets)
    /ccs/secretrotation                                   held on a lease by the one running rotate-key
    /ccs/secrets/{cluster}/trigger/{app}.{name}/{version}  a deploy trigger's secret (as a secret)
    /ccs/triggers/{cluster}/{app}/{name}                  Trigger (controlplane.triggers)
    /ccs/triggerdeliveries/{cluster}/{app}/{name}/{sha256 of the delivery id}  a delivery accepted,
                                                          on a TTL lease (the replay guard)
    /ccs/replicas/{host-pid-address}                      an API replica alive: JSON {api, node} under its
                                                          own lease (controlplane.replicas)

Why this shape:

- Everything that belongs to a cluster sits under one prefix ``/ccs/c/{cluster}/``, so
  ``Watch`` is a single etcd watch over one range and resumes from a revision with no
  gap and no duplicate, and a forced cluster delete is one range delete.
- Services and containers nest under their application (and service), so "all services
  of an app" and "all containers of a service" are prefix range reads, not scans.
- Cluster objects sit outside the subtree so that listing clusters is a range read
  over small values only.
- Removing an application removes every key keyed by it in one transaction with its own key
  (:func:`keys.owned_by_app`: services, releases, revision snapshots, triggers with their
  secrets and deliveries); its containers are
  gone first. Events are keyed by time and outlive it until they are pruned.
- Subnets nest under their node, so removing a node frees its blocks with one range delete.
- ``resource_version`` is the key's etcd ``mod_revision``; it is not stored in the value
  but filled in on read, so it can never disagree with etcd.

Every write that touches several keys goes through :class:`controlplane.store.txn.Txn`,
one etcd transaction guarded by create/mod revisions: it all happens or nothing does.
"""

from controlplane.store.errors import (
    AlreadyExists,
    Compacted,
    Conflict,
    Corrupt,
    FutureRevision,
    NotEmpty,
    NotFound,
    StoreError,
    StoreUnavailable,
    TooLarge,
)

__all__ = [
    "AlreadyExists",
    "Compacted",
    "Conflict",
    "Corrupt",
    "FutureRevision",
    "NotEmpty",
    "NotFound",
    "StoreError",
    "StoreUnavailable",
    "TooLarge",
]
