"""An in-process fake of the Docker Engine and Podman (libpod) HTTP APIs on a unix socket.

The adapter tests run the real ``docker.DockerClient`` and ``podman.PodmanClient`` (their whole
HTTP stack: URL building, payload rendering, error classes) against this server, the way
docker-py tests its friendly layer against a fake API. It implements only the endpoints
llmdeploy's adapters call (answers in fake_engine_answers.py, in the real engines' shapes),
records every request, and keeps a little state (images, containers with their labels, names
and published ports) so conflicts arise as they do on a real engine.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socketserver
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from fake_engine_answers import (
    DOCKER_API_VERSION,
    PODMAN_VERSION,
    BuildOutcome,
    EngineState,
    FakeContainer,
    Flavor,
    Recorded,
    Reply,
    route,
)

__all__ = ["BuildOutcome", "FakeContainer", "FakeEngineApi", "Flavor", "Recorded", "serve"]


class FakeEngineApi(EngineState):
    """The fake API of one engine flavour, listening on ``socket_path`` until ``close``."""

    def __init__(self, flavor: Flavor) -> None:
        super().__init__(flavor)
        self._dir = tempfile.mkdtemp(prefix="llmd-api-")  # short: unix socket paths are limited
        self.socket_path = str(Path(self._dir) / "api.sock")
        self.url = f"unix://{self.socket_path}"
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"api": self})
        self._server = socketserver.ThreadingUnixStreamServer(self.socket_path, handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def calls(self) -> list[tuple[str, str]]:
        """(method, path) of every request after the connection check, in order."""
        return [(r.method, r.path) for r in self.requests if r.path not in ("/version", "/_ping")]

    def last(self, method: str, path_pattern: str) -> Recorded:
        for recorded in reversed(self.requests):
            if recorded.method == method and re.fullmatch(path_pattern, recorded.path):
                return recorded
        raise AssertionError(f"no {method} {path_pattern} among {self.calls()}")

    def forget(self) -> None:
        self.requests.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        shutil.rmtree(self._dir, ignore_errors=True)


@contextlib.contextmanager
def serve(flavor: Flavor) -> Iterator[FakeEngineApi]:
    api = FakeEngineApi(flavor)
    try:
        yield api
    finally:
        api.close()


_VERSION_PREFIX = re.compile(r"^/v\d+(\.\d+)*")


class _Handler(BaseHTTPRequestHandler):
    api: FakeEngineApi
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet; no client address on unix
        pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        path = _VERSION_PREFIX.sub("", unquote(parts.path))
        libpod = path.startswith("/libpod/")
        path = path.removeprefix("/libpod")
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        raw = self._read_body()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
        recorded = Recorded(self.command, path, query, body, libpod, dict(self.headers.items()),
                            raw_path=parts.path)
        with self.api._lock:
            self.api.requests.append(recorded)
            reply = route(self.api, recorded)
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Api-Version", DOCKER_API_VERSION)
        if self.api.flavor == "podman":
            self.send_header("Libpod-Api-Version", PODMAN_VERSION)
        if reply.stream is not None:  # real engines stream pull, build and logs chunked
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in reply.stream:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
            return
        if reply.text is not None:
            payload = reply.text.encode()
            self.send_header("Content-Type", "text/plain; charset=utf-8")
        elif reply.body is not None:
            payload = json.dumps(reply.body).encode()
            self.send_header("Content-Type", "application/json")
        else:
            payload = b""
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
