"""A real OCI registry on 127.0.0.1 for the end-to-end tests: Debian's ``docker-registry``
(distribution 2.8, ``apt-get install docker-registry``; scripts/setup-host.sh
--with-registry-tools), plain HTTP, optionally with htpasswd basic auth.

Each registry gets its own folder (config, storage, htpasswd) and a free port, listens on
127.0.0.1 only, and is stopped (its process, by PID) when the fixture ends. Reading what is
in it goes through ``skopeo`` (apt), a well-kept registry client, not through our own.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from e2e_helpers import free_port, unavailable

REGISTRY_BIN = "docker-registry"
USER = "ci-bot"
PASSWORD = "s3cret-registry-token"  # a throwaway for the test registry only
START_TIMEOUT_S = 20.0


@dataclass
class LocalRegistry:
    """A running registry: ``address`` is ``127.0.0.1:PORT``; ``user``/``password`` are set
    when it requires basic auth."""

    address: str
    folder: Path
    process: subprocess.Popen[bytes]
    user: str | None = None
    password: str | None = None

    @property
    def creds(self) -> str:
        """``user:password`` (what ``--creds-env`` variables hold)."""
        assert self.user and self.password
        return f"{self.user}:{self.password}"

    def ref(self, repository: str, tag: str) -> str:
        return f"{self.address}/{repository}:{tag}"

    def _auth(self) -> list[str]:
        return [f"--creds={self.creds}"] if self.user else []

    def raw_manifest(self, reference: str) -> bytes | None:
        """The manifest (or index) bytes as stored, None when the registry has no such tag."""
        done = subprocess.run(
            ["skopeo", "inspect", "--raw", "--tls-verify=false", *self._auth(),
             f"docker://{reference}"],
            capture_output=True, timeout=60,
        )
        return done.stdout if done.returncode == 0 else None

    def tags(self, repository: str) -> list[str]:
        done = subprocess.run(
            ["skopeo", "list-tags", "--tls-verify=false", *self._auth(),
             f"docker://{self.address}/{repository}"],
            capture_output=True, text=True, timeout=60,
        )
        if done.returncode != 0:  # an unknown repository: nothing was ever pushed there
            return []
        return list(json.loads(done.stdout).get("Tags") or [])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def registry_available() -> str | None:
    """None when a registry can be started here, else why not."""
    for tool, package in ((REGISTRY_BIN, "docker-registry"), ("skopeo", "skopeo"),
                          ("htpasswd", "apache2-utils")):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt {package}; scripts/setup-host.sh --with-registry-tools)"
    return None


@contextmanager
def local_registry(folder: Path, *, basic_auth: bool = False) -> Iterator[LocalRegistry]:
    """Start a registry storing under ``folder``; stop it afterwards."""
    reason = registry_available()
    if reason:
        unavailable(reason)
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    auth = ""
    if basic_auth:
        hashed = subprocess.run(
            ["htpasswd", "-Bbn", USER, PASSWORD], capture_output=True, text=True, timeout=30,
            check=True,
        ).stdout
        (folder / "htpasswd").write_text(hashed)
        auth = f"auth:\n  htpasswd:\n    realm: llmdeploy-e2e\n    path: {folder / 'htpasswd'}\n"
    config = folder / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n{auth}"
    )
    log = (folder / "registry.log").open("wb")
    process = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=log, stderr=log,
                               stdin=subprocess.DEVNULL)
    registry = LocalRegistry(
        address=f"127.0.0.1:{port}", folder=folder, process=process,
        user=USER if basic_auth else None, password=PASSWORD if basic_auth else None,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                answer = httpx.get(f"http://{registry.address}/v2/", timeout=2)
                if answer.status_code in (200, 401):
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"docker-registry did not start: {(folder / 'registry.log').read_text()[-2000:]}"
                )
            time.sleep(0.1)
        yield registry
    finally:
        registry.stop()
        log.close()
