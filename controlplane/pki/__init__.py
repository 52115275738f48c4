"""The control plane's PKI: cluster CA, server and node certificates, the master key.

Trust, as Swarm builds it (swarmkit's ``ca`` package) and where ccs differs:

- **One CA per control plane** (:mod:`cluster_ca`), created at the first start. Its key sits
  in etcd wrapped by a master key (:mod:`keywrap`) that every API server
  is given as a file, so every replica can sign and none keeps state of its own. Swarm keeps
  the CA key in its Raft store, encrypted only when a passphrase is given
  (``SWARM_ROOT_CA_PASSPHRASE``); here it is always wrapped.
- **Servers** get a certificate from that CA at every start for the names they have
  (:mod:`server_tls`), renewed in place; ``--tls-cert/--tls-key`` bring one instead for the
  API port.
- **Nodes**: the join token carries the CA's fingerprint (``CCSJOIN-2-<fp>-<cluster>-<secret>``,
  :mod:`ccs.join_token`); the agent checks the server against it before sending anything,
  makes its key itself, sends a CSR in ``Register`` and gets a 90-day certificate (CN = node,
  O = cluster, OU = ccs-node; :mod:`certs`). Swarm puts a random node id in the CN and checks
  managers by a role name in their SANs; ccs nodes are known by their name (unique in a
  cluster, the key of the node's record), and clients check servers by host name or address
  (the names users type), so the same certificate works for grpcurl and browsers. The agent
  then talks mutual TLS on the node port, renews at two thirds of the lifetime with
  ``RenewCertificate``, and the node a call comes from is the one its certificate names
  (:mod:`node_auth`).
- **Revocation** (:mod:`node_certs`): every issued certificate is recorded in etcd and checked
  on every call, since a TLS connection outlives any revocation; ``ccs node revoke`` and
  ``ccs node rm`` mark the node's certificates revoked in the transaction that says so.

Under ``--insecure`` none of this is used for connections (plaintext, bearer node
credentials as before), but the CA is still created, so turning TLS on later
needs no migration.
"""
