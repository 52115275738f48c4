"""The corpus test's tables and oracle, checked without the testbed.

The tables (tests/integration/e2e/test_corpus.py) cover the whole corpus: each refused file is
listed, and every image of a file that parses is mapped to a local one.

The oracle (tests/integration/e2e/inspect_expect.py) knows every ServiceSpec field:
what the container must show for it, or that it acts elsewhere. A field added to the proto
without a place here fails, so the corpus test can never pass by not looking."""

from __future__ import annotations

from typing import Any

import yaml

from ccs.v1 import resources_pb2 as pb
from tests.integration.e2e.inspect_expect import ELSEWHERE, ON_THE_CONTAINER, Where, expected, mismatches
from tests.integration.e2e.test_corpus import IMAGES, REFUSED, corpus, parses, template_of


def test_every_service_spec_field_is_placed() -> None:
    fields = set(pb.ServiceSpec.DESCRIPTOR.fields_by_name)
    assert not ON_THE_CONTAINER & ELSEWHERE
    assert sorted(fields - ON_THE_CONTAINER - ELSEWHERE) == [], "fields the oracle does not know"
    assert sorted((ON_THE_CONTAINER | ELSEWHERE) - fields) == [], "names that are not ServiceSpec fields"


def test_a_container_without_the_asked_options_is_reported_field_by_field() -> None:
    spec = pb.ServiceSpec(image="local/busybox:1", cap_drop=["CAP_NET_RAW"], environment={"A": "1"})
    spec.ports.add(target=80, published=8080)
    spec.volumes.add(type="volume", source="data", target="/data")
    where = Where("c", "shop", "web", "169.254.20.53")
    bare: dict[str, Any] = {"State": {"Running": True}, "Config": {"Image": "local/busybox:1", "Env": ["A=1"],
            "Labels": {"ccs.cluster": "c", "ccs.app": "shop", "ccs.service": "web"}, "ExposedPorts": {"80/tcp": {}}},
            "HostConfig": {"RestartPolicy": {"Name": "no"}, "NetworkMode": "ccs-c_shop", "Dns": ["169.254.20.53"],
                           "ShmSize": 64 << 20},
            "NetworkSettings": {"Networks": {"ccs-c_shop": {}}}, "Mounts": []}
    lines = mismatches(bare, expected(spec, where))
    assert [line.split(":")[0] for line in lines] == ["HostConfig.CapDrop", "HostConfig.PortBindings", "Mounts"]
    bare["HostConfig"] |= {"CapDrop": ["CAP_NET_RAW"],
                           "PortBindings": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}}
    bare["Mounts"] = [{"Type": "volume", "Name": "ccs-c_shop_data", "Source": "/var/lib/docker/volumes/x",
                       "Destination": "/data", "RW": True}]
    assert mismatches(bare, expected(spec, where)) == []


def test_the_tables_cover_the_corpus() -> None:
    dirs = corpus()
    refused = {name for name, d in dirs.items() if not parses(d)}
    assert refused == set(REFUSED)
    used = {str(s["image"]) for name, d in dirs.items() if name not in refused
            for s in yaml.safe_load(template_of(d).read_text())["services"].values()}
    assert used == set(IMAGES), "every image of a file that parses is mapped, and only those"
