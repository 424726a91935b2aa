"""How llmdeploy talks to a registry: TLS or plain HTTP, and with which credentials.

Credentials are held only in memory: the password never appears in ``repr``, a message, a
log, a rendered file or an image. ``engines/registry_auth.py`` finds them (``--creds-env``
or the engines' own auth files); the engines hand them to the registry through their APIs
(the ``X-Registry-Auth`` header), never on a command line.
"""

from __future__ import annotations

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
    configuration.
    """

    tls_verify: bool = True
    credentials: RegistryCredentials | None = None


DEFAULT_ACCESS = RegistryAccess()
