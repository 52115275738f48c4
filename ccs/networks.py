"""Names of application networks that the control plane and the agent must spell alike.

A protocol fact of ``Container.subnets`` (and of a ``SubnetAllocation``'s etcd key), so it lives in
``ccs``, which both the control plane and the agent may import, as :mod:`ccs.container_states`
does for container states. Pure: no imports.
"""

from __future__ import annotations

from typing import Final

__all__ = ["DEFAULT_NETWORK"]

#: The key of the application's own network in ``Container.subnets`` and in the etcd key of a
#: ``SubnetAllocation`` (today every application has one network per node).
DEFAULT_NETWORK: Final = "default"
