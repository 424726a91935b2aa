"""Registry credentials (never shown) and what a failed push or pull means."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from llmdeploy.core.image_ref import parse_image_ref
from llmdeploy.core.registry import RegistryCredentials
from llmdeploy.engines.registry_auth import (
    auth_files,
    credentials_from_env,
    registry_access,
    resolve_credentials,
)
from llmdeploy.engines.registry_errors import registry_error
from llmdeploy.errors import (
    ImageError,
    RegistryAuthError,
    RegistryUnreachableError,
    UsageError,
)

SECRET = "tok-3c2f9a"


def test_creds_env_holds_user_colon_token_and_the_token_is_never_shown() -> None:
    creds = credentials_from_env("REG", {"REG": f"ci-bot:{SECRET}"})
    assert (creds.username, creds.password) == ("ci-bot", SECRET)
    assert SECRET not in repr(creds) and SECRET not in str(creds)
    assert str(creds) == "ci-bot (from $REG)"
    assert creds.auth_config() == {"username": "ci-bot", "password": SECRET}


@pytest.mark.parametrize("value", [None, "", "no-colon", ":only-token", "user:"])
def test_an_unusable_creds_env_is_a_usage_error_naming_the_variable_not_its_value(
    value: str | None,
) -> None:
    env = {} if value is None else {"REG": value}
    with pytest.raises(UsageError) as raised:
        credentials_from_env("REG", env)
    assert raised.value.exit_code == 2 and "REG" in raised.value.message
    if value:
        assert value not in raised.value.message


def _auth_file(path: Path, registry: str, user: str, password: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {registry: {"auth": token}}}))
    return path


def test_podman_reads_its_auth_files_in_its_order(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path / "home"), "XDG_RUNTIME_DIR": str(tmp_path / "run")}
    ref = parse_image_ref("127.0.0.1:5000/llm/edge:1")
    assert resolve_credentials(ref, "podman", None, env) is None  # nothing saved: fine
    _auth_file(tmp_path / "home/.docker/config.json", "127.0.0.1:5000", "docker-user", "d")
    found = resolve_credentials(ref, "podman", None, env)
    assert found is not None and found.username == "docker-user"
    runtime = _auth_file(tmp_path / "run/containers/auth.json", "127.0.0.1:5000", "podman-user",
                         SECRET)
    found = resolve_credentials(ref, "podman", None, env)
    assert found is not None and found.username == "podman-user" and found.password == SECRET
    assert found.source == str(runtime)
    explicit = _auth_file(tmp_path / "custom.json", "127.0.0.1:5000", "explicit", "e")
    found = resolve_credentials(ref, "podman", None, {**env, "REGISTRY_AUTH_FILE": str(explicit)})
    assert found is not None and found.username == "explicit"
    # another registry's login is not used
    assert resolve_credentials(parse_image_ref("other.example/x:1"), "podman", None, env) is None


def test_docker_reads_only_its_config_and_creds_env_wins(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path / "run"),
           "DOCKER_CONFIG": str(tmp_path / "dc"), "REG": "from-env:x"}
    _auth_file(tmp_path / "run/containers/auth.json", "r.example", "podman-user", "p")
    ref = parse_image_ref("r.example/x:1")
    assert resolve_credentials(ref, "docker", None, env) is None
    _auth_file(tmp_path / "dc/config.json", "r.example", "docker-user", "d")
    found = resolve_credentials(ref, "docker", None, env)
    assert found is not None and found.username == "docker-user"
    found = resolve_credentials(ref, "docker", "REG", env)
    assert found is not None and found.username == "from-env"
    assert auth_files("docker", env) == [tmp_path / "dc/config.json"]
    assert auth_files("podman", {"HOME": "/h"}, uid=0)[0] == Path("/run/containers/0/auth.json")


def test_up_access_for_an_image_without_a_registry_looks_at_creds_env_only(tmp_path: Path
                                                                           ) -> None:
    env = {"HOME": str(tmp_path)}
    access = registry_access("localhost/llmdeploy/x:1", "podman", tls_verify=False, environ=env)
    assert access.tls_verify is False and access.credentials is None
    with pytest.raises(UsageError):
        registry_access(None, "podman", creds_env="UNSET", environ=env)


# The engines' own words, as Podman 4.3 and Docker 20.10 wrote them against docker-registry 2.8.
PODMAN_AUTH = ("trying to reuse blob sha256:c8ef at destination: checking whether a blob "
               "sha256:c8ef exists in 127.0.0.1:33763/probe/x: unauthorized: authentication "
               "required")
PODMAN_REFUSED = ('trying to reuse blob sha256:c8ef at destination: pinging container registry '
                  '127.0.0.1:15119: Get "http://127.0.0.1:15119/v2/": dial tcp 127.0.0.1:15119: '
                  'connect: connection refused')
PODMAN_TLS = ('pinging container registry 127.0.0.1:15111: Get "https://127.0.0.1:15111/v2/": '
              'http: server gave HTTP response to HTTPS client')
DOCKER_NO_CREDS = "no basic auth credentials"
DOCKER_WRONG = "unauthorized: authentication required"
DOCKER_REFUSED = ('Get "http://127.0.0.1:9/v2/": dial tcp 127.0.0.1:9: connect: connection '
                  'refused')
NOT_FOUND = "reading manifest 1 in 127.0.0.1:5000/probe/y: manifest unknown: manifest unknown"


@pytest.mark.parametrize(("text", "kind", "code"), [
    (PODMAN_AUTH, RegistryAuthError, 12),
    (DOCKER_NO_CREDS, RegistryAuthError, 12),
    (DOCKER_WRONG, RegistryAuthError, 12),
    (PODMAN_REFUSED, RegistryUnreachableError, 13),
    (DOCKER_REFUSED, RegistryUnreachableError, 13),
    (PODMAN_TLS, RegistryUnreachableError, 13),
    (NOT_FOUND, ImageError, 5),
])
def test_engine_messages_map_to_distinct_exit_codes(text: str, kind: type[ImageError],
                                                    code: int) -> None:
    error = registry_error("could not push r/x:1 with podman", text, tls_verify=True)
    assert type(error) is kind and error.exit_code == code
    assert error.message.startswith("could not push r/x:1 with podman: ")
    assert error.hint


def test_plain_http_registry_hint_says_tls_verify_false() -> None:
    error = registry_error("could not pull r", PODMAN_TLS, tls_verify=True)
    assert error.hint and "--tls-verify=false" in error.hint


def test_credentials_type_hides_the_password_in_dataclass_repr() -> None:
    creds = RegistryCredentials("u", SECRET, "x")
    assert SECRET not in repr([creds])


def test_up_looks_up_the_saved_login_only_when_it_pulls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An image already in the engine needs no credentials: the auth files (and docker-py's
    auth module that reads them) are read by the pull, not by ``up`` before it knows."""
    import llmdeploy.engines.registry_auth as registry_auth

    env = {"HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path / "run")}
    _auth_file(tmp_path / "run/containers/auth.json", "r.example", "saved-user", "t")
    looked: list[str] = []
    real = registry_auth.credentials_from_files

    def counting(*args: Any) -> Any:
        looked.append("files")
        return real(*args)

    monkeypatch.setattr(registry_auth, "credentials_from_files", counting)
    access = registry_access("r.example/x:1", "podman", environ=env)
    assert looked == [] and access.credentials is None
    pulled = access.for_pull()
    assert looked == ["files"]
    assert pulled.credentials is not None and pulled.credentials.username == "saved-user"
    assert pulled.tls_verify is access.tls_verify
    # given credentials are used as they are, and an image without a registry has no lookup
    assert pulled.for_pull() is pulled
    assert registry_access("localhost/x:1", "podman", environ=env).for_pull().credentials is None
