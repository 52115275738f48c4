"""Agent settings, the persisted node identity, and host address detection.

The identity is the only state the agent keeps on disk: everything about containers is
recovered from the engine's labels. It holds the cluster and node name and either the node's
key, certificate and the cluster CA (TLS, the default: see nodeagent.node_tls) or a bearer
credential (a server started with --insecure). One JSON file, written atomically with mode
0600 (it holds a private key or a credential): a renewed certificate replaces key and
certificate together, and a restarted agent needs no join token.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from ccs.interfaces import interface_addresses
from ccs.private_files import write_private

IDENTITY_FILE = "identity.json"
DEFAULT_STATE_ROOT = Path("/var/lib/ccs-agent")


class ConfigError(ValueError):
    """A setting or the state file is unusable; the message names the field and why."""


@dataclass(frozen=True, slots=True)
class Identity:
    cluster: str
    node: str
    credential: str = ""  # --insecure servers: the bearer credential
    server: str = ""
    # TLS: the node's key (made here, never sent), its certificate, the cluster CA that
    # verifies the node port, that port, and when the certificate arrived (renewal timing).
    key_pem: str = ""
    cert_pem: str = ""
    ca_pem: str = ""
    node_port: int = 0
    received_at: float = 0.0

    @property
    def has_certificate(self) -> bool:
        return bool(self.key_pem and self.cert_pem and self.ca_pem)


def load_identity(state_dir: Path) -> Identity | None:
    """The saved identity, or None when the agent never registered with this state dir."""
    path = state_dir / IDENTITY_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable identity file: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    for key in ("cluster", "node"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ConfigError(f"{path}: {key}: missing or not a non-empty string")
    texts = ("credential", "server", "key_pem", "cert_pem", "ca_pem")
    for key in texts:
        if not isinstance(data.get(key, ""), str):
            raise ConfigError(f"{path}: {key}: not a string")
    if not data.get("credential") and not (data.get("key_pem") and data.get("cert_pem") and data.get("ca_pem")):
        raise ConfigError(f"{path}: holds neither a credential nor a key, certificate and CA")
    try:
        node_port, received_at = int(data.get("node_port", 0)), float(data.get("received_at", 0.0))
    except (TypeError, ValueError):
        raise ConfigError(f"{path}: node_port/received_at: not numbers") from None
    credential, server, key_pem, cert_pem, ca_pem = (str(data.get(k, "")) for k in texts)
    return Identity(data["cluster"], data["node"], credential, server, key_pem, cert_pem, ca_pem,
                    node_port, received_at)


def save_identity(state_dir: Path, identity: Identity) -> Path:
    """Write the identity atomically with mode 0600."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = state_dir / IDENTITY_FILE
    write_private(path, json.dumps(asdict(identity)).encode("utf-8"))
    return path


def parse_labels(items: Iterable[str]) -> dict[str, str]:
    """`k=v` strings -> dict; a bad one raises ConfigError naming it."""
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--label: expected KEY=VALUE, got {item!r}")
        labels[key.strip()] = value
    return labels


def default_state_dir(name: str) -> Path:
    return DEFAULT_STATE_ROOT / name


def _route_source(host: str) -> str | None:
    """The local IPv4 the kernel would use to reach `host` (a UDP connect sends nothing)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((host, 9))
            addr = str(s.getsockname()[0])
    except OSError:
        return None
    return None if addr.startswith("127.") or addr == "0.0.0.0" else addr


def detect_address(server: str = "") -> str:
    """The node address others reach this host at, detected inside the current netns.

    Preference: the source address of the route to the server, then of the default route,
    then the first non-loopback IPv4 of any interface, then 127.0.0.1.
    """
    host = server.rsplit(":", 1)[0].strip("[]") if server else ""
    candidates = [host] if host else []
    candidates.append("192.0.2.1")  # TEST-NET-1: routed only by a default route
    for target in candidates:
        with contextlib.suppress(OSError, UnicodeError):
            resolved = socket.gethostbyname(target)
            addr = _route_source(resolved)
            if addr:
                return addr
    for addr in interface_addresses():
        if not addr.startswith("127."):
            return addr
    return "127.0.0.1"
