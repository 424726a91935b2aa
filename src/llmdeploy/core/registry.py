"""How llmdeploy talks to a registry: TLS or plain HTTP, and with which credentials.

Credentials are held only in memory: the password never appears in ``repr``, a message, a
log, a rendered file or an image. ``engines/registry_auth.py`` finds them (``--creds-env``
or the engines' own auth files); the engines hand them to the registry through their APIs
(the ``X-Registry-Auth`` header), never on a command line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RegistryCredentials:
    """A user name and a password or token for one registry; ``source`` says where they came
    from (``$REGISTRY_CREDS``, ``/run/containers/0/auth.json``) for messages."""

    username: str
    password: str = field(repr=False)
    source: str = ""

    def __str__(self) -> str:  # what a message may show: never the secret
        return f"{self.username} (from {self.source})" if self.source else self.username

    def auth_config(self) -> dict[str, str]:
        """The engines' API form (docker-py / podman-py ``auth_config``)."""
        return {"username": self.username, "password": self.password}


@dataclass(frozen=True)
class RegistryAccess:
    """How to reach registries for a push or a pull.

    ``tls_verify``: False allows plain HTTP and unverified certificates (``--tls-verify=false``,
    as ``podman push --tls-verify=false``); ``credentials``: None lets the engine use its own
    configuration; ``saved_login``: where to look up the engine's saved login when a pull
    needs it (:meth:`for_pull`), so an ``up`` whose image is already local never reads the
    auth files (nor imports docker-py's auth module, ~60-75 ms).
    """

    tls_verify: bool = True
    credentials: RegistryCredentials | None = None
    saved_login: Callable[[], RegistryCredentials | None] | None = field(
        default=None, compare=False, repr=False
    )

    def for_pull(self) -> RegistryAccess:
        """This access with the saved login looked up now (when no credentials were given)."""
        if self.credentials is not None or self.saved_login is None:
            return self
        return RegistryAccess(tls_verify=self.tls_verify, credentials=self.saved_login())


DEFAULT_ACCESS = RegistryAccess()
