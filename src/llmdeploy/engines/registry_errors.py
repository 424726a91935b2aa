"""What a failed push or pull means, from the engine's own message: auth, reachability, other.

Both engines report registry failures as text (containers/image for Podman, the distribution
client for Docker). The phrases matched here are the ones those libraries write, seen from
Podman 4.3 and Docker 20.10 against Debian's docker-registry 2.8 (tests/unit/
test_registry_errors.py keeps the real messages):

- credentials: ``authentication required``, ``unauthorized``, ``no basic auth credentials``,
  ``requested access to the resource is denied``, ``invalid username/password``;
- no connection: ``connection refused``, ``no such host``, ``i/o timeout``, ``network is
  unreachable``, ``no route to host``, ``server gave HTTP response to HTTPS client`` (a
  plain-HTTP registry reached with TLS on), ``x509:`` / ``tls:`` (a certificate problem).
"""

from __future__ import annotations

from llmdeploy.errors import (
    ImageError,
    RegistryAuthError,
    RegistryError,
    RegistryUnreachableError,
)

_AUTH = (
    "authentication required",
    "unauthorized",
    "no basic auth credentials",
    "requested access to the resource is denied",
    "access to the resource is denied",
    "invalid username/password",
    "incorrect username or password",
)
_PLAIN_HTTP = ("server gave http response to https client",)
_TLS = ("x509:", "tls:", "certificate signed by unknown authority")
_UNREACHABLE = (
    "connection refused",
    "no such host",
    "i/o timeout",
    "network is unreachable",
    "no route to host",
    "connection reset by peer",
    "context deadline exceeded",
    "dial tcp",
)


def registry_error(
    what: str, text: str, *, tls_verify: bool
) -> ImageError | RegistryError:
    """The error for ``what`` (``could not push X with podman``) failing with the engine's
    ``text``: RegistryAuthError, RegistryUnreachableError, or a plain ImageError."""
    lowered = text.lower()
    message = f"{what}: {text.strip()}"
    if any(phrase in lowered for phrase in _PLAIN_HTTP):
        return RegistryUnreachableError(
            f"{what}: the registry answers plain HTTP, and TLS verification is on",
            hint="pass --tls-verify=false for a registry you trust on plain HTTP "
            "(Docker: list it under insecure-registries in /etc/docker/daemon.json)",
        )
    if any(phrase in lowered for phrase in _TLS):
        hint = (
            "the registry's certificate is not trusted: add its CA to the engine "
            "(/etc/containers/certs.d/HOST/ca.crt, /etc/docker/certs.d/HOST/ca.crt)"
        )
        if tls_verify:
            hint += ", or pass --tls-verify=false for a registry you trust"
        return RegistryUnreachableError(message, hint=hint)
    if any(phrase in lowered for phrase in _AUTH):
        return RegistryAuthError(
            message,
            hint="log in (podman login / docker login) or pass --creds-env NAME with "
            "$NAME=USER:TOKEN; check the user's rights on that repository",
        )
    if any(phrase in lowered for phrase in _UNREACHABLE):
        return RegistryUnreachableError(
            message, hint="check that the registry runs and that host and port are right"
        )
    return ImageError(message, hint="check that the registry is reachable")
