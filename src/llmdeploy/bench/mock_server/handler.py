"""One mock-server connection: parse each request, route it, and answer on absolute timers
(content chunk ``k`` leaves at ``received + ttft + k * itl``), with the faults and server
behaviours of :class:`~llmdeploy.bench.mock_server.config.MockConfig`."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from llmdeploy.bench.mock_server.config import Stats
from llmdeploy.bench.mock_server.responses import STREAM_HEAD, Generation

if TYPE_CHECKING:
    from llmdeploy.bench.mock_server.server import MockServer
    from llmdeploy.bench.mock_server.wire import Wire

__all__ = ["Conn"]


class Conn:
    def __init__(self, server: MockServer) -> None:
        self.server = server
        self.cfg = server.config
        self.transport: Wire | None = None
        self.buf = b""
        self.busy = False
        self.timer: asyncio.TimerHandle | None = None
        self.close_after = False
        self.arrived = 0.0  # when the last bytes came in (loop clock)
        self.queued = False  # waiting for the server's deferred parse pass

    def connection_made(self, transport: Wire) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
            self.server.stats.requests_processing -= 1
        self.transport = None

    def data_received(self, data: bytes, t: float) -> None:
        # Stamp and buffer only: the parse runs after every read of this loop iteration.
        self.arrived = t
        self.buf += data
        if not self.busy and not self.queued:
            self.queued = True
            self.server.defer_parse(self)

    def parse_queued(self) -> None:
        self.queued = False
        if not self.busy and self.transport is not None:
            self._try_request(self.arrived)

    def _try_request(self, received: float) -> None:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buf[:end].decode("latin-1")
        lines = head.split("\r\n")
        try:
            method, target, _ = lines[0].split(" ", 2)
        except ValueError:
            self._send_simple(400, b'{"error":"bad request line"}')
            return
        headers: dict[str, str] = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        length = int(headers.get("content-length", "0") or 0)
        if len(self.buf) < end + 4 + length:
            return
        body = self.buf[end + 4 : end + 4 + length]
        self.buf = self.buf[end + 4 + length :]
        self.close_after = headers.get("connection", "").lower() == "close"
        self.busy = True
        self._route(method, target.split("?", 1)[0], headers, body, received)

    def _finished(self) -> None:
        self.busy = False
        if self.close_after and self.transport is not None:
            self.transport.close()
            return
        if self.buf:  # a pipelined request: it starts now, when the server gets to it
            self._try_request(self.server.clock())

    def _send_simple(self, status: int, body: bytes, ctype: bytes = b"application/json") -> None:
        reason = {
            200: b"OK",
            400: b"Bad Request",
            401: b"Unauthorized",
            404: b"Not Found",
            422: b"Unprocessable Entity",
            503: b"Service Unavailable",
        }.get(status, b"Error")
        if self.transport is not None:
            self.transport.write(
                b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s"
                % (status, reason, ctype, len(body), body)
            )
        self._finished()

    # routing -------------------------------------------------------------------------
    def _route(
        self, method: str, path: str, headers: dict[str, str], body: bytes, received: float
    ) -> None:
        cfg = self.cfg
        if cfg.record_requests:
            self.server.requests.append((method, path, body))
        if method == "POST" and path == "/mock/reset":
            self.server.stats = Stats()
            self._send_simple(200, b'{"reset":true}')
            return
        openai, ollama = "openai" in cfg.apis, "ollama" in cfg.apis
        if method == "GET":
            if path == "/metrics":
                self._send_simple(200, self.server.metrics_text(), b"text/plain; version=0.0.4")
            elif path in ("/health", "/"):
                self._send_simple(200, b'{"status":"ok"}')
            elif path == "/v1/models" and openai:
                self._send_simple(200, json.dumps({"data": [{"id": cfg.model}]}).encode())
            elif path == "/api/tags" and ollama:
                self._send_simple(200, json.dumps({"models": [{"name": cfg.model}]}).encode())
            else:
                self._send_simple(404, b"404 page not found", b"text/plain")
            return
        if cfg.api_key and headers.get("authorization") != f"Bearer {cfg.api_key}":
            self._send_simple(401, b'{"error":{"message":"invalid api key"}}')
            return
        kind = {
            "/v1/chat/completions": "chat" if openai else None,
            "/v1/completions": "completions" if openai else None,
            "/api/chat": "ollama-chat" if ollama else None,
            "/api/generate": "ollama-generate" if ollama else None,
        }.get(path)
        if method != "POST" or kind is None:
            self._send_simple(404, b"404 page not found", b"text/plain")
            return
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            self._send_simple(400, b'{"error":{"message":"body is not JSON"}}')
            return
        if not isinstance(req, dict):
            self._send_simple(400, b'{"error":{"message":"body is not a JSON object"}}')
            return
        if self._refuse(req):
            return
        stats = self.server.stats
        stats.requests_total += 1
        if cfg.fail_after is not None and stats.requests_total > cfg.fail_after:
            stats.errors_total += 1
            self._send_simple(503, b'{"error":{"message":"engine is dead","code":503}}')
            return
        if cfg.error_rate > 0 and self.server.rng.random() < cfg.error_rate:
            stats.errors_total += 1
            self._send_simple(500, b'{"error":{"message":"injected failure"}}')
            return
        if cfg.fault == "html":
            self._send_simple(200, b"<html><body><h1>Welcome</h1></body></html>", b"text/html")
            return
        self._generate(kind, req, received)

    def _refuse(self, req: dict[str, Any]) -> bool:
        """Answer the errors a strict server gives before generating; True when it did."""
        cfg = self.cfg
        if cfg.strict_model and req.get("model") != cfg.model:
            msg = f"The model `{req.get('model')}` does not exist."
            error = {"message": msg, "type": "NotFoundError", "param": "model", "code": 404}
            self._send_simple(404, json.dumps({"error": error}).encode())
            return True
        bad = [k for k in req if k in cfg.refuse_fields]
        if not bad:
            return False
        if cfg.name_refused:
            detail = [
                {"type": "extra_forbidden", "loc": ["body", k], "msg": "Extra inputs are not "
                 "permitted"}
                for k in bad
            ]
            self._send_simple(422, json.dumps({"detail": detail}).encode())
        else:
            self._send_simple(400, b'{"error":{"message":"invalid request"}}')
        return True

    def _generate(self, kind: str, req: dict[str, Any], received: float) -> None:
        cfg = self.cfg
        loop = asyncio.get_running_loop()
        options = req.get("options") or {}
        n = int(
            req.get("max_tokens")
            or req.get("max_completion_tokens")
            or options.get("num_predict")
            or cfg.output_tokens
        )
        n = max(1, n)
        if "messages" in req:
            text = " ".join(str(m.get("content", "")) for m in req["messages"])
        else:
            text = str(req.get("prompt", ""))
        words = text.split()
        prompt_tokens = max(1, len(words))
        cached = self.server.cached_prefix(words) if cfg.prefix_cache else None
        empty = cfg.fault == "empty"
        if empty:
            n = 0
        stream = bool(req.get("stream", kind.startswith("ollama")))
        ollama = kind.startswith("ollama")
        include_usage = bool((req.get("stream_options") or {}).get("include_usage")) and cfg.usage
        gen = Generation(
            kind,
            cfg.model,
            n,
            prompt_tokens,
            include_usage and not empty,
            cfg.usage and not empty,
            eol=cfg.sse_line_ending.encode(),
            cached_tokens=cached,
        )
        self.server.stats.requests_processing += 1
        if not stream:
            delay = (cfg.ttft_ms + max(0, n - 1) * cfg.itl_ms) / 1000.0
            body = gen.whole(with_text=not empty)

            def send_whole() -> None:
                self.timer = None
                self.server.stats.requests_processing -= 1
                self.server.stats.tokens_total += n
                self._send_simple(200, body)

            if delay <= 0:
                send_whole()
            else:
                self.timer = loop.call_at(received + delay, send_whole)
            return
        assert self.transport is not None
        ctype = b"application/x-ndjson" if ollama else b"text/event-stream"
        head = STREAM_HEAD % ctype
        if n == 0 or (cfg.ttft_ms <= 0 and cfg.itl_ms <= 0 and cfg.disconnect_after is None):
            parts = [head, gen.opening()]
            parts.extend(gen.token(k) for k in range(n))
            parts.append(gen.closing())
            self.transport.write(b"".join(parts))
            self.server.stats.tokens_total += n
            self.server.stats.requests_processing -= 1
            self._finished()
            return
        self.transport.write(head + gen.opening())
        first = received + cfg.ttft_ms / 1000.0
        itl = cfg.itl_ms / 1000.0

        def emit(k: int) -> None:
            self.timer = None
            tr = self.transport
            if tr is None:
                return
            stats = self.server.stats
            stats.late(loop.time() - (first + k * itl))
            if cfg.disconnect_after is not None and k >= cfg.disconnect_after:
                stats.requests_processing -= 1
                tr.abort()
                return
            stats.tokens_total += 1
            if k == n - 1:
                tr.write(gen.token(k) + gen.closing())
                stats.requests_processing -= 1
                self._finished()
                return
            tr.write(gen.token(k))
            self.timer = loop.call_at(first + (k + 1) * itl, emit, k + 1)

        self.timer = loop.call_at(first, emit, 0)
