"""Registry credentials for a push or pull: ``--creds-env NAME``, else the engine's auth files.

``--creds-env NAME`` names an environment variable holding ``user:token`` (what CI systems
inject from a secret store). Without it, the credentials ``podman login`` / ``docker login``
saved are looked up in the files the engine itself reads, in its order:

- Podman (containers-auth.json(5)): ``$REGISTRY_AUTH_FILE``;
  ``$XDG_RUNTIME_DIR/containers/auth.json`` (``/run/containers/UID/auth.json`` when unset);
  ``$XDG_CONFIG_HOME/containers/auth.json`` (``~/.config/containers/auth.json``);
  ``$DOCKER_CONFIG/config.json`` / ``~/.docker/config.json``;
- Docker: ``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``.

Each file is read with docker-py's own reader (``docker.auth.load_config``: the ``auths``
map, legacy URL keys, and the ``credsStore`` / ``credHelpers`` programs). They are looked up
on the client side and sent through the API because a Podman service started elsewhere (a
systemd unit, another shell) reads its own environment's files, not the caller's. Nothing
found is not an error: a registry that needs no login needs no credentials.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path

from llmdeploy.core.image_ref import DOCKER_HUB, ImageRef, parse_image_ref
from llmdeploy.core.registry import RegistryAccess, RegistryCredentials
from llmdeploy.errors import UsageError


def credentials_from_env(
    name: str, environ: Mapping[str, str] | None = None
) -> RegistryCredentials:
    """The ``user:token`` in ``$NAME``; UsageError (exit 2) when it is unset or malformed.

    The message names the variable, never its value.
    """
    env = os.environ if environ is None else environ
    value = env.get(name)
    if value is None or not value.strip():
        raise UsageError(
            f"--creds-env {name}: the environment variable {name} is not set",
            hint=f"export {name}=USER:TOKEN (for example from your CI's secret store)",
        )
    user, sep, secret = value.strip().partition(":")
    if not sep or not user or not secret:
        raise UsageError(
            f"--creds-env {name}: ${name} must hold USER:TOKEN (a user name, a colon, then the "
            "password or token)",
            hint="the value itself is never printed",
        )
    return RegistryCredentials(username=user, password=secret, source=f"${name}")


def auth_files(
    engine: str, environ: Mapping[str, str] | None = None, uid: int | None = None
) -> list[Path]:
    """The auth files ``engine`` reads, in its lookup order (existing or not)."""
    env = os.environ if environ is None else environ
    home = Path(env.get("HOME") or Path.home())
    docker_config = (
        Path(env["DOCKER_CONFIG"]) / "config.json"
        if env.get("DOCKER_CONFIG")
        else (home / ".docker" / "config.json")
    )
    if engine == "docker":
        return [docker_config]
    files: list[Path] = []
    if env.get("REGISTRY_AUTH_FILE"):
        files.append(Path(env["REGISTRY_AUTH_FILE"]))
    runtime = env.get("XDG_RUNTIME_DIR")
    user_id = os.geteuid() if uid is None else uid
    files.append(
        Path(runtime) / "containers" / "auth.json"
        if runtime
        else Path(f"/run/containers/{user_id}/auth.json")
    )
    config_home = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
    files.append(config_home / "containers" / "auth.json")
    files.append(docker_config)
    return files


def credentials_from_files(
    ref: ImageRef, engine: str, environ: Mapping[str, str] | None = None
) -> RegistryCredentials | None:
    """The saved login for ``ref``'s registry from the first of ``auth_files`` that has one."""
    from docker import auth as docker_auth

    registry = ref.registry or DOCKER_HUB
    for path in auth_files(engine, environ):
        if not path.is_file():
            continue
        try:
            config = docker_auth.load_config(config_path=str(path))
            entry = config.resolve_authconfig(registry)
        except Exception:  # an unreadable file or a failing credential helper: try the next
            continue
        if entry and entry.get("username") and entry.get("password"):
            return RegistryCredentials(
                username=str(entry["username"]), password=str(entry["password"]), source=str(path)
            )
    return None


def resolve_credentials(
    ref: ImageRef,
    engine: str,
    creds_env: str | None,
    environ: Mapping[str, str] | None = None,
) -> RegistryCredentials | None:
    """``--creds-env`` when given (it must be usable), else the engine's saved login, else None."""
    if creds_env:
        return credentials_from_env(creds_env, environ)
    return credentials_from_files(ref, engine, environ)


def registry_access(
    image: str | None,
    engine: str,
    *,
    tls_verify: bool = True,
    creds_env: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> RegistryAccess:
    """How to pull ``image`` (``up`` of a profile whose ``image:`` names a registry): TLS as
    given, credentials from ``--creds-env`` (checked now) or else the engine's saved login for
    its registry, looked up only if a pull happens (``RegistryAccess.for_pull``).

    ``image`` None or without a registry: only ``--creds-env`` is looked at (and checked).
    """
    ref: ImageRef | None = None
    if image:
        try:
            ref = parse_image_ref(image)
        except ValueError:
            ref = None  # the engine reports a bad reference itself, with its own words
    if creds_env:  # checked now: an unusable --creds-env is a usage error before any work
        return RegistryAccess(tls_verify, credentials_from_env(creds_env, environ))
    if ref is None or not ref.pushable:
        return RegistryAccess(tls_verify=tls_verify)
    return RegistryAccess(
        tls_verify=tls_verify,
        saved_login=functools.partial(credentials_from_files, ref, engine, environ),
    )
