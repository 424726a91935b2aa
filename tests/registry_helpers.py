"""A real OCI registry for tests: Debian's ``docker-registry`` (distribution 2.8) on 127.0.0.1.

``local_registry(folder, auth=...)`` starts one on a free port with its own storage folder,
plain HTTP, optionally with htpasswd basic auth (bcrypt, written by ``htpasswd -B``), and
stops it (by its own process id) when the block ends. ``registry_missing()`` says what is not
installed (scripts/setup-host.sh --with-export-tools installs it).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

REGISTRY_BIN = "docker-registry"
USER, PASSWORD = "llmdeploy", "s3cret-for-tests"


@dataclass(frozen=True)
class LocalRegistry:
    host: str  # 127.0.0.1:PORT
    auth: bool

    def ref(self, repo: str) -> str:
        return f"oci://{self.host}/{repo}"


def registry_missing(auth: bool = False) -> str | None:
    if shutil.which(REGISTRY_BIN) is None:
        return "docker-registry is not installed (scripts/setup-host.sh --with-export-tools)"
    if auth and shutil.which("htpasswd") is None:
        return "htpasswd is not installed (apache2-utils; scripts/setup-host.sh --with-export-tools)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def local_registry(folder: Path, *, auth: bool = False) -> Iterator[LocalRegistry]:
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    config = [
        "version: 0.1",
        "log: {level: warn}",
        f"storage: {{filesystem: {{rootdirectory: {folder / 'data'}}}, delete: {{enabled: true}}}}",
        f"http: {{addr: '127.0.0.1:{port}'}}",
    ]
    if auth:
        htpasswd = folder / "htpasswd"
        made = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], capture_output=True,
                              text=True, check=True, timeout=60)
        htpasswd.write_text(made.stdout)
        config.append(f"auth: {{htpasswd: {{realm: llmdeploy-test, path: {htpasswd}}}}}")
    (folder / "config.yml").write_text("\n".join(config) + "\n")
    log = (folder / "registry.log").open("w")
    process = subprocess.Popen([REGISTRY_BIN, "serve", str(folder / "config.yml")],
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=2)
                if answer.status_code in (200, 401):
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"docker-registry did not start: {(folder / 'registry.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield LocalRegistry(f"127.0.0.1:{port}", auth)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
