"""Where registry credentials come from: --creds-env NAME, else the auth files in the order
Podman and Docker read them; never printed."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from llmdeploy.errors import RegistryAuthError
from llmdeploy.models.oci.credentials import Credentials, RegistryAccess, auth_files, resolve

HOST, REPO = "registry.example:5000", "team/models/smollm2"


def _auth(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def _write(path: Path, auths: dict[str, object], **extra: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"auths": auths, **extra}))
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"HOME": str(tmp_path / "home"), "XDG_RUNTIME_DIR": str(tmp_path / "run")}


def test_creds_env_wins_and_its_value_is_never_in_repr(env: dict[str, str]) -> None:
    _write(Path(env["XDG_RUNTIME_DIR"]) / "containers/auth.json", {HOST: _auth("file", "pw")})
    found = resolve(HOST, REPO, RegistryAccess(creds_env="CI_REG"), {**env, "CI_REG": "ci:t0ken"})
    assert found == Credentials("ci", "t0ken", "environment variable CI_REG")
    assert "t0ken" not in repr(found)


@pytest.mark.parametrize("value", ["", "no-colon-S3CR3T", ":S3CR3T", "someone:"])
def test_a_bad_creds_env_names_the_variable_only(env: dict[str, str], value: str) -> None:
    with pytest.raises(RegistryAuthError) as caught:
        resolve(HOST, REPO, RegistryAccess(creds_env="CI_REG"), {**env, "CI_REG": value})
    assert "CI_REG" in caught.value.message and caught.value.exit_code == 12
    if value:
        assert value not in caught.value.message


def test_auth_files_in_the_engines_order(env: dict[str, str], tmp_path: Path) -> None:
    home = Path(env["HOME"])
    assert auth_files({**env, "REGISTRY_AUTH_FILE": str(tmp_path / "a.json")}) == [
        tmp_path / "a.json",
        Path(env["XDG_RUNTIME_DIR"]) / "containers/auth.json",
        home / ".config/containers/auth.json",
        home / ".docker/config.json",
    ]
    docker = _write(home / ".docker/config.json", {HOST: _auth("docker", "d")})
    assert resolve(HOST, REPO, RegistryAccess(), env) == Credentials("docker", "d", str(docker))
    podman = _write(home / ".config/containers/auth.json", {HOST: _auth("podman", "p")})
    assert resolve(HOST, REPO, RegistryAccess(), env) == Credentials("podman", "p", str(podman))
    runtime = _write(Path(env["XDG_RUNTIME_DIR"]) / "containers/auth.json",
                     {HOST: _auth("runtime", "r")})
    assert resolve(HOST, REPO, RegistryAccess(), env) == Credentials("runtime", "r", str(runtime))


def test_the_most_specific_key_wins_and_url_forms_count(env: dict[str, str]) -> None:
    path = Path(env["HOME"]) / ".docker/config.json"
    _write(path, {f"https://{HOST}/v1/": _auth("host", "h"),
                  f"{HOST}/team": _auth("team", "t")})
    assert resolve(HOST, REPO, RegistryAccess(), env).username == "team"  # type: ignore[union-attr]
    assert resolve(HOST, "other/x", RegistryAccess(), env).username == "host"  # type: ignore[union-attr]
    assert resolve("elsewhere.example", "x", RegistryAccess(), env) is None


def test_a_malformed_entry_is_an_error_naming_the_file(env: dict[str, str]) -> None:
    path = _write(Path(env["HOME"]) / ".docker/config.json", {HOST: {"auth": "%%%not-base64"}})
    with pytest.raises(RegistryAuthError) as caught:
        resolve(HOST, REPO, RegistryAccess(), env)
    assert str(path) in caught.value.message and HOST in caught.value.message


def test_a_credential_helper_is_asked_with_the_host(env: dict[str, str], tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-test"
    helper.write_text(
        "#!/bin/sh\nread host\n"
        'if [ "$host" = "registry.example:5000" ]; then '
        'echo \'{"Username": "helped", "Secret": "s"}\'; else exit 1; fi\n'
    )
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    _write(Path(env["HOME"]) / ".docker/config.json", {}, credHelpers={HOST: "test"})
    old = os.environ["PATH"]
    os.environ["PATH"] = f"{bin_dir}:{old}"
    try:
        found = resolve(HOST, REPO, RegistryAccess(), env)
    finally:
        os.environ["PATH"] = old
    assert found is not None and (found.username, found.password) == ("helped", "s")


def test_no_credentials_anywhere_is_anonymous(env: dict[str, str]) -> None:
    assert resolve(HOST, REPO, RegistryAccess(), env) is None
