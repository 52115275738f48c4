"""The routes' PEM files and crt-list on disk, and their runtime replacement in HAProxy.

The files live in `RouterSettings.certificate_dir` (the agent's tmpfs: a key is never written
to a disk), mode 0600, each written to a temporary name and renamed, so HAProxy (at a reload
or restart) never reads half a file. A new secret version keeps the file's path (see
`config`), so it is applied with `set ssl cert` + `commit ssl cert`: handshakes after the
commit get the new certificate, connections already open keep theirs, nothing reloads.

Material is bytes handed in by the caller and never formatted into a message: errors name
the file and HAProxy's answer only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path

from ccs.private_files import write_private
from ccs.v1 import agent_pb2

from .config import RenderedConfig, RouterSettings
from .https import CertificateRef
from .runtime_api import RuntimeAPI, RuntimeAPIError

PAYLOAD_LIMIT = 15000
"""Bytes of PEM ``set ssl cert`` takes in one request: the payload has to fit HAProxy's
default ``tune.bufsize`` (16 KiB) with the command. A larger chain is applied by a reload."""


def delivered(msg: agent_pb2.SessionMessage) -> dict[CertificateRef, bytes]:
    """The certificate material a session message carries, by secret version."""
    return {(f.name, f.version): f.data for f in msg.route_certificates if f.kind == "secret"}


class MissingCertificate(Exception):
    """The config names a secret version whose material the agent does not hold."""


def pem_payload(pem: bytes) -> str:
    """The PEM as HAProxy's CLI payload: no blank line (a blank line ends the payload) and no
    carriage return."""
    lines = pem.decode("ascii").replace("\r", "").split("\n")
    return "\n".join(line for line in lines if line.strip())


def write_files(cfg: RenderedConfig, settings: RouterSettings, material: Mapping[CertificateRef, bytes]) -> None:
    """Write every PEM file `cfg` names and its crt-list; remove PEM files it no longer names."""
    folder = settings.certificate_dir
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for path, ref in cfg.certificates.items():
        if ref not in material:
            raise MissingCertificate(f"{path}: no material for {ref[0]}@{ref[1]}")
        _write_private(Path(path), pem_payload(material[ref]).encode() + b"\n")
    _write_private(settings.crt_list_path, cfg.crt_list.encode())
    for stale in folder.glob("*.pem"):
        if str(stale) not in cfg.certificates:
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()


def remove_files(settings: RouterSettings) -> None:
    """Remove every PEM file and the crt-list (the router stopped: no key lingers)."""
    for path in (*settings.certificate_dir.glob("*.pem"), settings.crt_list_path):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _write_private(path: Path, data: bytes) -> None:
    with contextlib.suppress(OSError):
        if path.read_bytes() == data:
            return  # most applies change weights only: no rewrite of every key each time
    write_private(path, data)


async def replace_at_runtime(api: RuntimeAPI, path: str, pem: bytes) -> None:
    """`set ssl cert PATH <<PEM` then `commit ssl cert PATH`; on a refusal the transaction is
    aborted and RuntimeAPIError raised (the caller reloads instead)."""
    payload = pem_payload(pem)
    if len(payload) + len(path) + 32 > PAYLOAD_LIMIT:
        raise RuntimeAPIError(f"set ssl cert {path}: {len(payload)} bytes of PEM do not fit one request")
    answer = await api.send_payload(f"set ssl cert {path}", payload)
    if not answer.strip().startswith("Transaction "):
        await _abort(api, path)
        raise RuntimeAPIError(f"set ssl cert {path}: {' '.join(answer.split())[:300]}")
    answer = await api.command(f"commit ssl cert {path}")
    if "Success!" not in answer:
        await _abort(api, path)
        raise RuntimeAPIError(f"commit ssl cert {path}: {' '.join(answer.split())[:300]}")


async def _abort(api: RuntimeAPI, path: str) -> None:
    with contextlib.suppress(RuntimeAPIError):
        await api.command(f"abort ssl cert {path}")
