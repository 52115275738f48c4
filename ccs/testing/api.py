"""``FakeApi``: every ccs API service of the fake, one servicer object (see ``ccs.testing``)."""

from __future__ import annotations

from ccs.testing.registries import RegistriesFake
from ccs.testing.tokens import TokensFake
from ccs.testing.triggers import TriggersFake
from ccs.v1 import api_pb2_grpc, triggers_pb2_grpc

__all__ = ["FakeApi"]


class FakeApi(
    TriggersFake,  # first: its methods (and AppsFake's) override the servicers' UNIMPLEMENTED stubs
    RegistriesFake,
    TokensFake,
    api_pb2_grpc.ClusterServiceServicer,
    api_pb2_grpc.NodeServiceServicer,
    api_pb2_grpc.ApplicationServiceServicer,
    api_pb2_grpc.ServiceServiceServicer,
    api_pb2_grpc.ContainerServiceServicer,
    api_pb2_grpc.EventServiceServicer,
    api_pb2_grpc.ReleaseServiceServicer,
    api_pb2_grpc.RouteServiceServicer,
    api_pb2_grpc.NetworkServiceServicer,
    api_pb2_grpc.SecretServiceServicer,
    api_pb2_grpc.ConfigServiceServicer,
    triggers_pb2_grpc.TriggerServiceServicer,
    api_pb2_grpc.RegistryServiceServicer,
    api_pb2_grpc.TokenServiceServicer,
):
    """Every ccs API service over dicts keyed by the resource's path."""
