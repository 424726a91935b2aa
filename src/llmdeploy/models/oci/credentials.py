"""Registry credentials: from a named environment variable, else the engines' auth files.

Order (the first that has an entry for the registry wins):

1. ``--creds-env NAME`` / the profile's ``model.creds_env``: the variable holds ``user:token``.
   Unset, empty or without a ``:`` is a RegistryAuthError naming the variable, never its value.
2. The auth files Podman and Docker read, in the order containers-auth.json(5) gives
   (containers/image ``pkg/docker/config``): ``$REGISTRY_AUTH_FILE``,
   ``$XDG_RUNTIME_DIR/containers/auth.json``, ``$XDG_CONFIG_HOME/containers/auth.json``
   (``~/.config/containers/auth.json``), then Docker's ``$DOCKER_CONFIG/config.json``
   (``~/.docker/config.json``). In each, ``auths`` is looked up by the most specific key
   first (``host/namespace/repo``, ``host/namespace``, ``host``; a key written as
   ``https://host`` or ``host/v1/`` counts as ``host``), and ``auth`` is base64 of
   ``user:password``. ``credHelpers`` / ``credsStore`` entries run
   ``docker-credential-NAME get`` (the docker-credential-helpers protocol: the host on stdin,
   JSON ``{"Username", "Secret"}`` on stdout).
3. Nothing: anonymous access.

The password is held only in :class:`Credentials` (left out of its ``repr``) and handed to the
registry client; it is never printed, logged or written anywhere.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmdeploy.constants import ENV_HOME, ENV_XDG_CONFIG_HOME, ENV_XDG_RUNTIME_DIR
from llmdeploy.errors import RegistryAuthError

ENV_REGISTRY_AUTH_FILE = "REGISTRY_AUTH_FILE"  # Podman's --authfile default
ENV_DOCKER_CONFIG = "DOCKER_CONFIG"
HELPER_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class RegistryAccess:
    """How to reach a registry: ``tls_verify`` False allows plain HTTP and unverified
    certificates (``--tls-verify=false``); ``creds_env`` names the variable with
    ``user:token`` (None: the auth files)."""

    tls_verify: bool = True
    creds_env: str | None = None


@dataclass(frozen=True)
class Credentials:
    """A user name and password/token for one registry, and where they came from (for
    messages: ``environment variable NAME`` or an auth file's path)."""

    username: str
    password: str = field(repr=False)
    source: str = ""


def resolve(
    host: str,
    repository: str,
    access: RegistryAccess,
    environ: Mapping[str, str] | None = None,
) -> Credentials | None:
    """The credentials for ``host``/``repository`` (see the module docstring), or None."""
    env = os.environ if environ is None else environ
    if access.creds_env:
        return from_env(access.creds_env, env)
    for path in auth_files(env):
        found = _from_file(path, host, repository)
        if found is not None:
            return found
    return None


def from_env(name: str, environ: Mapping[str, str]) -> Credentials:
    """``user:token`` from the variable ``name``; RegistryAuthError (naming only the
    variable) when it is unset, empty or has no ``:``."""
    value = environ.get(name, "")
    if not value:
        raise RegistryAuthError(
            f"--creds-env {name}: the environment variable {name} is not set (or empty)",
            hint=f"export {name}=USER:TOKEN (the registry's user name and password or token)",
        )
    user, colon, secret = value.partition(":")
    if not colon or not user or not secret:
        raise RegistryAuthError(
            f"--creds-env {name}: the variable {name} is not of the form user:token",
            hint=f"export {name}=USER:TOKEN",
        )
    return Credentials(user, secret, f"environment variable {name}")


def auth_files(environ: Mapping[str, str]) -> list[Path]:
    """The auth files to read, in order (those that do not exist are skipped later)."""
    home = Path(environ.get(ENV_HOME) or Path.home())
    files: list[Path] = []
    if environ.get(ENV_REGISTRY_AUTH_FILE):
        files.append(Path(environ[ENV_REGISTRY_AUTH_FILE]))
    runtime = environ.get(ENV_XDG_RUNTIME_DIR) or f"/run/user/{os.getuid()}"
    files.append(Path(runtime) / "containers" / "auth.json")
    config = Path(environ.get(ENV_XDG_CONFIG_HOME) or home / ".config")
    files.append(config / "containers" / "auth.json")
    docker = Path(environ.get(ENV_DOCKER_CONFIG) or home / ".docker")
    files.append(docker / "config.json")
    return files


def _keys(host: str, repository: str) -> Iterator[str]:
    parts = repository.split("/")
    for end in range(len(parts), 0, -1):
        yield f"{host}/{'/'.join(parts[:end])}"
    yield host


def _normalise(key: str) -> str:
    for prefix in ("https://", "http://"):
        if key.startswith(prefix):
            key = key[len(prefix) :]
    for suffix in ("/v1/", "/v2/", "/v1", "/v2"):
        if key.endswith(suffix):
            key = key[: -len(suffix)]
    return key.rstrip("/")


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise RegistryAuthError(
            f"cannot read the registry auth file {path}: {exc}",
            hint="fix or remove it, or pass --creds-env NAME",
        ) from exc
    return data if isinstance(data, dict) else None


def _from_file(path: Path, host: str, repository: str) -> Credentials | None:
    data = _read(path)
    if data is None:
        return None
    auths = data.get("auths")
    entries = (
        {_normalise(str(k)): v for k, v in auths.items() if isinstance(v, dict)}
        if isinstance(auths, dict)
        else {}
    )
    for key in _keys(host, repository):
        entry = entries.get(key)
        if entry and entry.get("auth"):
            return _decode(str(entry["auth"]), path, key)
    helpers = data.get("credHelpers")
    helper = helpers.get(host) if isinstance(helpers, dict) else None
    helper = helper or data.get("credsStore")
    if isinstance(helper, str) and helper:
        return _from_helper(helper, host, path)
    return None


def _decode(encoded: str, path: Path, key: str) -> Credentials:
    try:
        text = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        text = ""
    user, colon, secret = text.partition(":")
    if not colon or not user:
        raise RegistryAuthError(
            f"the entry for {key} in {path} is not base64 of user:password",
            hint="log in again (podman login / docker login), or pass --creds-env NAME",
        )
    return Credentials(user, secret, str(path))


def _from_helper(helper: str, host: str, path: Path) -> Credentials | None:
    binary = f"docker-credential-{helper}"
    try:
        done = subprocess.run(
            [binary, "get"],
            input=host.encode(),
            capture_output=True,
            timeout=HELPER_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError as exc:
        raise RegistryAuthError(
            f"{path} names the credential helper {helper!r}, and {binary} is not installed",
            hint="install it, or pass --creds-env NAME",
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise RegistryAuthError(f"{binary} did not answer within {HELPER_TIMEOUT_S:.0f} s") from exc
    if done.returncode != 0:
        return None  # the helper has nothing for this host ("credentials not found")
    try:
        payload = json.loads(done.stdout)
        return Credentials(str(payload["Username"]), str(payload["Secret"]), f"{binary}")
    except (ValueError, KeyError, TypeError) as exc:
        raise RegistryAuthError(f"{binary} answered something that is not its JSON") from exc
