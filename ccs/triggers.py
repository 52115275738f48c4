"""Typed calls for deploy triggers (``client.triggers``).

A trigger lets a CI job or a GitHub webhook redeploy an application, set one service's image
tag, or scale one service, by a signed HTTPS call to the server's ``--http-listen`` port
(README, "Triggers"). ``create`` and ``rotate`` return the secret, once: it is never shown
again. ``invoke`` fires a trigger over gRPC with a token (the ``trigger`` role allows that
and nothing else).
"""

from __future__ import annotations

from ccs._transport import Transport
from ccs.v1 import triggers_pb2

__all__ = ["ACTIONS", "Triggers"]

#: The actions by their CLI names.
ACTIONS = {
    "redeploy": triggers_pb2.TRIGGER_ACTION_REDEPLOY,
    "update-image": triggers_pb2.TRIGGER_ACTION_UPDATE_IMAGE,
    "scale": triggers_pb2.TRIGGER_ACTION_SCALE,
}


def action_name(action: int) -> str:
    return next((k for k, v in ACTIONS.items() if v == action), str(action))


class Triggers:
    """An application's deploy triggers."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    async def create(self, cluster: str, application: str, name: str, action: str, *, service: str = "",
                     callback_url: str = "") -> triggers_pb2.CreateTriggerResponse:
        """A new trigger; the answer's ``secret`` is shown this once. ``action``: redeploy,
        update-image or scale (the latter two name a ``service``)."""
        # An unknown action goes as UNSPECIFIED: the server names the field and the choices.
        req = triggers_pb2.CreateTriggerRequest(cluster=cluster, application=application, name=name,
                                                action=ACTIONS.get(action, triggers_pb2.TRIGGER_ACTION_UNSPECIFIED),
                                                service=service, callback_url=callback_url)
        return await self._t.unary(self._t.triggers.CreateTrigger, req, triggers_pb2.CreateTriggerResponse)

    async def list(self, cluster: str, application: str = "") -> list[triggers_pb2.Trigger]:
        req = triggers_pb2.ListTriggersRequest(cluster=cluster, application=application)
        resp = await self._t.unary(self._t.triggers.ListTriggers, req, triggers_pb2.ListTriggersResponse)
        return list(resp.triggers)

    async def delete(self, cluster: str, application: str, name: str) -> None:
        req = triggers_pb2.DeleteTriggerRequest(cluster=cluster, application=application, name=name)
        await self._t.unary(self._t.triggers.DeleteTrigger, req, triggers_pb2.DeleteTriggerResponse)

    async def rotate(self, cluster: str, application: str, name: str) -> triggers_pb2.CreateTriggerResponse:
        """A new secret (shown this once); the old one stops working at once."""
        req = triggers_pb2.RotateTriggerRequest(cluster=cluster, application=application, name=name)
        return await self._t.unary(self._t.triggers.RotateTrigger, req, triggers_pb2.CreateTriggerResponse)

    async def invoke(self, cluster: str, application: str, name: str, *, tag: str = "",
                     replicas: int | None = None, version: str = "") -> triggers_pb2.TriggerResult:
        """Fire the trigger (as a signed HTTPS call would): update-image takes ``tag``, scale
        ``replicas``."""
        req = triggers_pb2.InvokeTriggerRequest(cluster=cluster, application=application, name=name, tag=tag,
                                                version=version, replicas=replicas or 0,
                                                has_replicas=replicas is not None)
        return await self._t.unary(self._t.triggers.InvokeTrigger, req, triggers_pb2.TriggerResult)
