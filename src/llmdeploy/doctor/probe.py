"""The one seam between doctor's checks and the host: ``HostProbe``.

Checks never call ``subprocess``, ``os`` or ``socket`` themselves; they ask a probe. ``SystemProbe``
asks the real machine (every command and connection under a timeout); unit tests pass a fake.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from llmdeploy.engines.addresses import unix_path

__all__ = ["CommandResult", "HostProbe", "ProbeError", "SystemProbe", "unix_path"]


class ProbeError(Exception):
    """A probe could not get an answer (connection refused, timeout, bad reply)."""


@dataclass(frozen=True)
class CommandResult:
    rc: int
    stdout: str
    stderr: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.timed_out

    def first_error_line(self) -> str:
        """The most telling line of a failed command, for a one-line detail."""
        if self.timed_out:
            return "no answer before the timeout"
        for text in (self.stderr, self.stdout):
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            if lines:
                return lines[-1]
        return f"exit status {self.rc}"


class HostProbe(Protocol):
    """What doctor may ask the host. Every method answers quickly or gives up."""

    def run(self, argv: Sequence[str], *, timeout_s: float) -> CommandResult:
        """Run a command; rc 127 when the program is missing, ``timed_out`` when killed."""
        ...

    def which(self, name: str) -> str | None: ...

    def read_text(self, path: str) -> str | None:
        """The file's text, or None when it is missing or unreadable."""
        ...

    def exists(self, path: str) -> bool: ...

    def list_dir(self, path: str) -> list[str]:
        """Sorted entry names, or [] when the directory is missing or unreadable."""
        ...

    def disk_free(self, path: str) -> int | None:
        """Bytes free on the filesystem holding ``path`` (an existing path), or None."""
        ...

    def is_writable(self, path: str) -> bool: ...

    def socket_accepts(self, address: str, *, timeout_s: float) -> bool:
        """Whether ``unix:///path``, a bare path or ``tcp://host:port`` accepts a connection."""
        ...

    def http_get_json(self, address: str, path: str, *, timeout_s: float) -> Any:
        """GET ``path`` from an HTTP API at ``address`` (unix:// or tcp://); raises ProbeError."""
        ...

    def has_module(self, name: str) -> bool:
        """Whether a top-level Python module is importable, found without importing it."""
        ...

    def dist_version(self, distribution: str) -> str | None: ...

    def env(self) -> Mapping[str, str]: ...

    def euid(self) -> int: ...


class SystemProbe:
    """``HostProbe`` on the real machine."""

    def run(self, argv: Sequence[str], *, timeout_s: float) -> CommandResult:
        env = dict(os.environ, LC_ALL="C")
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                env=env,
                start_new_session=True,
            )
        except FileNotFoundError:
            return CommandResult(127, "", f"{argv[0]}: not found")
        except OSError as exc:
            return CommandResult(126, "", f"{argv[0]}: {exc}")
        try:
            stdout, stderr = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            # The command runs in its own session: end that process group, which we started.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            try:
                stdout, stderr = proc.communicate(timeout=1.0)
            except subprocess.TimeoutExpired:
                stdout, stderr = "", ""
            return CommandResult(-9, stdout, stderr, timed_out=True)
        return CommandResult(proc.returncode, stdout, stderr)

    def which(self, name: str) -> str | None:
        return shutil.which(name)

    def read_text(self, path: str) -> str | None:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except OSError:
            return None

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def list_dir(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(path))
        except OSError:
            return []

    def disk_free(self, path: str) -> int | None:
        try:
            return shutil.disk_usage(path).free
        except OSError:
            return None

    def is_writable(self, path: str) -> bool:
        return os.access(path, os.W_OK)

    def socket_accepts(self, address: str, *, timeout_s: float) -> bool:
        try:
            sock = _connect(address, timeout_s)
        except (OSError, ProbeError):
            return False
        sock.close()
        return True

    def http_get_json(self, address: str, path: str, *, timeout_s: float) -> Any:
        import httpx

        socket_path = unix_path(address)
        try:
            if socket_path is not None:
                transport = httpx.HTTPTransport(uds=socket_path)
                with httpx.Client(transport=transport, timeout=timeout_s) as client:
                    response = client.get(f"http://localhost{path}")
            elif address.startswith("tcp://"):
                parts = urlsplit(address)
                with httpx.Client(timeout=timeout_s) as client:
                    response = client.get(f"http://{parts.netloc}{path}")
            else:
                raise ProbeError(f"cannot query {address!r} (only unix:// and tcp:// are checked)")
            response.raise_for_status()
            return response.json()
        except httpx.TimeoutException as exc:
            raise ProbeError(f"no answer from {address} within {timeout_s:g} s") from exc
        except httpx.HTTPError as exc:
            raise ProbeError(f"{address}: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise ProbeError(f"{address}{path} did not answer JSON") from exc

    def has_module(self, name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            return False

    def dist_version(self, distribution: str) -> str | None:
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            return None

    def env(self) -> Mapping[str, str]:
        return os.environ

    def euid(self) -> int:
        return os.geteuid()


def _connect(address: str, timeout_s: float) -> socket.socket:
    socket_path = unix_path(address)
    if socket_path is not None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout_s)
        try:
            sock.connect(socket_path)
        except OSError:
            sock.close()
            raise
        return sock
    if address.startswith("tcp://"):
        parts = urlsplit(address)
        if parts.hostname is None or parts.port is None:
            raise ProbeError(f"bad address {address!r}")
        return socket.create_connection((parts.hostname, parts.port), timeout=timeout_s)
    raise ProbeError(f"cannot connect to {address!r}")
