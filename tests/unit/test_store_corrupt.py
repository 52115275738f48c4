"""A value that does not decode is a named ``Corrupt`` error, never a bare DecodeError."""

from __future__ import annotations

import grpc
import pytest

from ccs.v1 import resources_pb2 as pb
from controlplane.grpc_errors import _status
from controlplane.store import Corrupt
from controlplane.store.codec import decode, encode
from controlplane.store.etcd import KV
from controlplane.store.reads import decode_all

GARBAGE = b"\x00not a protobuf\xff\xff"


def kv(key: str, value: bytes) -> KV:
    return KV(key, value, 7, 3)


def test_decode_names_the_key() -> None:
    with pytest.raises(Corrupt) as caught:
        decode(kv("/ccs/c/p/services/shop/web", GARBAGE), pb.Service)
    assert list(caught.value.bad) == ["/ccs/c/p/services/shop/web"]
    assert "/ccs/c/p/services/shop/web does not decode (DecodeError" in str(caught.value)


def test_a_list_names_every_corrupt_key_and_maps_to_data_loss() -> None:
    good = encode(pb.Service(meta=pb.Meta(name="ok")))
    kvs = [kv("/s/a", GARBAGE), kv("/s/b", good), kv("/s/c", GARBAGE)]
    with pytest.raises(Corrupt) as caught:
        decode_all(kvs, pb.Service, "list of /s/")
    message = str(caught.value)
    assert message.startswith("list of /s/: 2 stored records do not decode: /s/a (")
    assert "/s/c (" in message and "/s/b" not in message
    assert _status(caught.value) == (grpc.StatusCode.DATA_LOSS, message)
    assert [s.meta.name for s in decode_all(kvs[1:2], pb.Service, "x")] == ["ok"]


def test_named_says_what_was_read() -> None:
    err = Corrupt({"/k": "DecodeError: bad"}).named("service 'shop/web'")
    assert str(err) == ("service 'shop/web': the stored record at /k does not decode "
                        "(DecodeError: bad); rewrite or delete it")
