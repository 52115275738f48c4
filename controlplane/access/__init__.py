"""Authorization and audit: may this token make this call, and the record that it did.

Authentication (who is calling: a token, a node credential) is :mod:`controlplane.auth`; it
hands every call of an authenticated token to the gate here, and every call it refuses too (so
refused changes are audited). Three parts:

- :mod:`.policy` (pure): the permission each RPC needs and the permissions of each role, with
  the scope rules; a role is one row, an RPC is one row.
- :mod:`.gate`: wraps a handler to decide on the decoded request (``PERMISSION_DENIED`` before
  the servicer runs, so nothing is written) and to audit a change.
- :mod:`.audit`: the audit records, written in the same etcd transaction as the change they
  describe when there is one (see its docstring for why, and what happens otherwise).
"""
