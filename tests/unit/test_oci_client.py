"""The registry client's answers to what goes wrong, against small in-process HTTP servers: a
stopped registry, plain HTTP spoken to with HTTPS, missing and wrong credentials, something
that is not a registry. Each is its own error and exit code, said at once, with no secret in
it; and the CLI reports them the same way (exit codes 11, 12, 13; 2 for a bad option)."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from llmdeploy.core.model_ref import parse_ref
from llmdeploy.errors import RegistryAuthError, RegistryError, RegistryUnreachableError
from llmdeploy.models.oci.client import connect
from llmdeploy.models.oci.credentials import RegistryAccess

USER, PASSWORD = "alice", "correct-horse-battery"


class _Handler(BaseHTTPRequestHandler):
    mode = "basic"  # basic | open | not-a-registry

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.mode == "not-a-registry":
            self.send_response(404)
            self.end_headers()
            return
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if self.mode == "basic" and self.headers.get("Authorization") != expected:
            body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="test"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET


def _serve(mode: str) -> Iterator[str]:
    handler = type("Handler", (_Handler,), {"mode": mode})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def basic_registry() -> Iterator[str]:
    yield from _serve("basic")


@pytest.fixture
def not_a_registry() -> Iterator[str]:
    yield from _serve("not-a-registry")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_stopped_registry_is_unreachable_at_once() -> None:
    started = time.monotonic()
    with pytest.raises(RegistryUnreachableError) as caught:
        connect(parse_ref(f"oci://127.0.0.1:{_closed_port()}/m:1"), RegistryAccess(False))
    assert time.monotonic() - started < 5  # no 2-minute retry loop
    assert caught.value.exit_code == 13
    assert "Connection refused" in caught.value.message


def test_https_to_a_plain_http_registry_says_tls_verify(basic_registry: str) -> None:
    with pytest.raises(RegistryUnreachableError) as caught:
        connect(parse_ref(f"oci://{basic_registry}/m:1"), RegistryAccess(tls_verify=True))
    assert "cannot talk HTTPS" in caught.value.message
    assert "--tls-verify=false" in (caught.value.hint or "")


def test_basic_auth_without_credentials_is_refused_before_anything(
    basic_registry: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no auth files
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    with pytest.raises(RegistryAuthError) as caught:
        connect(parse_ref(f"oci://{basic_registry}/m:1"), RegistryAccess(False))
    assert caught.value.exit_code == 12
    assert "wants a user name and password, and none were found" in caught.value.message
    assert "--creds-env" in (caught.value.hint or "")


def test_a_wrong_password_is_refused_naming_its_source_not_its_value(
    basic_registry: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REG_CREDS", f"{USER}:not-the-password")
    with pytest.raises(RegistryAuthError) as caught:
        connect(parse_ref(f"oci://{basic_registry}/m:1"), RegistryAccess(False, "REG_CREDS"))
    text = f"{caught.value.message} {caught.value.hint}"
    assert "refused the credentials of user 'alice' from environment variable REG_CREDS" in text
    assert "not-the-password" not in text


def test_the_right_password_connects(basic_registry: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REG_CREDS", f"{USER}:{PASSWORD}")
    client = connect(parse_ref(f"oci://{basic_registry}/m:1"), RegistryAccess(False, "REG_CREDS"))
    assert client.where == f"{basic_registry}/m"
    assert PASSWORD not in repr(client.__dict__)


def test_something_that_is_not_a_registry(not_a_registry: str) -> None:
    with pytest.raises(RegistryError) as caught:
        connect(parse_ref(f"oci://{not_a_registry}/m:1"), RegistryAccess(False))
    assert caught.value.exit_code == 14
    assert "not an OCI registry API" in caught.value.message


# -- the CLI ------------------------------------------------------------------------------------


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmdeploy", "models", *args],
        capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=60,
    )


def test_cli_pull_from_a_stopped_registry_exits_13(tmp_path: Path) -> None:
    result = cli("pull", f"oci://127.0.0.1:{_closed_port()}/models/m:1", "--tls-verify=false")
    assert result.returncode == 13, result.stderr
    assert "cannot reach the registry" in result.stderr and "Traceback" not in result.stderr


def test_cli_wrong_password_exits_12_without_printing_it(basic_registry: str) -> None:
    result = cli("pull", f"oci://{basic_registry}/models/m:1", "--tls-verify=false",
                 "--creds-env", "REG_CREDS", env={"REG_CREDS": "alice:hunter2-wrong"})
    assert result.returncode == 12, result.stderr
    assert "hunter2-wrong" not in result.stderr + result.stdout
    assert "REG_CREDS" in result.stderr


def test_cli_push_without_a_tag_exits_4_before_reading_anything(tmp_path: Path) -> None:
    result = cli("push", str(tmp_path / "missing.gguf"), "oci://registry.example/models/m")
    assert result.returncode == 4
    assert "no tag or digest" in result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--tls-verify", "maybe"], "--tls-verify 'maybe': use true or false"),
        (["--creds-env", "user:token"], "--creds-env 'user:token': name an environment variable"),
    ],
)
def test_cli_bad_registry_options_exit_2(args: list[str], says: str) -> None:
    result = cli("pull", "oci://registry.example/models/m:1", *args)
    assert result.returncode == 2
    assert says in result.stderr
