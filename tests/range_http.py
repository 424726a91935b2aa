"""A local HTTP server for header-only reads: files with or without Range support, a fake
Hugging Face Hub and a fake Ollama registry, all on 127.0.0.1.

Routes (``FileServer.files``: path -> bytes):

- ``GET /files/PATH``: the file; with ``ranges=True`` a ``Range: bytes=A-B`` request gets
  ``206`` and ``Content-Range`` (``416`` past the end), with ``ranges=False`` it is ignored
  and the whole file is sent (200), as a plain static server does;
- ``GET /api/models/ORG/REPO/revision/REV`` (``HfApi.model_info``; ``?blobs=true`` adds
  sizes) and ``GET /ORG/REPO/resolve/COMMIT/PATH`` (``hf_hub_url``'s files), for the repos in
  ``FileServer.repos`` (repo id -> commit -> path -> bytes; revision ``main`` is the first
  commit); an unknown repo answers 401 ``RepoNotFound`` like the Hub;
- ``GET /v2/NS/NAME/manifests/TAG`` and ``GET /v2/NS/NAME/blobs/DIGEST`` (an Ollama registry)
  for ``FileServer.ollama`` (``NS/NAME:TAG`` -> GGUF bytes).

A file is ``bytes``, or a ``Sparse`` one: its first bytes (a header), then zeros up to a size,
so that a multi-GiB model can be served without holding it. Every request is recorded
(method, path, Range header) and the body bytes sent are counted.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass(frozen=True)
class Sparse:
    """A file of ``size`` bytes: ``head``, then zeros."""

    head: bytes
    size: int

    def __len__(self) -> int:
        return self.size

    def slice(self, start: int, end: int) -> bytes:
        part = self.head[start:end]
        return part + bytes(max(0, min(end, self.size) - max(start, len(self.head))))


Content = bytes | Sparse


def _slice(data: Content, start: int, end: int) -> bytes:
    return data.slice(start, end) if isinstance(data, Sparse) else data[start:end]


@dataclass
class FileServer:
    files: dict[str, Content] = field(default_factory=dict)
    repos: dict[str, dict[str, dict[str, Content]]] = field(default_factory=dict)
    ollama: dict[str, Content] = field(default_factory=dict)
    ranges: bool = True
    url: str = ""
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    sent: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def file_url(self, path: str) -> str:
        return f"{self.url}/files/{path}"

    def count(self, n: int) -> None:
        with self._lock:
            self.sent += n


def _digest(data: Content) -> str:
    raw = data.head + str(data.size).encode() if isinstance(data, Sparse) else data
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _handler(server: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            split = urlsplit(self.path)
            path = unquote(split.path)
            server.requests.append(("GET", path, self.headers.get("Range")))
            parts = path.strip("/").split("/")
            if parts[0] == "files":
                return self._file(server.files.get("/".join(parts[1:])))
            if parts[:2] == ["api", "models"] and len(parts) == 6 and parts[4] == "revision":
                return self._model_info("/".join(parts[2:4]), parts[5])
            if len(parts) >= 5 and parts[2] == "resolve":
                commits = server.repos.get("/".join(parts[:2]), {})
                return self._file(commits.get(parts[3], {}).get("/".join(parts[4:])))
            if parts[0] == "v2" and len(parts) == 5:
                return self._ollama(f"{parts[1]}/{parts[2]}", parts[3], parts[4])
            self._send(404, b'{"error": "not found"}', "application/json")

        def _model_info(self, repo: str, revision: str) -> None:
            commits = server.repos.get(repo)
            if commits is None:
                self.send_response(401)
                self.send_header("X-Error-Code", "RepoNotFound")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")
                return
            commit = next(iter(commits)) if revision == "main" else revision
            files = commits[commit]
            body = {
                "id": repo,
                "modelId": repo,
                "sha": commit,
                "private": False,
                "siblings": [{"rfilename": p, "size": len(d)} for p, d in sorted(files.items())],
            }
            self._send(200, json.dumps(body).encode(), "application/json")

        def _ollama(self, name: str, kind: str, ref: str) -> None:
            if kind == "manifests":
                data = server.ollama.get(f"{name}:{ref}")
                if data is None:
                    return self._send(404, b'{"errors": [{"code": "MANIFEST_UNKNOWN"}]}',
                                      "application/json")
                manifest = {
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                    "layers": [
                        {"mediaType": "application/vnd.ollama.image.template",
                         "digest": _digest(b"{{ .Prompt }}"), "size": 13},
                        {"mediaType": "application/vnd.ollama.image.model",
                         "digest": _digest(data), "size": len(data)},
                    ],
                }
                return self._send(200, json.dumps(manifest).encode(), "application/json")
            blobs = {_digest(d): d for d in server.ollama.values()}
            self._file(blobs.get(ref))

        def _file(self, data: Content | None) -> None:
            if data is None:
                return self._send(404, b"not found", "text/plain")
            match = _RANGE.match(self.headers.get("Range") or "")
            if not server.ranges or match is None:
                return self._send(200, data, "application/octet-stream", ranges=server.ranges)
            start = int(match.group(1))
            end = min(int(match.group(2)) if match.group(2) else len(data) - 1, len(data) - 1)
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = _slice(data, start, end + 1)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self._write(body)

        def _send(self, status: int, body: Content, kind: str, ranges: bool = False) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            if ranges:
                self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            self._write(body)

        def _write(self, body: Content) -> None:
            try:
                for start in range(0, len(body), 64 * 1024):  # a client may hang up early
                    chunk = _slice(body, start, start + 64 * 1024)
                    self.wfile.write(chunk)
                    server.count(len(chunk))
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler


@contextmanager
def serve(server: FileServer) -> Iterator[FileServer]:
    """Run ``server`` on 127.0.0.1 (a free port) while the block runs."""
    http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    server.url = f"http://127.0.0.1:{http.server_address[1]}"
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        http.shutdown()
        http.server_close()
        thread.join(timeout=5)
