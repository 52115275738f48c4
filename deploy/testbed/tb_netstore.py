"""Leave a network half deleted in a stopped dockerd's network store, as moby#45057 does.

Why this exists: Docker 20.10.24 (Debian 12's ``docker.io``) deletes a user network in steps.
It first stores the network record with ``inDelete: true``, then removes the bridge, releases
the address pool and stores the record again, now without ``ipamV4Info`` (an empty list is not
marshalled), and only then deletes the record. A dockerd killed after that second write leaves
a record with ``ipamV4Config`` but no ``ipamV4Info``; at every later start
``(*controller).reservePools`` indexes ``ipamV4Info[0]`` for each config entry and panics with
"index out of range [0] with length 0" before it ever reaches the clean-up of ``inDelete``
networks (fixed by moby#45310, in v23/v24 only).

Hitting that window with a real kill is a race (a kill 20-100 ms after ``network rm`` starts,
on one machine). The tests need the state itself, every time, so this module writes it:
with dockerd down, it edits the network's JSON record inside the bbolt file ``local-kv.db``
in place. bbolt keeps a value as contiguous bytes in its leaf (or overflow) page and has no
checksum over data pages, so an edit that keeps the value's length keeps the file valid:

- ``"inDelete":false`` becomes ``"inDelete":true `` (JSON allows the trailing space);
- the key ``"ipamV4Info"`` is renamed to ``"ipamV4Gone"``, a key libnetwork does not read, so
  the record decodes with no ``ipamV4Info``, exactly as the engine's own second write leaves it.

libnetwork marshals a map, so its keys come sorted and the record is compact JSON: ``"id"`` is
followed by ``"inDelete"``, and ``"ipamV4Info"`` follows later in the same record. Every copy
of the record in the file is edited (bbolt's copy-on-write leaves old pages on its freelist,
where an edit is harmless).
"""

from __future__ import annotations

from pathlib import Path

from tb_common import HostLayout, TestbedError

RECORD_SPAN = 8192  # bytes searched after a record's "id" for its "ipamV4Info" key


def store_path(host: HostLayout) -> Path:
    return host.dir / "data" / "network" / "files" / "local-kv.db"


def mark_half_deleted(data: bytes, network_id: str) -> tuple[bytes, int]:
    """Return ``data`` with every record of ``network_id`` half deleted, and how many there were.

    Raise TestbedError if the record is not found in the shape described in the module
    docstring (an engine that writes its store differently needs another recipe)."""
    head = f'"id":"{network_id}","inDelete":false'.encode()
    out = bytearray(data)
    count = 0
    at = out.find(head)
    while at >= 0:
        out[at:at + len(head)] = f'"id":"{network_id}","inDelete":true '.encode()
        info = out.find(b'"ipamV4Info":', at, at + RECORD_SPAN)
        following = out.find(b'"id":"', at + len(head), at + RECORD_SPAN)
        if info < 0 or 0 <= following < info:
            raise TestbedError(f"network {network_id[:12]}: its record has no ipamV4Info to drop")
        out[info:info + len(b'"ipamV4Info":')] = b'"ipamV4Gone":'
        count += 1
        at = out.find(head, at + len(head))
    if count == 0:
        raise TestbedError(f"network {network_id[:12]}: no live record in the network store")
    return bytes(out), count


def half_delete(host: HostLayout, network_id: str) -> int:
    """Edit the (stopped) host's network store; return how many copies of the record changed."""
    path = store_path(host)
    if not path.exists():
        raise TestbedError(f"{host.name}: no network store at {path}")
    data, count = mark_half_deleted(path.read_bytes(), network_id)
    path.write_bytes(data)
    return count
