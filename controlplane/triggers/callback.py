"""The callback: a trigger's final phase POSTed to its ``callback_url``, signed like a ccs call.

Sent by the replica that accepted the call, once the release ends (or at once for a call that
started none), with ``X-CCS-Signature``/``X-CCS-Timestamp``/``X-CCS-Delivery`` made with the
trigger's own secret, so the receiver checks it as ccs checks calls. At most
:data:`ATTEMPTS` tries, backing off from 1 s (a 2xx answer ends it); a replica that stops
meanwhile does not send it (the status URL still answers). httpx: a maintained async HTTP
client, so a slow receiver never blocks the server's loop.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx

from ccs.models import phase_name
from ccs.release_phases import TERMINAL_PHASES
from ccs.v1 import resources_pb2 as pb
from controlplane.store import keys, reads
from controlplane.store.etcd import Etcd
from controlplane.triggers.callback_target import checked_address, pinned_url
from controlplane.triggers.signature import ccs_signature

ATTEMPTS = 4
TIMEOUT = 10.0
POLL = 1.0
#: A release is followed for at most this long (then its phase as it stands is sent).
FOLLOW = 3600.0


async def final_phase(etcd: Etcd, cluster: str, app: str, release: str, poll: float = POLL,
                      limit: float = FOLLOW) -> str:
    """The release's phase once it ends (read every ``poll`` seconds, at most ``limit``)."""
    deadline = time.monotonic() + limit
    number = int(release[1:])
    while True:
        rel = await reads.get(etcd, keys.release(cluster, app, number), pb.Release, "release", release)
        if rel.status.phase in TERMINAL_PHASES or time.monotonic() >= deadline:
            return phase_name(rel.status.phase)
        await asyncio.sleep(poll)


async def send(url: str, doc: dict[str, Any], secret: bytes, attempts: int = ATTEMPTS, backoff: float = 1.0, *,
               allow_private: bool = False) -> int:
    """POST ``doc`` signed; the answer's status (the last one, after ``attempts`` tries).

    Each try resolves the host again and checks every address (:mod:`.callback_target`:
    :class:`CallbackRefused` ends it), then connects to the address checked, the URL's host
    kept for the Host header and the certificate check (``sni_hostname``)."""
    body = json.dumps(doc).encode()
    delivery = str(uuid.uuid4())
    status = 0
    parts = urlsplit(url)
    async with httpx.AsyncClient(timeout=TIMEOUT, verify=True, follow_redirects=False) as client:
        for i in range(attempts):
            stamp = str(int(time.time()))
            headers = {"content-type": "application/json", "x-ccs-timestamp": stamp, "x-ccs-delivery": delivery,
                       "x-ccs-signature": ccs_signature(secret, stamp, body), "host": parts.netloc}
            address = await checked_address(url, allow_private)
            try:
                status = (await client.post(pinned_url(url, address), content=body, headers=headers,
                                            extensions={"sni_hostname": parts.hostname or ""})).status_code
                if 200 <= status < 300:
                    return status
            except httpx.HTTPError:
                status = 0
            if i < attempts - 1:
                await asyncio.sleep(backoff * 2**i)
    raise RuntimeError(f"callback answered {status or 'nothing'} after {attempts} tries")
