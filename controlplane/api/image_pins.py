"""Registry images pinned to digests at deploy, update and rollback (see controlplane.registry).

Every service image that names a registry host (``127.0.0.1:5000/shop/web:2``) is resolved to
the digest its tag names now, and the service runs ``name:tag@digest``: the Engine pulls and
runs the digest (the tag is kept for people), so every node runs the same bytes, and a replica
added after the tag moved runs what the others run. The pins are part of the application's
spec (``ApplicationSpec.pinned_images``), hence of each revision's snapshot:

- a deploy and an update resolve every tag again, so a tag that moved is a change of the spec
  (a new revision and a release), even with an unchanged template — this is also what
  ``pull_policy: always`` / ``x-ccs.always_pull`` ask (the pin is what their pull fetches);
- a rollback (``reuse=True``) keeps the digests its revision recorded, resolving only an image
  that revision did not pin (one from before pinning existed);
- an image written with a digest (``name@sha256:...``) is already pinned and kept as written;
- an image without a registry (``local/busybox:1``, Docker Hub's ``nginx``) keeps its tag:
  shown unpinned (the control plane has no registry to ask; Docker Hub is not reached).

A tag that cannot be resolved refuses the deploy, naming ``services.<name>.image`` and why,
before anything is written. The template's top-level ``x-ccs.registry`` names the login its
images use; it must be one the cluster has (``x-ccs.registry`` is named otherwise).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ccs.image_refs import ImageRef, parse_image
from ccs.v1 import resources_pb2 as pb
from controlplane.compose import ParsedTemplate
from controlplane.grpc_errors import InvalidArgument
from controlplane.registry.logins import Login, Logins
from controlplane.registry.resolve import ResolveError, Resolver

#: (image, login or None) -> its digest; ResolveError when there is none to be had.
DigestOf = Callable[[ImageRef, Login | None], Awaitable[str]]
#: host -> the cluster's login for it, or None.
LoginOf = Callable[[str], Awaitable[Login | None]]
#: Registry lookups of one deploy at once.
PARALLEL_LOOKUPS = 8


async def pin_images(parsed: ParsedTemplate, spec: pb.ApplicationSpec, login_of: LoginOf, digest_of: DigestOf,
                     *, reuse: bool = False) -> None:
    """Set ``spec.pinned_images`` and ``spec.registry``, and each parsed service's image and
    registry login, in place. Raises InvalidArgument naming the field; changes nothing then."""
    override = parsed.registry
    if override and await login_of(override) is None:
        raise InvalidArgument("x-ccs.registry", f"the cluster has no registry login for {override!r} "
                              f"(ccs registry login -c CLUSTER {override} -u USER --password-stdin)")
    recorded = dict(spec.pinned_images) if reuse else {}
    pins: dict[str, str] = {}
    wanted: dict[str, tuple[str, ImageRef]] = {}  # service -> (image, ref) to resolve now
    for name, svc in parsed.services.items():
        try:
            ref = parse_image(svc.image)
        except ValueError as exc:
            raise InvalidArgument(f"services.{name}.image", str(exc)) from None
        if not ref.names_registry:
            continue
        if override and ref.host != override:
            # A login's password goes to its own registry only (controlplane.dispatcher.pull_auth).
            raise InvalidArgument(f"services.{name}.image", f"{svc.image} names registry {ref.host!r}, but x-ccs."
                                  f"registry is {override!r}: a registry login is only used with its own registry")
        old = recorded.get(name, "")
        if ref.digest:
            pins[name] = svc.image
        elif old.rpartition("@")[0] == ref.pinned("x").rpartition("@")[0]:
            pins[name] = old
        else:
            wanted[name] = (svc.image, ref)
    # Each distinct image once, all at once (bounded): a template's lookups take the time of the
    # slowest, not their sum, within the call's deadline.
    gate = asyncio.Semaphore(PARALLEL_LOOKUPS)

    async def lookup(ref: ImageRef) -> str | ResolveError:
        async with gate:
            try:
                return ref.pinned(await digest_of(ref, await login_of(ref.host)))
            except ResolveError as exc:
                return exc

    images = sorted({image: ref for image, ref in wanted.values()}.items())
    results = dict(zip((i for i, _ in images), await asyncio.gather(*(lookup(r) for _, r in images)), strict=True))
    for name, (image, _) in wanted.items():  # the first failing service in template order is named
        got = results[image]
        if isinstance(got, ResolveError):
            raise InvalidArgument(f"services.{name}.image", f"{image}: cannot resolve its tag to a digest: {got}")
        pins[name] = got
    for name, svc in parsed.services.items():
        svc.image = pins.get(name, svc.image)
        svc.registry_login = override
    spec.registry = override
    spec.pinned_images.clear()
    spec.pinned_images.update(pins)


class ImagePinner:
    """The servicers' handle: the cluster's logins (None: a server without a secrets store,
    whose images resolve without credentials) and the resolver."""

    def __init__(self, logins: Logins | None, resolver: Resolver | None = None) -> None:
        self.logins, self.resolver = logins, resolver or Resolver()

    async def pin(self, cluster: str, parsed: ParsedTemplate, spec: pb.ApplicationSpec, *, reuse: bool = False) -> None:
        async def login_of(host: str) -> Login | None:
            return await self.logins.get(cluster, host) if self.logins is not None else None

        await pin_images(parsed, spec, login_of, self.resolver.digest, reuse=reuse)
