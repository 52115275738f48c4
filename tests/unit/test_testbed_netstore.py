"""The testbed's recipe for a half-deleted network record (deploy/testbed/tb_netstore.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

TESTBED = Path(__file__).resolve().parents[2] / "deploy" / "testbed"
if str(TESTBED) not in sys.path:  # the testbed is a script folder, not a package
    sys.path.insert(0, str(TESTBED))

import tb_common  # noqa: E402
from tb_netstore import mark_half_deleted  # noqa: E402

NET = "4f1c" * 16


def record(net_id: str, in_delete: bool = False) -> bytes:
    """A network record as libnetwork marshals it: a map, so sorted keys, compact JSON."""
    value = {
        "addrSpace": "LocalDefault", "enableIPv6": False, "generic": {"com.docker.network.enable_ipv6": False},
        "id": net_id, "inDelete": in_delete, "internal": False, "ipamOptions": {}, "ipamType": "default",
        "ipamV4Config": '[{"PreferredPool":"","SubPool":"","Gateway":"","AuxAddresses":null}]',
        "ipamV4Info": '[{"IPAMData":"{\\"AddressSpace\\":\\"\\",\\"Gateway\\":\\"172.18.0.1/16\\"}","PoolID":"x"}]',
        "labels": {}, "name": "doomed", "networkType": "bridge", "persist": True, "postIPv6": False,
        "scope": "local",
    }
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def page(*values: bytes) -> bytes:
    """Values between binary page bytes, as in a bbolt file."""
    return b"\x00\x13\x02\xff".join([b"HEAD", *values, b"TAIL"])


def test_every_copy_is_half_deleted_and_the_length_is_kept() -> None:
    other = record("9" * 64)
    data = page(record(NET), other, record(NET))
    out, count = mark_half_deleted(data, NET)
    assert count == 2 and len(out) == len(data)
    assert other in out  # another network is left alone
    for chunk in out.split(b"\x00\x13\x02\xff")[1:-1]:
        value = json.loads(chunk)
        if value["id"] == NET:
            assert value["inDelete"] is True
            assert "ipamV4Info" not in value and value["ipamV4Config"]  # what makes 20.10 panic
        else:
            assert value == json.loads(other)


@pytest.mark.parametrize("data", [page(record("9" * 64)), page(record(NET, in_delete=True)), b""])
def test_a_store_without_a_live_record_is_refused(data: bytes) -> None:
    with pytest.raises(tb_common.TestbedError, match="no live record"):
        mark_half_deleted(data, NET)


def test_a_record_without_ipam_info_is_refused() -> None:
    bare = json.loads(record(NET))
    del bare["ipamV4Info"]
    data = page(json.dumps(bare, separators=(",", ":"), sort_keys=True).encode(), record("9" * 64))
    with pytest.raises(tb_common.TestbedError, match="no ipamV4Info"):
        mark_half_deleted(data, NET)
