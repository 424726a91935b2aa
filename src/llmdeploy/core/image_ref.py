"""Container image references, parsed once: ``[registry/]repository[:tag][@digest]``.

The grammar is the one the engines share (github.com/distribution/reference,
``reference.go`` / ``normalize.go``): the first path component names a registry when it
contains ``.`` or ``:`` or is ``localhost``; otherwise the reference is a Docker Hub name
(``docker.io``), which both engines resolve on their own. Repository path components are
lowercase ``[a-z0-9]`` runs joined by ``.``, ``_``, ``__`` or dashes; a tag is
``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``; a digest is ``ALGORITHM:HEX``.

``localhost/...`` is Podman's namespace for images that were built or imported locally
(``localhost/llmdeploy/llamacpp-cpu:0.1.0``): it has no registry to push to, so
:attr:`ImageRef.pushable` is False for it as for a Hub short name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")
# a host name or IPv4 address, or a bracketed IPv6 address, with an optional port
_REGISTRY_RE = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$"
)
LOCAL_NAMESPACE = "localhost"  # Podman's prefix for local builds and imports
DOCKER_HUB = "docker.io"


@dataclass(frozen=True)
class ImageRef:
    """One parsed reference. ``registry`` is None for a Docker Hub short name (``nginx``,
    ``library/python``); ``tag`` and ``digest`` are None when not written."""

    registry: str | None
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def name(self) -> str:
        """``registry/repository`` (the repository alone for a Hub short name)."""
        return f"{self.registry}/{self.repository}" if self.registry else self.repository

    @property
    def pushable(self) -> bool:
        """True when the reference names a registry to push to (not Hub-implicit, not
        Podman's ``localhost/`` namespace without a port)."""
        return self.registry is not None and self.registry != LOCAL_NAMESPACE

    @property
    def host(self) -> str:
        """The registry's host name without the port (``docker.io`` for a Hub short name)."""
        registry = self.registry or DOCKER_HUB
        if registry.startswith("["):
            return registry[: registry.index("]") + 1]
        return registry.rsplit(":", 1)[0] if ":" in registry else registry

    @property
    def port(self) -> int | None:
        """The registry's port when the reference gives one."""
        registry = self.registry or ""
        tail = registry[registry.index("]") + 1 :] if registry.startswith("[") else registry
        return int(tail.rsplit(":", 1)[1]) if ":" in tail else None

    def with_tag(self, tag: str) -> ImageRef:
        """The same repository under another tag (and no digest)."""
        return ImageRef(self.registry, self.repository, tag, None)


def parse_image_ref(text: str) -> ImageRef:
    """Parse ``text``; raise ValueError saying which part is wrong.

    ``ghcr.io/org/app:1.2`` -> registry ``ghcr.io``, repository ``org/app``, tag ``1.2``;
    ``127.0.0.1:5000/llm/edge@sha256:…`` -> registry ``127.0.0.1:5000``, the digest;
    ``python:3.11`` -> registry None (Docker Hub), repository ``python``, tag ``3.11``.
    """
    value = text.strip()
    if not value:
        raise ValueError("the image reference is empty")
    if any(ch.isspace() for ch in value):
        raise ValueError(f"{text!r}: an image reference has no spaces")
    rest, _, digest = value.partition("@")
    if digest and not _DIGEST_RE.match(digest):
        raise ValueError(f"{text!r}: the digest must be ALGORITHM:HEX (sha256:…)")
    registry: str | None = None
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == LOCAL_NAMESPACE):
        if not _REGISTRY_RE.match(first):
            raise ValueError(f"{text!r}: {first!r} is not a registry host[:port]")
        registry, rest = first, remainder
    tag: str | None = None
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise ValueError(
                f"{text!r}: the tag {tag!r} may hold letters, digits, '_', '.' and '-' "
                "(at most 128, not starting with '.' or '-')"
            )
    if not _REPOSITORY_RE.match(rest):
        raise ValueError(
            f"{text!r}: the repository {rest!r} must be lowercase letters and digits, "
            "joined by '.', '_', '-' or '/'"
        )
    return ImageRef(registry=registry, repository=rest, tag=tag, digest=digest or None)
