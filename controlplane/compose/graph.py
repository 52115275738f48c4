"""Checks across services: the depends_on graph and published host ports.

The order returned puts dependencies first and otherwise keeps template order, so a reader of
``ccs app show`` sees services in the order they would start.
"""

from __future__ import annotations

from controlplane.compose.errors import Diagnostics, Path, format_path
from controlplane.compose.model import PortSpec

_WILDCARDS = ("", "0.0.0.0", "::")


def start_order(deps: dict[str, list[str]], diag: Diagnostics) -> list[str]:
    """Services with their dependencies first; each cycle is reported once, by name."""
    order: list[str] = []
    done: set[str] = set()
    seen_cycles: set[frozenset[str]] = set()
    for root in deps:
        if root in done:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        on_path: list[str] = [root]
        while stack:
            name, index = stack[-1]
            children = deps.get(name, [])
            if index < len(children):
                stack[-1] = (name, index + 1)
                child = children[index]
                if child in done:
                    continue
                if child in on_path:
                    cycle = [*on_path[on_path.index(child) :], child]
                    if frozenset(cycle) not in seen_cycles:
                        seen_cycles.add(frozenset(cycle))
                        diag.error(
                            ("services", cycle[0], "depends_on"), f"dependency cycle: {' -> '.join(cycle)}"
                        )
                    continue
                stack.append((child, 0))
                on_path.append(child)
            else:
                stack.pop()
                on_path.pop()
                done.add(name)
                order.append(name)
    return order


def check_published_ports(ports: list[tuple[Path, PortSpec]], diag: Diagnostics) -> None:
    """Two bindings of one host port/protocol clash unless they use different, specific IPs."""
    seen: dict[tuple[str, int], list[tuple[Path, str]]] = {}
    for path, port in ports:
        if port.published == 0:
            continue
        key = (port.protocol, port.published)
        for other_path, other_ip in seen.get(key, []):
            if port.host_ip == other_ip or port.host_ip in _WILDCARDS or other_ip in _WILDCARDS:
                diag.error(
                    path,
                    f"host port {port.published}/{port.protocol} is already published by "
                    f"{format_path(other_path)}",
                )
                break
        seen.setdefault(key, []).append((path, port.host_ip))
