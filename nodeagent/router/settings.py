"""Where a node's router listens and keeps its files (the agent's ``--router-*`` options).

Pure, like the config it feeds: values are checked when made, so a bad option fails at the
agent's start with the option's name, not at HAProxy's first reload.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ADDRESS = re.compile(r"^[A-Za-z0-9.:-]+\Z")


@dataclass(frozen=True, slots=True)
class RouterSettings:
    """Where the router listens and keeps its files."""

    state_dir: Path
    bind_address: str = "0.0.0.0"
    port: int = 9080
    connect_timeout: str = "3s"
    client_timeout: str = "60s"
    server_timeout: str = "60s"
    check_interval: str = "2s"
    hard_stop_after: str = "30s"
    https_port: int = 9443
    # Where the agent writes the routes' PEM files (certificate chain + key): a tmpfs, so keys
    # never reach a disk. None: `state_dir/tls` (tests).
    tls_dir: Path | None = None
    # HAProxy's built-in Prometheus exporter on 127.0.0.1:metrics_port (router/exporter.py); 0: none.
    metrics_port: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port: must be in 1-65535, got {self.port}")
        if not 1 <= self.https_port <= 65535 or self.https_port == self.port:
            raise ValueError(f"https_port: must be in 1-65535 and differ from port, got {self.https_port}")
        if not 0 <= self.metrics_port <= 65535 or (self.metrics_port and self.metrics_port in (self.port,
                                                                                              self.https_port)):
            raise ValueError(f"metrics_port: must be in 0-65535 and differ from the router's ports, "
                             f"got {self.metrics_port}")
        if not self.bind_address or not ADDRESS.match(self.bind_address):
            raise ValueError(f"bind_address: must be an IP address or host name, got {self.bind_address!r}")

    @property
    def socket_path(self) -> Path:
        return self.state_dir / "haproxy.sock"

    @property
    def config_path(self) -> Path:
        return self.state_dir / "haproxy.cfg"

    @property
    def certificate_dir(self) -> Path:
        return self.tls_dir if self.tls_dir is not None else self.state_dir / "tls"

    @property
    def crt_list_path(self) -> Path:
        return self.certificate_dir / "crt-list.txt"

    def certificate_path(self, domain: str) -> Path:
        """The PEM file of `domain`: the same for every version of its certificate (see the
        module docstring). `*.` becomes `_.`; `_` is not a host name character."""
        return self.certificate_dir / f"{domain.lower().replace('*', '_')}.pem"
