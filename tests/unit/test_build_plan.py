"""``--build``'s pure rules (cli.build_plan): build options, registry and tag naming, version
choice, and the template the server receives. Tables of cases, no engine."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from cli.build_plan import (
    BuildError,
    BuildSpec,
    build_specs,
    check_version,
    content_version,
    git_version,
    image_ref,
    push_registry,
    registry_of,
    rewrite_template,
)

BASE = Path("/src/proj")


def specs(text: str, environ: dict[str, str] | None = None) -> dict[str, BuildSpec]:
    return build_specs(YAML(typ="safe", pure=True).load(text), BASE, environ or {})


def test_the_string_form_is_the_context_relative_to_the_template() -> None:
    [(name, spec)] = specs("services:\n  web: {build: ./app}\n").items()
    assert name == "web" and spec.context == BASE / "app"
    assert spec.options() == {"path": str(BASE / "app"), "rm": True, "decode": True}


def test_every_accepted_key_maps_to_its_engine_option() -> None:
    spec = specs("""
services:
  web:
    image: reg.example.com/team/web
    build:
      context: /abs/ctx
      dockerfile: Dockerfile.prod
      args: [A=1, "B=two=2", FROM_ENV, UNSET]
      target: final
      labels: {team: a, empty: null}
      cache_from: [reg.example.com/team/web:cache]
      no_cache: true
      pull: true
