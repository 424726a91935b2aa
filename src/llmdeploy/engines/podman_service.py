"""Whether a Podman API socket answers, and a transient ``podman system service`` when none does.

Which sockets are tried is decided in ``engines/addresses.py`` (shared with doctor); when none
of the default ones answers, llmdeploy starts ``podman system service`` on a private socket for
the duration of the command and stops it afterwards.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable

from llmdeploy.engines.addresses import ApiAddress
from llmdeploy.errors import EngineUnavailableError

_START_TIMEOUT_S = 20.0
IDLE_EXIT_S = 30


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


def first_answering(addresses: Iterable[ApiAddress]) -> ApiAddress | None:
    """The first ``unix://`` address whose socket answers, or None."""
    for address in addresses:
        path = address.socket_path
        if path is not None and socket_answers(path):
            return address
    return None
