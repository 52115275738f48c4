"""``ccs whoami`` as a user runs it (a subprocess with a config file) against the REAL server on
a real etcd (the ``ccs_server`` fixture): the token in use, never its secret, and the calls the
access policy admits from it on the cluster and application the flags name."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from ccs.v1 import api_pb2, triggers_pb2

from .cli_process import cli, ok

pytestmark = [pytest.mark.etcd, pytest.mark.timeout(180)]
SERVICES = {**api_pb2.DESCRIPTOR.services_by_name, **triggers_pb2.DESCRIPTOR.services_by_name}
USER_API = sorted(f"{s.name}/{m.name}" for s in SERVICES.values() for m in s.methods)


def test_whoami_shows_the_admin_token_and_every_call(ccs_server: Any, unique: str) -> None:
    shown = ok(ccs_server, "whoami", "-c", unique)
    lines = shown.splitlines()
    assert lines[:4] == ["name:     admin", lines[1], "role:     admin", "scope:    -"]
    assert lines[4].startswith("state:    active")
    assert lines[5] == f"allowed on cluster {unique}: {len(USER_API)} calls"
    assert [line.strip() for line in lines[6:]] == USER_API
    data = json.loads(ok(ccs_server, "whoami", "-c", unique, "-a", "shop", "-o", "json"))
    assert (data["token"]["meta"]["name"], data["token"]["role"]) == ("admin", "admin")
    assert (data["cluster"], data["application"], data["allowed"]) == (unique, "shop", USER_API)
    assert ok(ccs_server, "whoami", "-o", "name") == "token/admin\n"


def test_whoami_of_a_scoped_deployer_lists_what_it_may_do_where(ccs_server: Any, unique: str) -> None:
    secret = ok(ccs_server, "token", "create", f"{unique}-d", "--role", "deployer", "--cluster", unique,
                "--app", "shop", "--ttl", "1h").strip()
    me = cli(ccs_server, "--token", secret, "whoami", "-c", unique, "-a", "shop", "-o", "yaml")
    assert me.returncode == 0, me.stderr
    assert secret not in me.stdout + me.stderr
    data = yaml.safe_load(me.stdout)
    token = data["token"]
    assert (token["meta"]["name"], token["role"], token["clusters"], token["applications"]) == (
        f"{unique}-d", "deployer", [unique], ["shop"])
    assert "expires_at" in token and data["cluster"] == unique and data["application"] == "shop"
    assert "ApplicationService/UpdateApplication" in data["allowed"]
    assert "TokenService/CreateToken" not in data["allowed"]
    elsewhere = json.loads(ok(ccs_server, "--token", secret, "whoami", "-c", f"{unique}-other", "-o", "json"))
    assert "ApplicationService/UpdateApplication" not in elsewhere["allowed"]
    assert "TokenService/WhoAmI" in elsewhere["allowed"]
    table = ok(ccs_server, "--token", secret, "whoami", "-c", unique, "-a", "shop")
    assert f"scope:    cluster={unique},app=shop" in table and "role:     deployer" in table
    assert f"allowed on cluster {unique}, application shop: {len(data['allowed'])} calls" in table


def test_whoami_refuses_a_bad_name_and_an_unknown_token(ccs_server: Any) -> None:
    bad = cli(ccs_server, "whoami", "-c", "Bad_Name")
    assert bad.returncode == 4 and bad.stderr.startswith("error: cluster: 'Bad_Name' is not a valid name"), bad
    assert cli(ccs_server, "--token", "wrong", "whoami").returncode == 6
