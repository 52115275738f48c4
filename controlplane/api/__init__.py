"""gRPC servicers of the ccs.v1 API.

Each servicer validates its request, reads or writes through :mod:`controlplane.store`,
and lets exceptions propagate. :func:`controlplane.grpc_errors.map_errors` is the one
boundary that turns store, template and validation errors into gRPC status codes, so
no servicer decides a status code by hand.
"""