""", {"FROM_ENV": "e"})["web"]
    assert spec.options() == {
        "path": "/abs/ctx", "rm": True, "decode": True, "dockerfile": "Dockerfile.prod",
        "buildargs": {"A": "1", "B": "two=2", "FROM_ENV": "e"}, "target": "final",
        "labels": {"team": "a", "empty": ""}, "cache_from": ["reg.example.com/team/web:cache"],
        "nocache": True, "pull": True,
    }
    assert spec.image == "reg.example.com/team/web"


@pytest.mark.parametrize(("build", "message"), [
    ("{context: ., ssh: [default]}", "services.web.build.ssh: is not supported with --build"),
    ("{context: ., secrets: [x]}", "services.web.build.secrets: is not supported with --build"),
    ("{context: ., platforms: [linux/arm64]}", "services.web.build.platforms: is not supported"),
    ("{context: ., tags: [a:b]}", "services.web.build.tags: is not supported"),
    ("{context: '${DIR}'}", "services.web.build.context: '${DIR}': variables are not supported"),
    ("{context: ., args: {A: '$X'}}", "services.web.build.args.A: '$X': variables are not supported"),
    ("{context: 'https://github.com/x/y.git'}",
     "services.web.build.context: 'https://github.com/x/y.git': only a local directory can be built"),
    ("{context: ., cache_from: x}", "services.web.build.cache_from: must be a list"),
    ("{context: ., no_cache: 'yes'}", "services.web.build.no_cache: must be true or false"),
    ("{context: ., args: 3}", "services.web.build.args: must be a mapping or a list of K=V"),
    ("[a]", "services.web.build: must be a path or a mapping"),
])
def test_what_the_cli_cannot_honour_is_refused_naming_the_field(build: str, message: str) -> None:
    with pytest.raises(BuildError, match="^" + re.escape(message)):
        specs(f"services:\n  web:\n    build: {build}\n")


def test_services_without_build_are_not_built() -> None:
    assert list(specs("services:\n  a: {image: x}\n  b: {build: b}\n  c: {build: c}\n")) == ["b", "c"]


@pytest.mark.parametrize(("image", "registry"), [
    ("reg.example.com/team/web:1", "reg.example.com"),
    ("127.0.0.1:5000/web", "127.0.0.1:5000"),
    ("localhost/web", "localhost"),
    ("team/web", None),
    ("web", None),
    ("docker.io/library/web", "docker.io"),
    ("[::1]:5000/web:1", "[::1]:5000"),
    ("[fe80::1]/web", "[fe80::1]"),
])
def test_registry_of_reads_the_first_component_as_docker_does(image: str, registry: str | None) -> None:
    assert registry_of(image) == registry


def test_push_to_wins_then_the_image_registry_else_a_refusal_naming_the_flag() -> None:
    named = BuildSpec("web", BASE, image="reg.example.com:5000/team/web:1")
    bare = BuildSpec("web", BASE, image="team/web")
    assert push_registry(named, "127.0.0.1:5000/") == "127.0.0.1:5000"
    assert push_registry(named, None) == "reg.example.com:5000"
    with pytest.raises(BuildError, match=r"^services\.web\.build: no registry to push to: pass --push-to"):
        push_registry(bare, None)
    with pytest.raises(BuildError, match="^" + re.escape("--push-to: 'http://x' is not a registry")):
        push_registry(bare, "http://x")


def test_references_are_read_by_the_one_parser_of_ccs_image_refs() -> None:
    """--push-to and the service's image: are checked as the server and the Engine read them
    (the CLI's own patterns had drifted: a host label may not start or end with '-', a
    repository is lowercase)."""
    bare = BuildSpec("web", BASE, image="team/web")
    assert push_registry(bare, "[::1]:5000") == "[::1]:5000"
    assert push_registry(bare, "reg.example.com/team") == "reg.example.com/team"
    for bad in ("-bad.example.com", "bad-.example.com:5000", "reg.example.com/Team"):
        with pytest.raises(BuildError, match="^" + re.escape(f"--push-to: {bad!r} is not a registry")):
            push_registry(bare, bad)
    with pytest.raises(BuildError, match="^" + re.escape("services.web.image: 'Team/Web' is not a repository name")):
        push_registry(BuildSpec("web", BASE, image="reg.example.com/Team/Web:1"), None)


def test_the_image_name_is_registry_app_service_version() -> None:
    assert image_ref("127.0.0.1:5000", "shop", "web", "1a2b3c4") == "127.0.0.1:5000/shop/web:1a2b3c4"
    with pytest.raises(BuildError, match="^" + re.escape("--version: 'v 1' is not an image tag")):
        image_ref("r", "shop", "web", "v 1")
    with pytest.raises(BuildError, match="^" + re.escape("application name: 'Shop' cannot be part of an image name")):
        image_ref("r", "Shop", "web", "1")


@pytest.mark.parametrize(("version", "ok"), [("1.2.3", True), ("v1_rc-2", True), (".x", False),
                                             ("-x", False), ("a" * 128, True), ("a" * 129, False), ("a/b", False)])
def test_a_version_must_be_a_tag(version: str, ok: bool) -> None:
    if ok:
        assert check_version(version) == version
    else:
        with pytest.raises(BuildError):
            check_version(version)


def test_version_choice_git_clean_dirty_and_content_hash() -> None:
    digest = "0123456789abcdef" * 4
    assert git_version("1a2b3c4", False, "") == "1a2b3c4"
    assert git_version("1a2b3c4", True, digest) == "1a2b3c4-dirty-0123456789ab"
    assert content_version(digest) == "0123456789ab"


TEMPLATE = """\
# the shop
services:
  web:
    build:
      context: app   # the sources
      target: final
    environment: {DEBUG: no, MODE: 'on'}
    ports: ["8080:80"]
  worker:
    image: reg.example.com/shop/worker:old
    build: worker
  db:
    image: local/busybox:1
"""


def test_the_template_sent_has_the_pushed_images_in_place_of_build() -> None:
    refs = {"web": "r:5000/shop/web:1@sha256:" + "a" * 64, "worker": "r:5000/shop/worker:1@sha256:" + "b" * 64}
    out = rewrite_template(TEMPLATE, refs)
    doc: Any = YAML(typ="safe", pure=True).load(out)
    assert doc["services"]["web"] == {"image": refs["web"], "environment": {"DEBUG": "no", "MODE": "on"},
                                      "ports": ["8080:80"]}
    assert doc["services"]["worker"] == {"image": refs["worker"]}
    assert doc["services"]["db"] == {"image": "local/busybox:1"}
    assert "# the shop" in out and "DEBUG: no" in out  # comments and YAML 1.2 scalars kept as written
    assert next(iter(doc["services"]["web"])) == "image"  # where build: was


def test_a_build_from_a_merge_key_is_refused_rather_than_deployed_differently() -> None:
    text = "x-b: &b {build: app}\nservices:\n  web:\n    <<: *b\n    command: [x]\n"
    with pytest.raises(BuildError, match="^" + re.escape("template: the built images could not be written")):
        rewrite_template(text, {"web": "r/a/web:1@sha256:" + "c" * 64})
