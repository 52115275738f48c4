"""Every awesome-compose example either parses or is refused for a documented reason.

The expected outcome of each file is in a table so that a regression shows as a diff.
"""

from __future__ import annotations

import pathlib

import pytest

from controlplane.compose import RULES, Action, TemplateError, parse_template
from controlplane.compose.template import BUILD_REFUSAL

CORPUS = pathlib.Path(__file__).parents[1] / "data" / "compose-corpus" / "awesome-compose"

# directory -> services in start order (parsed) or the set of keys it is refused for.
EXPECTED: dict[str, list[str] | set[str]] = {
    "angular": {"build"},
    "apache-php": {"build"},
    "aspnet-mssql": {"build"},
    "django": {"build"},
    "elasticsearch-logstash-kibana": ["elasticsearch", "logstash", "kibana"],
    "fastapi": {"build"},
    "flask": {"build"},
    "flask-redis": {"build"},
    "gitea-postgres": ["gitea", "db"],
    "minecraft": ["minecraft"],
    "nextcloud-postgres": ["nc", "db"],
    "nextcloud-redis-mariadb": ["nc", "redis", "db"],
    "nginx-aspnet-mysql": {"build", "secrets"},
    "nginx-flask-mongo": {"build"},
    "nginx-flask-mysql": {"build", "secrets"},
    "nginx-golang": {"build"},
    "nginx-golang-mysql": {"build", "secrets"},
    "nginx-golang-postgres": {"build", "secrets"},
    "nginx-nodejs-redis": {"build"},
    "nginx-wsgi-flask": {"build"},
    "pihole-cloudflared-DoH": {"cap_add", "ipv4_address", "ipam"},
    "plex": {"network_mode"},
    "portainer": ["portainer"],
    "postgresql-pgadmin": ["postgres", "pgadmin"],
    "prometheus-grafana": ["prometheus", "grafana"],
    "react-express-mongodb": {"build"},
    "react-express-mysql": {"build", "secrets"},
    "react-java-mysql": {"build", "secrets"},
    "react-nginx": {"build"},
    "react-rust-postgres": {"build"},
    "sparkjava": {"build"},
    "sparkjava-mysql": {"build", "secrets"},
    "spring-postgres": {"build", "secrets"},
    "traefik-golang": {"build"},
    "vuejs": {"build"},
    "wasmedge-kafka-mysql": {"runtime"},
    "wasmedge-mysql-nginx": {"runtime"},
    "wireguard": {"cap_add", "sysctls"},
    "wordpress-mysql": ["db", "wordpress"],
}


def _documented(key: str, path: str, message: str) -> bool:
    if key == "build":
        return message.startswith(BUILD_REFUSAL)
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
        keys = {e.path.split(".")[-1] for e in exc.errors}
        assert keys == expected, exc
        for error in exc.errors:
            assert _documented(error.path.split(".")[-1], error.path, error.message), error
        return
    assert list(parsed.services) == expected
    for spec in parsed.services.values():
        assert spec.image
