"""Image reference parsing (ccs.image_refs): the Engine's registry rule and Distribution's grammar."""

from __future__ import annotations

import pytest

from ccs.image_refs import ImageRef, host_problem, is_loopback, parse_image

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("image", "want"), [
    ("local/busybox:1", ImageRef("", "local/busybox", "1")),
    ("nginx", ImageRef("", "nginx")),
    ("library/nginx:1.25-alpine", ImageRef("", "library/nginx", "1.25-alpine")),
    ("127.0.0.1:5000/shop/web:2", ImageRef("127.0.0.1:5000", "shop/web", "2")),
    ("localhost/web", ImageRef("localhost", "web")),
    ("localhost:5000/web:v1", ImageRef("localhost:5000", "web", "v1")),
    ("registry.example.com/a/b/c:1", ImageRef("registry.example.com", "a/b/c", "1")),
    (f"registry.example.com/web@{D}", ImageRef("registry.example.com", "web", "", D)),
    (f"registry.example.com/web:2@{D}", ImageRef("registry.example.com", "web", "2", D)),
    ("[::1]:5000/web:1", ImageRef("[::1]:5000", "web", "1")),
    ("my_user/app__x:t", ImageRef("", "my_user/app__x", "t")),
])
def test_parse_splits_host_path_tag_digest(image: str, want: ImageRef) -> None:
    got = parse_image(image)
    assert got == want
    assert str(got) == image


def test_registry_rule_is_the_engines() -> None:
    assert not parse_image("local/busybox:1").names_registry
    assert parse_image("local/busybox:1").registry == "docker.io"
    assert parse_image("127.0.0.1:5000/x").names_registry
    assert parse_image("localhost/x").names_registry
    assert parse_image("a.b/x").names_registry


def test_pinned_keeps_the_tag_for_people() -> None:
    assert parse_image("r.example.com/web").pinned(D) == f"r.example.com/web:latest@{D}"
    assert parse_image("r.example.com/web:2").pinned(D) == f"r.example.com/web:2@{D}"
    assert parse_image("r.example.com/web:2").reference == "2"
    assert parse_image(f"r.example.com/web:2@{D}").reference == D


@pytest.mark.parametrize(("image", "why"), [
    ("", "non-empty"),
    (" web", "non-empty"),
    ("Web:1", "not a repository name"),
    ("r.example.com/web:", "not a tag"),
    ("r.example.com/web:a b", "not a tag"),
    ("web@sha256:12", "not a digest"),
    ("bad_host.com:x/web", "not a registry host"),
    ("r.example.com//web", "not a repository name"),
])
def test_bad_references_say_why(image: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_image(image)


def test_hosts() -> None:
    assert host_problem("127.0.0.1:5000") is None
    assert host_problem("registry.example.com") is None
    assert host_problem("[::1]:5000") is None
    assert "without a scheme" in (host_problem("https://r.example.com") or "")
    assert "without a scheme" in (host_problem("r.example.com/x") or "")
    assert host_problem("") == "is empty"
    assert "not a registry host" in (host_problem("a b") or "")


@pytest.mark.parametrize(("host", "loopback"), [
    ("localhost", True), ("localhost:5000", True), ("127.0.0.1:5000", True), ("127.9.9.9", True),
    ("[::1]:5000", True), ("registry.example.com", False), ("10.0.0.1:5000", False), ("localhost.example.com", False),
])
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
