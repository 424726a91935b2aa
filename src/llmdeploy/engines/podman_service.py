"""Find a listening Podman API socket, or start a transient ``podman system service``.

A socket the user configured (``LLMDEPLOY_PODMAN_SOCKET``, else ``CONTAINER_HOST``) is used
as given: when it does not answer, that is an error naming the variable, never a silent
switch to the local Podman. Otherwise: the rootful socket ``/run/podman/podman.sock`` (root)
or ``$XDG_RUNTIME_DIR/podman/podman.sock`` (rootless); when none answers, llmdeploy starts
``podman system service`` on a private socket for the duration of the command and stops it
afterwards.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from llmdeploy.constants import ENV_PODMAN_SOCKET
from llmdeploy.errors import EngineUnavailableError

_START_TIMEOUT_S = 20.0
IDLE_EXIT_S = 30


def configured_socket() -> tuple[str, str] | None:
    """The Podman API the user pointed at explicitly: (base URL, the variable that said so).

    ``LLMDEPLOY_PODMAN_SOCKET`` (a path or ``unix://`` URL) wins over ``CONTAINER_HOST``
    (``unix://``, ``tcp://`` or ``ssh://`` as Podman's remote client takes it).
    """
    override = os.environ.get(ENV_PODMAN_SOCKET)
    if override:
        url = override if "://" in override else f"unix://{override}"
        return url, ENV_PODMAN_SOCKET
    host = os.environ.get("CONTAINER_HOST")
    if host:
        return host, "CONTAINER_HOST"
    return None


def default_sockets() -> list[str]:
    """Where a Podman API socket listens when nobody configured one."""
    found = []
    if os.geteuid() == 0:
        found.append("/run/podman/podman.sock")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        found.append(str(Path(runtime) / "podman" / "podman.sock"))
    return list(dict.fromkeys(found))


def candidate_sockets() -> list[str]:
    """Every unix socket llmdeploy may talk to, configured ones first (for doctor)."""
    configured = configured_socket()
    found = []
    if configured is not None and configured[0].startswith("unix://"):
        found.append(configured[0].removeprefix("unix://"))
    return list(dict.fromkeys([*found, *default_sockets()]))


def socket_answers(path: str, timeout_s: float = 1.0) -> bool:
    if not os.path.exists(path):
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
            return sock.recv(16).startswith(b"HTTP/1.")
    except OSError:
        return False


class TransientService:
    """A ``podman system service`` owned by this process, stopped by ``close``."""

    def __init__(self) -> None:
        binary = shutil.which("podman")
        if binary is None:
            raise EngineUnavailableError(
                "Podman is not installed",
                hint="apt-get install podman runc (or use engine: docker)",
            )
        self._dir = tempfile.mkdtemp(prefix="llmdeploy-podman-")
        self.path = os.path.join(self._dir, "podman.sock")
        self._process = subprocess.Popen(
            # an idle timeout, not --time=0: if llmdeploy is killed before close(), the
            # service still exits on its own once nothing talks to it
            [binary, "system", "service", f"--time={IDLE_EXIT_S}", f"unix://{self.path}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                stderr = (self._process.stderr.read() if self._process.stderr else b"").decode()
                self.close()
                raise EngineUnavailableError(
                    "podman system service exited at start",
                    log_tail=stderr.strip().splitlines()[-10:],
                    hint="run `llmdeploy doctor` to see what is wrong with Podman",
                )
            if socket_answers(self.path):
                return
            time.sleep(0.05)
        self.close()
        raise EngineUnavailableError(
            f"podman system service did not answer within {_START_TIMEOUT_S:.0f} s"
        )

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
        shutil.rmtree(self._dir, ignore_errors=True)


def find_socket() -> str | None:
    """A listening default socket, or None (configured sockets are checked by the caller)."""
    for path in default_sockets():
        if socket_answers(path):
            return path
    return None
