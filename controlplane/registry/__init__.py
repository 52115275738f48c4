"""Image registries: the cluster's logins, and image tags resolved to digests at deploy.

Design (issue 13), and why:

- **Logins reuse the secrets store** (:mod:`controlplane.secrets`): a login is a value of kind
  ``registry`` named by its host, sealed with AES-256-GCM under the data key that
  ``--secrets-key-file`` wraps, so it is encrypted at rest, re-encrypted by ``ccs secret
  rotate-key`` like every secret, and outside the cluster's subtree (never in the informer's
  cache or a Watch). One version is kept: a new login replaces the old in one transaction.
- **Agents get a password only beside the assignment whose pull needs it**
  (:mod:`controlplane.dispatcher.pull_auth`), as mounted secret values travel: never in a
  stored record, the routing table or an event. The agent hands it to the Engine's pull as
  ``X-Registry-Auth`` (the Docker SDK's ``auth_config``) and nowhere else.
- **Digest pinning** (:mod:`pinning`, :mod:`resolve`): at deploy and update the control plane
  asks each registry an image names for the digest of its tag (Registry HTTP API v2, no
  Engine on the server), and stores ``name:tag@digest`` in the application's revision
  (``ApplicationSpec.pinned_images``) and the services' specs, so every node runs the same
  bytes, a scale-up after the tag moved still runs the old ones, and a rollback restores them.
"""
