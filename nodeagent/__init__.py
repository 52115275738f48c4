"""The ccs node agent: converges the local Docker Engine to its node's assignments.

It talks only to the control plane's Dispatcher (never to etcd), drives Docker through
the narrow :mod:`nodeagent.runtime` interface, and reports container status in batches.
"""
