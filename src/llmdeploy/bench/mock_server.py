"""A mock inference server that streams with exactly injected TTFT and ITL.

Speaks OpenAI chat/completions (SSE, with a role-only first chunk as vLLM sends, and the
usage event when ``stream_options.include_usage`` is set) and Ollama ``/api/chat`` /
``/api/generate`` (NDJSON), streaming and not; plus ``/v1/models``, ``/api/tags``,
``/health`` and ``/metrics`` (``mock:*`` families).

Timing: the request is stamped with the kernel's receive time of its last bytes
(``SO_TIMESTAMPNS`` on Linux, else the time the read returned), so a burst of requests that
arrive while the server is busy, or while the scheduler has not run it yet, is still stamped
when it arrived; content chunk ``k`` (0-based) is written at ``received + ttft + k * itl`` on
absolute timers, so lateness never accumulates. Reads are cheap (stamp and buffer); requests
are parsed in one deferred pass after every read of the loop iteration.
By default the loop uses ``select()``, whose timeout has microsecond resolution (epoll and
libuv round up to whole milliseconds), so chunks leave within tens of microseconds of their
target. With ``ttft_ms = itl_ms = 0`` the whole response is written at once (an "instant"
server for measuring the client's ceiling).

Fault injection: ``error_rate`` (HTTP 500), ``disconnect_after`` (abort the connection after
that many content chunks), ``usage=False`` (never send usage; exercises the chunk-count
fallback), ``api_key`` (answer 401 without ``Authorization: Bearer <key>``).

Server behaviours seen in the field, each off by default:

* ``apis``: the APIs served (``openai`` = ``/v1/*``, ``ollama`` = ``/api/*``); both, as Ollama
  does, by default. Anything else is a 404 ``404 page not found``, as Ollama answers.
* ``strict_model``: a request naming another model gets vLLM's 404
  ``The model `X` does not exist.``.
* ``refuse_fields``: request fields a strict schema refuses with 422 in pydantic's shape
  (``extra_forbidden`` with the field in ``loc``); ``name_refused=False`` answers a bare 400
  that names no field.
* ``fault="empty"``: every 200 answer carries no text and no usage (a role-only chunk then
  ``[DONE]``; Ollama: a ``done`` line with ``eval_count`` 0); ``fault="html"``: a 200 HTML page.
* ``fail_after``: after that many generation requests, every one gets HTTP 503.
* ``sse_line_ending``: ``"\n"`` (default), ``"\r\n"`` or ``"\r"`` (all valid SSE).
* ``prefix_cache``: report cached prompt tokens (``usage.prompt_tokens_details.cached_tokens``,
  the longest word prefix shared with an earlier prompt) and ``mock:prefix_cache_*_total``.
* ``record_requests``: keep ``(method, path, body)`` of every request in ``server.requests``.

Run it: ``llmdeploy bench mock-server`` (prints ``listening http://HOST:PORT`` once ready).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import selectors
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["MockConfig", "MockServer", "running_mock_server", "serve"]


@dataclass
class MockConfig:
    ttft_ms: float = 50.0
    itl_ms: float = 10.0
    output_tokens: int = 32  # when the request sets no max_tokens / num_predict
    model: str = "mock-model"
    error_rate: float = 0.0
    disconnect_after: int | None = None
    usage: bool = True
    api_key: str | None = None
    seed: int = 0
    precise_timers: bool = True
    apis: tuple[str, ...] = ("openai", "ollama")
    strict_model: bool = False
    refuse_fields: tuple[str, ...] = ()
    name_refused: bool = True
    fault: str | None = None  # "empty" | "html"
    fail_after: int | None = None
    sse_line_ending: str = "\n"
    prefix_cache: bool = False
    record_requests: bool = False


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


class _Stats:
    MAX_SAMPLES = 500_000

    def __init__(self) -> None:
        self.requests_total = 0
        self.prefix_cache_hits = 0  # prompt words served from the mock's "cache"
        self.prefix_cache_queries = 0  # prompt words looked up
        self.requests_processing = 0
        self.tokens_total = 0
        self.errors_total = 0
        self.lateness_s: list[float] = []  # how late each timed chunk left, by the server clock

    def late(self, seconds: float) -> None:
        if len(self.lateness_s) < self.MAX_SAMPLES:
            self.lateness_s.append(seconds)


_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35 if sys.platform == "linux" else None)
_TIMESPEC = struct.Struct("@qq")
_ANC_SPACE = socket.CMSG_SPACE(_TIMESPEC.size)
_READ_SIZE = 262144


class _Wire:
    """One accepted socket, read with ``recvmsg`` for the kernel's receive timestamps.

    Implements the few transport calls ``_Conn`` makes (``write``, ``close``, ``abort``,
    ``get_extra_info``) on the loop's ``add_reader``/``add_writer``."""

    def __init__(self, server: MockServer, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.fd = sock.fileno()
        self.loop = asyncio.get_running_loop()
        self.out: list[bytes] = []
        self.closing = False
        self.closed = False
        self.conn = _Conn(server)
        self.conn.connection_made(self)
        self.loop.add_reader(self.fd, self._on_readable)

    def _on_readable(self) -> None:
        try:
            data, anc, _flags, _addr = self.sock.recvmsg(_READ_SIZE, _ANC_SPACE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.abort()
            return
        if not data:  # the client closed its side
            self.abort()
            return
        now = self.server.clock()
        t = now
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
                sec, nsec = _TIMESPEC.unpack_from(payload)
                # CLOCK_REALTIME from the kernel, moved onto the loop's monotonic clock.
                kt = (sec - (time.time() - self.server.clock())) + nsec * 1e-9
                if now - 1.0 < kt < now:
                    t = kt
        self.conn.data_received(data, t)

    def write(self, data: bytes) -> None:
        if self.closed or self.closing:
            return
        if self.out:
            self.out.append(data)
            return
        if self._send(data):
            self.loop.add_writer(self.fd, self._on_writable)

    def _on_writable(self) -> None:
        data = b"".join(self.out)
        self.out.clear()
        if self._send(data) or self.closed:
            return
        self.loop.remove_writer(self.fd)
        if self.closing:
            self.abort()

    def _send(self, data: bytes) -> bool:
        """Send what the socket takes now; True when a remainder waits in ``out``."""
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.abort()
            return False
        if sent < len(data):
            self.out.append(data[sent:])
            return True
        return False

    def close(self) -> None:
        """Close once everything written has left."""
        if self.out:
            self.closing = True
        else:
            self.abort()

    def abort(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.out.clear()
        self.loop.remove_reader(self.fd)
        self.loop.remove_writer(self.fd)
        self.sock.close()
        self.server._wires.discard(self)
        self.loop.call_soon(self.conn.connection_lost, None)  # as asyncio transports do

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            try:
                return self.sock.getpeername()
            except OSError:
                return default
        if name == "socket":
            return self.sock
        return default


class _Conn:
    def __init__(self, server: MockServer) -> None:
        self.server = server
        self.cfg = server.config
        self.transport: _Wire | None = None
        self.buf = b""
        self.busy = False
        self.timer: asyncio.TimerHandle | None = None
        self.close_after = False
        self.arrived = 0.0  # when the last bytes came in (loop clock)
        self.queued = False  # waiting for the server's deferred parse pass

    def connection_made(self, transport: _Wire) -> None:
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
            self.server.stats = _Stats()
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
        gen = _Generation(
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
        head = _STREAM_HEAD % ctype
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


class _Generation:
    """Bytes of one mock response in the shape of the API that was called."""

    def __init__(
        self,
        kind: str,
        model: str,
        n: int,
        prompt_tokens: int,
        include_usage: bool,
        usage_in_whole: bool,
        *,
        eol: bytes = b"\n",
        cached_tokens: int | None = None,
    ) -> None:
        self.kind = kind
        self.model = model
        self.n = n
        self.prompt_tokens = prompt_tokens
        self.include_usage = include_usage
        self.usage_in_whole = usage_in_whole
        self.cached_tokens = cached_tokens
        self.sse = kind in ("chat", "completions")
        self.eol = eol
        mj = json.dumps(model)
        piece = {
            "chat": '{"id":"mock","object":"chat.completion.chunk","model":MODEL,'
            '"choices":[{"index":0,"delta":{"content":" tok"},"finish_reason":null}]}',
            "completions": '{"id":"mock","object":"text_completion","model":MODEL,'
            '"choices":[{"index":0,"text":" tok","finish_reason":null}]}',
            "ollama-chat": '{"model":MODEL,"message":{"role":"assistant","content":" tok"},'
            '"done":false}',
            "ollama-generate": '{"model":MODEL,"response":" tok","done":false}',
        }[kind].replace("MODEL", mj)
        self._tok = _chunk(self._event(piece.encode()))

    def _event(self, payload: bytes) -> bytes:
        if self.sse:
            return b"data: " + payload + self.eol + self.eol
        return payload + b"\n"

    def _usage(self) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.n,
            "total_tokens": self.prompt_tokens + self.n,
        }
        if self.cached_tokens is not None:
            usage["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        return usage

    def opening(self) -> bytes:
        if self.kind == "chat":  # vLLM sends a role-only chunk first; it is not a token
            return _chunk(
                self._event(
                    b'{"id":"mock","object":"chat.completion.chunk","choices":[{"index":0,'
                    b'"delta":{"role":"assistant","content":""},"finish_reason":null}]}'
                )
            )
        return b""

    def token(self, k: int) -> bytes:
        return self._tok

    def closing(self) -> bytes:
        if self.sse:
            parts = []
            if self.include_usage:
                usage = {"id": "mock", "choices": [], "usage": self._usage()}
                parts.append(self._event(json.dumps(usage).encode()))
            parts.append(self._event(b"[DONE]"))
            return _chunk(b"".join(parts)) + b"0\r\n\r\n"
        final: dict[str, Any] = {"model": self.model, "done": True, "done_reason": "length"}
        if self.kind == "ollama-chat":
            final["message"] = {"role": "assistant", "content": ""}
        else:
            final["response"] = ""
        if self.usage_in_whole:
            final["prompt_eval_count"] = self.prompt_tokens
            final["eval_count"] = self.n
        elif self.n == 0:
            final["eval_count"] = 0  # an empty answer: Ollama counts zero tokens
        return _chunk(self._event(json.dumps(final).encode())) + b"0\r\n\r\n"

    def whole(self, with_text: bool = True) -> bytes:
        text = " tok" * self.n if with_text else ""
        obj: dict[str, Any]
        if self.kind == "chat":
            obj = {
                "id": "mock",
                "object": "chat.completion",
                "model": self.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "length",
                    }
                ]
                if with_text
                else [],
            }
        elif self.kind == "completions":
            obj = {
                "id": "mock",
                "object": "text_completion",
                "model": self.model,
                "choices": [{"index": 0, "text": text, "finish_reason": "length"}],
            }
        else:
            obj = {"model": self.model, "done": True, "done_reason": "length"}
            if self.kind == "ollama-chat":
                obj["message"] = {"role": "assistant", "content": text}
            else:
                obj["response"] = text
            if self.usage_in_whole:
                obj["prompt_eval_count"] = self.prompt_tokens
                obj["eval_count"] = self.n
            return json.dumps(obj).encode()
        if self.usage_in_whole:
            obj["usage"] = self._usage()
        return json.dumps(obj).encode()


class MockServer:
    """The mock server; ``start()``/``stop()`` on a running loop, or use a helper below."""

    def __init__(self, config: MockConfig | None = None) -> None:
        self.config = config or MockConfig()
        self.stats = _Stats()
        self.rng = random.Random(self.config.seed)
        self._listener: socket.socket | None = None
        self._wires: set[_Wire] = set()
        self.port = 0
        self._to_parse: list[_Conn] = []
        self.clock = time.monotonic  # replaced by the running loop's clock in start()
        self.requests: list[tuple[str, str, bytes]] = []  # with record_requests
        self._prompts: list[list[str]] = []  # recent prompts, for prefix_cache

    def cached_prefix(self, words: list[str]) -> int:
        """Words at the start of ``words`` shared with the most similar of the last 64
        prompts (a toy prefix cache, counted in words ~ tokens)."""
        best = 0
        for old in self._prompts:
            k = 0
            for a, b in zip(old, words, strict=False):
                if a != b:
                    break
                k += 1
            best = max(best, k)
        self._prompts.append(words)
        del self._prompts[:-64]
        self.stats.prefix_cache_hits += best
        self.stats.prefix_cache_queries += len(words)
        return best

    def defer_parse(self, conn: _Conn) -> None:
        """Parse ``conn``'s buffered request once this loop iteration's reads are done."""
        if not self._to_parse:
            asyncio.get_running_loop().call_soon(self._parse_pass)
        self._to_parse.append(conn)

    def _parse_pass(self) -> None:
        conns, self._to_parse = self._to_parse, []
        for conn in conns:
            conn.parse_queued()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        loop = asyncio.get_running_loop()
        self.clock = loop.time  # the clock the chunk timers run on
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        lsock = socket.socket(family, socket.SOCK_STREAM)
        try:
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            lsock.bind((host, port))
            lsock.listen(1024)
            lsock.setblocking(False)
        except OSError:
            lsock.close()
            raise
        self._listener = lsock
        loop.add_reader(lsock.fileno(), self._accept)
        self.port = int(lsock.getsockname()[1])
        return self.port

    def _accept(self) -> None:
        assert self._listener is not None
        for _ in range(128):
            try:
                sock, _addr = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. out of file descriptors: try again on the next wake-up
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if _SO_TIMESTAMPNS is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
            self._wires.add(_Wire(self, sock))

    async def stop(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._listener.fileno())
            self._listener.close()
            self._listener = None
        for wire in list(self._wires):
            wire.abort()
        await asyncio.sleep(0)  # let the connection_lost callbacks run

    def metrics_text(self) -> bytes:
        s = self.stats
        late = sorted(s.lateness_s)

        def q(p: float) -> float:
            return late[min(len(late) - 1, int(p * len(late)))] if late else 0.0

        return (
            "# TYPE mock:timer_lateness_p50_seconds gauge\n"
            f"mock:timer_lateness_p50_seconds {q(0.5):.9f}\n"
            "# TYPE mock:timer_lateness_p99_seconds gauge\n"
            f"mock:timer_lateness_p99_seconds {q(0.99):.9f}\n"
            "# TYPE mock:timer_lateness_max_seconds gauge\n"
            f"mock:timer_lateness_max_seconds {late[-1] if late else 0.0:.9f}\n"
            "# TYPE mock:requests_total counter\n"
            f"mock:requests_total {s.requests_total}\n"
            "# TYPE mock:errors_total counter\n"
            f"mock:errors_total {s.errors_total}\n"
            "# TYPE mock:tokens_predicted_total counter\n"
            f"mock:tokens_predicted_total {s.tokens_total}\n"
            "# TYPE mock:prefix_cache_hits_total counter\n"
            f"mock:prefix_cache_hits_total {s.prefix_cache_hits}\n"
            "# TYPE mock:prefix_cache_queries_total counter\n"
            f"mock:prefix_cache_queries_total {s.prefix_cache_queries}\n"
            "# TYPE mock:requests_processing gauge\n"
            f"mock:requests_processing {s.requests_processing}\n"
        ).encode()


def new_loop(precise_timers: bool) -> asyncio.AbstractEventLoop:
    if precise_timers:
        return asyncio.SelectorEventLoop(selectors.SelectSelector())
    return asyncio.new_event_loop()


@contextlib.contextmanager
def running_mock_server(config: MockConfig | None = None) -> Iterator[MockServer]:
    """Run a mock server on 127.0.0.1 in a background thread (for tests)."""
    server = MockServer(config)
    loop = new_loop(server.config.precise_timers)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(server.stop())
        loop.close()

    thread = threading.Thread(target=run, name="mock-server", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("mock server did not start")
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def serve(
    config: MockConfig,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until interrupted; ``on_ready(url)`` once it accepts connections (``port`` 0:
    a free port, which the URL names)."""
    server = MockServer(config)
    loop = new_loop(config.precise_timers)
    asyncio.set_event_loop(loop)
    try:
        actual = loop.run_until_complete(server.start(host, port))
        if on_ready is not None:
            on_ready(f"http://{host}:{actual}")
        loop.run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        loop.run_until_complete(server.stop())
        loop.close()
