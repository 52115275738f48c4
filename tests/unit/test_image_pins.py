"""Which images are pinned, and to what (controlplane.api.image_pins), with the registry answered
by a table: deploy, update, rollback's recorded digests, unpinned local images, refusals."""

from __future__ import annotations

import datetime as dt

import pytest

from ccs.image_refs import ImageRef
from ccs.v1 import resources_pb2 as pb
from controlplane.api.image_pins import pin_images
from controlplane.compose import TemplateError, parse_template
from controlplane.grpc_errors import InvalidArgument
from controlplane.registry.logins import Login
from controlplane.registry.resolve import ResolveError

D1, D2 = "sha256:" + "11" * 32, "sha256:" + "22" * 32
TEMPLATE = """
services:
  web:
    image: 127.0.0.1:5000/shop/web:2
  worker:
    image: 127.0.0.1:5000/shop/web:2
  db:
    image: local/busybox:1
  fixed:
    image: registry.example.com/x@sha256:3333333333333333333333333333333333333333333333333333333333333333
"""
LOGIN = Login("127.0.0.1:5000", "ci", "pw", "", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))


class Registry:
    def __init__(self, tags: dict[str, str]) -> None:
        self.tags = tags
        self.asked: list[tuple[str, str | None]] = []

    async def digest(self, ref: ImageRef, login: Login | None) -> str:
        self.asked.append((f"{ref.name}:{ref.tag}", login.host if login else None))
        if f"{ref.name}:{ref.tag}" not in self.tags:
            raise ResolveError(f"{ref.name}:{ref.tag} is not in registry {ref.host}")
        return self.tags[f"{ref.name}:{ref.tag}"]


async def login_of(host: str) -> Login | None:
    return LOGIN if host == LOGIN.host else None


def parse(template: str = TEMPLATE):  # type: ignore[no-untyped-def]
    return parse_template(template, env={}, files={}, app_name="shop")


async def test_registry_images_are_pinned_local_ones_are_not() -> None:
    parsed, spec, reg = parse(), pb.ApplicationSpec(), Registry({"127.0.0.1:5000/shop/web:2": D1})
    await pin_images(parsed, spec, login_of, reg.digest)
    want = f"127.0.0.1:5000/shop/web:2@{D1}"
    assert parsed.services["web"].image == parsed.services["worker"].image == want
    assert parsed.services["db"].image == "local/busybox:1"  # unpinned: no registry to ask
    assert dict(spec.pinned_images) == {"web": want, "worker": want,
                                        "fixed": parsed.services["fixed"].image}
    assert reg.asked == [("127.0.0.1:5000/shop/web:2", "127.0.0.1:5000")]  # once for both, with the login


async def test_update_resolves_again_a_moved_tag_is_a_change() -> None:
    spec = pb.ApplicationSpec()
    await pin_images(parse(), spec, login_of, Registry({"127.0.0.1:5000/shop/web:2": D1}).digest)
    before = pb.ApplicationSpec()
    before.CopyFrom(spec)
    await pin_images(parse(), spec, login_of, Registry({"127.0.0.1:5000/shop/web:2": D2}).digest)
    assert spec != before and spec.pinned_images["web"].endswith(D2)


async def test_rollback_keeps_the_recorded_digests() -> None:
    spec = pb.ApplicationSpec()
    await pin_images(parse(), spec, login_of, Registry({"127.0.0.1:5000/shop/web:2": D1}).digest)
    moved = Registry({"127.0.0.1:5000/shop/web:2": D2})
    parsed = parse()
    await pin_images(parsed, spec, login_of, moved.digest, reuse=True)
    assert parsed.services["web"].image.endswith(D1) and moved.asked == []


async def test_unresolvable_tag_names_the_services_image_field() -> None:
    spec = pb.ApplicationSpec()
    with pytest.raises(InvalidArgument) as exc:
        await pin_images(parse(), spec, login_of, Registry({}).digest)
    assert str(exc.value).startswith("services.web.image: 127.0.0.1:5000/shop/web:2: cannot resolve its tag")
    assert not spec.pinned_images


async def test_x_ccs_registry_names_the_login_and_must_exist() -> None:
    one_registry = TEMPLATE.split("  fixed:")[0]  # every registry image on 127.0.0.1:5000
    template = one_registry + "x-ccs:\n  registry: 127.0.0.1:5000\n"
    parsed, spec, reg = parse(template), pb.ApplicationSpec(), Registry({"127.0.0.1:5000/shop/web:2": D1})
    await pin_images(parsed, spec, login_of, reg.digest)
    assert spec.registry == "127.0.0.1:5000"
    assert {s.registry_login for s in parsed.services.values()} == {"127.0.0.1:5000"}
    with pytest.raises(InvalidArgument) as exc:
        await pin_images(parse(one_registry + "x-ccs:\n  registry: other.example.com\n"), pb.ApplicationSpec(),
                         login_of, reg.digest)
    assert str(exc.value).startswith("x-ccs.registry: the cluster has no registry login for 'other.example.com'")


async def test_x_ccs_registry_refuses_an_image_of_another_registry() -> None:
    """A login's password must not reach another registry (where a deployer could read it)."""
    async def any_login(host: str) -> Login | None:
        return Login(host, "ci", "pw", "", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))

    template = TEMPLATE + "x-ccs:\n  registry: registry.corp\n"
    digests = Registry({"127.0.0.1:5000/shop/web:2": D1}).digest
    with pytest.raises(InvalidArgument) as exc:
        await pin_images(parse(template), pb.ApplicationSpec(), any_login, digests)
    assert str(exc.value).startswith("services.web.image: 127.0.0.1:5000/shop/web:2 names registry '127.0.0.1:5000', "
                                     "but x-ccs.registry is 'registry.corp'")


def test_x_ccs_registry_is_validated_by_the_parser() -> None:
    with pytest.raises(TemplateError, match=r"x-ccs\.registry"):
        parse(TEMPLATE + "x-ccs:\n  registry: https://r.example.com/x\n")
    with pytest.raises(TemplateError, match="x-ccs"):
        parse(TEMPLATE + "x-ccs:\n  unknown: 1\n")
