"""Every awesome-compose example either parses or is refused for a documented reason.

The expected outcome of each file is in a table so that a regression shows as a diff.
"""

from __future__ import annotations

import pathlib
import re

import pytest

from controlplane.compose import RULES, Action, TemplateError, parse_template
from controlplane.compose.template import BUILD_REFUSAL

CORPUS = pathlib.Path(__file__).parents[1] / "data" / "compose-corpus" / "awesome-compose"

# directory -> services in start order (parsed) or the set of keys it is refused for
# ("volumes": a bind mount from a path relative to the template or in a home directory).
EXPECTED: dict[str, list[str] | set[str]] = {
    "angular": {"build", "volumes"},
    "apache-php": {"build", "volumes"},
    "aspnet-mssql": {"build"},
    "django": {"build"},
    "elasticsearch-logstash-kibana": {"volumes"},
    "fastapi": {"build"},
    "flask": {"build"},
    "flask-redis": {"build", "volumes"},
    "gitea-postgres": ["gitea", "db"],
    "minecraft": {"volumes"},
    "nextcloud-postgres": ["nc", "db"],
    "nextcloud-redis-mariadb": ["nc", "redis", "db"],
    "nginx-aspnet-mysql": {"build", "file"},
    "nginx-flask-mongo": {"build", "volumes"},
    "nginx-flask-mysql": {"build", "file"},
    "nginx-golang": {"build", "volumes"},
    "nginx-golang-mysql": {"build", "file", "volumes"},
    "nginx-golang-postgres": {"build", "file", "volumes"},
    "nginx-nodejs-redis": {"build"},
    "nginx-wsgi-flask": {"build", "volumes"},
    "pihole-cloudflared-DoH": {"ipv4_address", "ipam"},
    "plex": ["plex"],
    "portainer": ["portainer"],
    "postgresql-pgadmin": ["postgres", "pgadmin"],
    "prometheus-grafana": {"volumes"},
    "react-express-mongodb": {"build", "volumes"},
    "react-express-mysql": {"build", "file", "volumes"},
    "react-java-mysql": {"build", "file", "volumes"},
    "react-nginx": {"build"},
    "react-rust-postgres": {"build", "volumes"},
    "sparkjava": {"build"},
    "sparkjava-mysql": {"build", "file"},
    "spring-postgres": {"build", "file"},
    "traefik-golang": {"build"},
    "vuejs": {"build", "volumes"},
    "wasmedge-kafka-mysql": {"runtime", "volumes"},
    "wasmedge-mysql-nginx": {"runtime", "volumes"},
    "wireguard": ["wireguard"],
    "wordpress-mysql": ["db", "wordpress"],
}
# Parsed directories whose templates need the cluster's policy to allow something.
POLICY: dict[str, set[str]] = {"plex": {"network_mode"}, "wireguard": {"cap_add"}}


def _key(path: str) -> str:
    return re.sub(r"\[\d+\]$", "", path.split(".")[-1])


def _documented(key: str, path: str, message: str) -> bool:
    if key == "build":
        return message.startswith(BUILD_REFUSAL)
    if key == "volumes":
        return message.startswith("bind mount source")
    if key == "file":  # a secret's file: the corpus bundles none of its files
        return path.startswith("secrets.") and "was not provided with the template" in message
    rules = [r for k, r in RULES.items() if k.endswith("." + key) or k == key]
    return any(r.action is Action.REFUSE and f"is not supported: {r.reason}" in message for r in rules)


def test_the_table_covers_the_whole_corpus() -> None:
    dirs = {p.name for p in CORPUS.iterdir() if p.is_dir()}
    assert dirs == set(EXPECTED)
    assert len(dirs) == 39


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file(name: str) -> None:
    directory = CORPUS / name
    template = next(p for p in directory.iterdir() if p.name in ("compose.yaml", "compose.yml"))
    env_file = directory / ".env"
    files = {".env": env_file.read_text()} if env_file.exists() else {}
    expected = EXPECTED[name]
    try:
        parsed = parse_template(template.read_text(), env={}, files=files, app_name=name.lower())
    except TemplateError as exc:
        keys = {_key(e.path) for e in exc.errors}
        assert keys == expected, exc
        for error in exc.errors:
            assert _documented(_key(error.path), error.path, error.message), error
        return
    assert list(parsed.services) == expected
    assert {use.policy for use in parsed.privileged} == POLICY.get(name, set())
    for spec in parsed.services.values():
        assert spec.image
