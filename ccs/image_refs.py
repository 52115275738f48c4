"""Image references: which registry an image comes from, its repository, tag and digest.

Pure (no I/O), shared by the control plane (digest pinning, registry logins), the agent (which
login a pull uses, which images may be collected) and the CLI (showing pinned images).

The grammar is Distribution's (``distribution/reference/regexp.go``, the one the Docker Engine
parses with), written out here as regular expressions. Why not a library: the Docker SDK's
``docker.utils.parse_repository_tag`` and ``docker.auth.split_repo_name`` split strings but do not
validate them, and importing ``docker`` would load ``requests`` into the control plane and the
SDK; the PyPI ports of the reference package are unmaintained. The grammar is small and stable
(unchanged since 2017 but for IPv6 hosts), and ``tests/unit/test_image_refs.py`` checks it
against the Engine's own examples.

The registry rule is the Engine's (``splitDockerDomain``): the part before the first ``/`` is a
registry host when it holds a ``.`` or a ``:`` or is ``localhost``; otherwise the image is Docker
Hub's (``docker.io``), e.g. ``local/busybox:1`` or ``nginx``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DOCKER_HUB", "ImageRef", "host_problem", "is_loopback", "is_path_component", "is_tag", "parse_image"]

DOCKER_HUB = "docker.io"

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_HOST_RE = re.compile(rf"^{_HOST}$")
_PATH_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_COMPONENT_RE = re.compile(rf"^{_PATH_COMPONENT}$")
_TAG_RE = re.compile(rf"^{_TAG}$")
_DIGEST_RE = re.compile(rf"^{_DIGEST}$")
MAX_NAME = 255  # Distribution's NameTotalLengthMax


@dataclass(frozen=True)
class ImageRef:
    """``host/path:tag@digest``; ``host`` is "" for a Docker Hub image, ``tag`` "" when none is
    written (the Engine then means ``latest``), ``digest`` "" when none is."""

    host: str
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def registry(self) -> str:
        """The registry it is pulled from: its host, or ``docker.io``."""
        return self.host or DOCKER_HUB

    @property
    def names_registry(self) -> bool:
        """Whether the image names a registry host (so the control plane can resolve it)."""
        return bool(self.host)

    @property
    def name(self) -> str:
        return f"{self.host}/{self.path}" if self.host else self.path

    @property
    def reference(self) -> str:
        """What the manifest is asked for: the digest if there is one, else the tag."""
        return self.digest or self.tag or "latest"

    def pinned(self, digest: str) -> str:
        """``name:tag@digest``: the tag kept for people, the digest for the Engine."""
        return f"{self.name}:{self.tag or 'latest'}@{digest}"

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


def parse_image(image: str) -> ImageRef:
    """Parse ``image``; ValueError saying what is wrong (the caller names the field)."""
    if not image or image != image.strip():
        raise ValueError("an image reference must be non-empty, without spaces around it")
    rest, _, digest = image.partition("@")
    if digest and not _DIGEST_RE.match(digest):
        raise ValueError(f"{digest[:80]!r} is not a digest (algorithm:hex, e.g. sha256:...)")
    host = ""
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        host, rest = first, remainder
        if not _HOST_RE.match(host):
            raise ValueError(f"{host[:80]!r} is not a registry host (host[:port])")
    path, tag = rest, ""
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        path, tag = rest[:colon], rest[colon + 1:]
        if not _TAG_RE.match(tag):
            raise ValueError(f"{tag[:80]!r} is not a tag (letters, digits, _ . -; at most 128)")
    if not _PATH_RE.match(path):
        raise ValueError(f"{path[:80]!r} is not a repository name (lowercase letters, digits, separators . _ -)")
    if len(host) + 1 + len(path) > MAX_NAME:
        raise ValueError(f"the repository name is longer than {MAX_NAME} characters")
    return ImageRef(host, path, tag, digest)


def host_problem(host: str) -> str | None:
    """None if ``host`` is a registry host (``name[:port]``, ``[v6]:port``); else why not."""
    if not host:
        return "is empty"
    if "/" in host or "://" in host:
        return f"{host[:80]!r} is not a registry host: give host[:port], without a scheme or a path"
    if not _HOST_RE.fullmatch(host) or len(host) > MAX_NAME:  # fullmatch: "$" would let a final newline by
        return f"{host[:80]!r} is not a registry host (host[:port])"
    return None


def is_tag(text: str) -> bool:
    """Whether ``text`` may be an image's tag (``ccs app deploy --build --version``)."""
    return bool(_TAG_RE.fullmatch(text))


def is_path_component(text: str) -> bool:
    """Whether ``text`` may be one ``/``-separated part of a repository name."""
    return bool(_COMPONENT_RE.fullmatch(text))


def is_loopback(host: str) -> bool:
    """A registry on the machine itself (``localhost``, 127.0.0.0/8, ``[::1]``): the Engine
    talks plain HTTP to these, and so does the control plane's digest lookup."""
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    return name == "localhost" or name.startswith("127.") or name == "[::1]"
