"""Where each engine's API is: pure functions of (environment, effective UID), nothing probed.

The engines (``podman_engine``, ``docker_engine``), engine selection and ``llmdeploy doctor``
all call these, so doctor reports exactly the addresses a command tries.

Podman: an address the user configured (``$LLMDEPLOY_PODMAN_SOCKET``, a path or ``unix://``
URL, else ``$CONTAINER_HOST``, any scheme Podman's remote client takes) is the only one: when
it does not answer, that is an error naming the variable, never a silent switch to the local
Podman. Otherwise the default sockets, in order: root's ``/run/podman/podman.sock``, then
``podman/podman.sock`` below the runtime dir (``$XDG_RUNTIME_DIR``; for a rootless user
without it, ``/run/user/UID``, where Podman itself puts it).

Docker: ``$DOCKER_HOST``, else ``unix:///var/run/docker.sock``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from llmdeploy.constants import (
    DOCKER_DEFAULT_HOST,
    ENV_CONTAINER_HOST,
    ENV_DOCKER_HOST,
    ENV_PODMAN_SOCKET,
    ENV_XDG_RUNTIME_DIR,
    PODMAN_ROOTFUL_SOCKET,
    PODMAN_USER_SOCKET,
    USER_RUNTIME_DIR,
)

UNIX_SCHEME = "unix://"


@dataclass(frozen=True)
class ApiAddress:
    """One engine API address.

    ``url``: ``unix:///path``, ``tcp://host:port`` or ``ssh://...``; ``variable``: the
    environment variable that named it, None for a default address.
    """

    url: str
    variable: str | None = None

    @property
    def socket_path(self) -> str | None:
        """The socket path of a ``unix://`` address; None for other schemes."""
        return unix_path(self.url)

    @property
    def configured(self) -> bool:
        return self.variable is not None

    @property
    def origin(self) -> str:
        """`` (from $VARIABLE)`` for a configured address, else empty (for messages)."""
        return f" (from ${self.variable})" if self.variable else ""


def unix_path(address: str) -> str | None:
    """The socket path of ``unix:///path`` or a bare absolute path; None for other schemes."""
    if address.startswith(UNIX_SCHEME):
        return address[len(UNIX_SCHEME) :]
    if address.startswith("/"):
        return address
    return None


def as_url(address: str) -> str:
    """A bare socket path as a ``unix://`` URL; a URL unchanged."""
    return address if "://" in address else f"{UNIX_SCHEME}{address}"


def configured_podman_address(env: Mapping[str, str]) -> ApiAddress | None:
    """The Podman API the user named: ``$LLMDEPLOY_PODMAN_SOCKET``, else ``$CONTAINER_HOST``."""
    override = env.get(ENV_PODMAN_SOCKET)
    if override:
        return ApiAddress(as_url(override), ENV_PODMAN_SOCKET)
    host = env.get(ENV_CONTAINER_HOST)
    if host:
        return ApiAddress(host, ENV_CONTAINER_HOST)
    return None


def default_podman_sockets(env: Mapping[str, str], euid: int) -> tuple[str, ...]:
    """Where a Podman API socket listens when nobody configured one, in the order tried."""
    paths = [PODMAN_ROOTFUL_SOCKET] if euid == 0 else []
    runtime_dir = env.get(ENV_XDG_RUNTIME_DIR) or (
        USER_RUNTIME_DIR.format(uid=euid) if euid != 0 else None
    )
    if runtime_dir:
        paths.append(f"{runtime_dir.rstrip('/')}/{PODMAN_USER_SOCKET}")
    return tuple(dict.fromkeys(paths))


def podman_addresses(env: Mapping[str, str], euid: int) -> tuple[ApiAddress, ...]:
    """The Podman API addresses llmdeploy tries, in order (never empty).

    A configured address alone (llmdeploy never falls back from it), else the default sockets;
    when none of those answers the engine starts a transient ``podman system service``.
    """
    configured = configured_podman_address(env)
    if configured is not None:
        return (configured,)
    return tuple(ApiAddress(as_url(path)) for path in default_podman_sockets(env, euid))


def docker_address(env: Mapping[str, str]) -> ApiAddress:
    """The Docker Engine API llmdeploy talks to: ``$DOCKER_HOST``, else the default socket."""
    host = env.get(ENV_DOCKER_HOST)
    return ApiAddress(host, ENV_DOCKER_HOST) if host else ApiAddress(DOCKER_DEFAULT_HOST)
