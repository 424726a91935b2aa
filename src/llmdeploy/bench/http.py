"""A lean HTTP/1.1 client on ``asyncio.Protocol``, built for measuring, not for features.

Why not httpx or aiohttp: the bench client must not eat the CPU it measures. Reading the
socket through a protocol callback lets every body fragment be stamped with the monotonic
clock the moment the event loop hands it over, without a coroutine wake-up in between, and
costs a fraction of the CPU per request (figures in ``docs/bench.md``).

Supported: ``http://`` and ``https://``, keep-alive connection reuse, ``Content-Length``,
``Transfer-Encoding: chunked`` and read-until-close bodies. Not supported (not needed for
inference servers): redirects, compression, proxies, HTTP/2, ``100 Continue``.

Failures are reported as :class:`RequestFailure` with a short ``cause`` used for the
error-by-cause counts: ``connect``, ``disconnect``, ``timeout``, ``protocol``.
"""

from __future__ import annotations

import asyncio
import os
import ssl as _ssl
import time
from typing import Protocol, cast
from urllib.parse import urlsplit

_monotonic = time.monotonic
_os_write = os.write

__all__ = ["BodySink", "HttpClient", "RequestFailure"]


class RequestFailure(Exception):
    """One request failed; ``cause`` is a short category counted in the report."""

    def __init__(self, cause: str, detail: str) -> None:
        super().__init__(f"{cause}: {detail}")
        self.cause = cause
        self.detail = detail


class BodySink(Protocol):
    """Receives one response: the status, each body fragment with its arrival time, the end."""

    def on_status(self, status: int) -> None: ...

    def on_body(self, data: bytes, t: float) -> None: ...

    def on_end(self, t: float) -> None: ...


_MODE_LENGTH = 0
_MODE_CHUNKED = 1
_MODE_CLOSE = 2

_CH_SIZE = 0
_CH_DATA = 1
_CH_DATA_END = 2
_CH_TRAILER = 3


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying at most one exchange at a time."""

    def __init__(self, pool: HttpClient) -> None:
        self._pool = pool
        self.transport: asyncio.Transport | None = None
        self._fd = -1  # the plain-TCP socket, written directly (see start())
        self.closed = False
        self._sink: BodySink | None = None
        self._future: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._reset()

    def _reset(self) -> None:
        self.got_bytes = False
        self._buf = b""
        self._in_headers = True
        self._mode = _MODE_CLOSE
        self._remaining = 0
        self._chunk_state = _CH_SIZE
        self._keep_alive = True
        self._head_request = False

    # asyncio.Protocol callbacks -------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        if self._pool._ssl is None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                self._fd = sock.fileno()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._future is not None and not self._future.done():
            if self._in_headers is False and self._mode == _MODE_CLOSE:
                self._finish(_monotonic())
            else:
                detail = str(exc) if exc else "server closed the connection mid-response"
                self._fail(RequestFailure("disconnect", detail))

    def data_received(self, data: bytes) -> None:
        t = _monotonic()
        self.got_bytes = True
        if self._future is None or self._sink is None:
            # Bytes with no exchange in flight: the server is confused; drop the connection.
            self._close()
            return
        try:
            if self._in_headers:
                data = self._parse_head(data)
                if self._in_headers or self._future is None:
                    return
            if data:
                self._feed_body(data, t)
        except RequestFailure as exc:
            self._fail(exc)
        except Exception as exc:  # a sink bug must not kill the run
            self._fail(RequestFailure("protocol", f"{type(exc).__name__}: {exc}"))

    # response parsing -------------------------------------------------------------
    def _parse_head(self, data: bytes) -> bytes:
        buf = self._buf + data if self._buf else data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > 65536:
                raise RequestFailure("protocol", "response headers larger than 64 KiB")
            self._buf = buf
            return b""
        self._buf = b""
        head = buf[:end].decode("latin-1")
        rest = buf[end + 4 :]
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise RequestFailure("protocol", f"bad status line {lines[0][:80]!r}")
        try:
            status = int(parts[1])
        except ValueError as exc:
            raise RequestFailure("protocol", f"bad status line {lines[0][:80]!r}") from exc
        if 100 <= status < 200:  # interim response: skip it, parse the real one
            return self._parse_head(rest) if rest else b""
        length: int | None = None
        chunked = False
        keep_alive = parts[0] == "HTTP/1.1"
        for line in lines[1:]:
            name, _, value = line.partition(":")
            lname = name.strip().lower()
            if lname == "content-length":
                length = int(value.strip())
            elif lname == "transfer-encoding":
                chunked = "chunked" in value.lower()
            elif lname == "connection":
                v = value.strip().lower()
                if v == "close":
                    keep_alive = False
                elif v == "keep-alive":
                    keep_alive = True
        self._in_headers = False
        self._keep_alive = keep_alive
        assert self._sink is not None
        self._sink.on_status(status)
        if chunked:
            self._mode = _MODE_CHUNKED
            self._chunk_state = _CH_SIZE
        elif length is not None:
            self._mode = _MODE_LENGTH
            self._remaining = length
            if length == 0 or self._head_request or status in (204, 304):
                self._finish(_monotonic())
                return b""
        else:
            self._mode = _MODE_CLOSE
            self._keep_alive = False
        return rest

    def _feed_body(self, data: bytes, t: float) -> None:
        sink = self._sink
        assert sink is not None
        mode = self._mode
        if mode == _MODE_LENGTH:
            n = len(data)
            if n >= self._remaining:
                sink.on_body(data[: self._remaining], t)
                self._remaining = 0
                self._finish(t)
            else:
                self._remaining -= n
                sink.on_body(data, t)
        elif mode == _MODE_CLOSE:
            sink.on_body(data, t)
        else:
            self._feed_chunked(data, t)

    def _feed_chunked(self, data: bytes, t: float) -> None:
        sink = self._sink
        assert sink is not None
        buf = self._buf + data if self._buf else data
        self._buf = b""
        pos = 0
        n = len(buf)
        while pos < n:
            state = self._chunk_state
            if state == _CH_DATA:
                take = min(self._remaining, n - pos)
                sink.on_body(buf[pos : pos + take], t)
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._chunk_state = _CH_DATA_END
            elif state == _CH_SIZE:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    self._buf = buf[pos:]
                    return
                size_text = buf[pos:eol].split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError as exc:
                    raise RequestFailure("protocol", f"bad chunk size {size_text[:20]!r}") from exc
                pos = eol + 2
                if size == 0:
                    self._chunk_state = _CH_TRAILER
                else:
                    self._remaining = size
                    self._chunk_state = _CH_DATA
            elif state == _CH_DATA_END:
                if n - pos < 2:
                    self._buf = buf[pos:]
                    return
                pos += 2
                self._chunk_state = _CH_SIZE
            else:  # trailer section: lines until an empty one
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    self._buf = buf[pos:]
                    return
                empty = eol == pos
                pos = eol + 2
                if empty:
                    self._finish(t)
                    return

    # exchange lifecycle -------------------------------------------------------------
    def start(
        self,
        payload: bytes,
        sink: BodySink,
        future: asyncio.Future[None],
        deadline: float | None,
        head: bool = False,
    ) -> None:
        self._reset()
        self._head_request = head
        self._sink = sink
        self._future = future
        if deadline is not None:
            self._timer = asyncio.get_running_loop().call_at(deadline, self._on_timeout)
        transport = self.transport
        assert transport is not None
        # uvloop queues transport.write() until the end of the loop iteration, so in a burst of
        # sends the request stamped first would leave last, after every other task's work,
        # and its TTFT would include that wait. With nothing buffered (always so between
        # exchanges), writing the socket directly sends the bytes now, in order.
        fd = self._fd
        if fd >= 0 and not transport.get_write_buffer_size():
            try:
                sent = _os_write(fd, payload)
            except OSError:  # EAGAIN, or a dead socket: the transport reports it as usual
                sent = 0
            if sent < len(payload):
                transport.write(payload[sent:] if sent else payload)
        else:
            transport.write(payload)

    def _on_timeout(self) -> None:
        self._timer = None
        self._fail(RequestFailure("timeout", "no complete response before the request timeout"))

    def _finish(self, t: float) -> None:
        sink, fut = self._sink, self._future
        self._clear()
        if sink is not None:
            try:
                sink.on_end(t)
            except RequestFailure as exc:
                if fut is not None and not fut.done():
                    fut.set_exception(exc)
                self._close()
                return
        if fut is not None and not fut.done():
            fut.set_result(None)
        if self._keep_alive and not self.closed:
            self._pool._release(self)
        else:
            self._close()

    def _fail(self, exc: RequestFailure) -> None:
        fut = self._future
        self._clear()
        self._close()
        if fut is not None and not fut.done():
            fut.set_exception(exc)

    def _clear(self) -> None:
        self._sink = None
        self._future = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class HttpClient:
    """A keep-alive connection pool for one origin (scheme, host, port)."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: dict[str, str] | None = None,
        connect_timeout_s: float = 10.0,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl: _ssl.SSLContext | None = (
            _ssl.create_default_context() if parts.scheme == "https" else None
        )
        host_header = self.host if parts.port is None else f"{self.host}:{self.port}"
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._head_tail = f"Host: {host_header}\r\n{extra}".encode("latin-1")
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()
        self.connect_timeout_s = connect_timeout_s
        self.connections_opened = 0
        self.reused_ok = 0  # exchanges that succeeded on a reused connection
        self.stale_closes = 0  # reused connections the server had already closed
        self._reuse = True

    def _release(self, conn: _Connection) -> None:
        if self._reuse:
            self._idle.append(conn)
        else:
            conn._close()
            self._all.discard(conn)

    async def _acquire(self, fresh: bool = False) -> tuple[_Connection, bool]:
        idle = self._idle
        while idle and not fresh:
            conn = idle.pop()
            if not conn.closed:
                return conn, True
            self._all.discard(conn)
        loop = asyncio.get_running_loop()
        try:
            _, proto = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(self), self.host, self.port, ssl=self._ssl
                ),
                self.connect_timeout_s,
            )
        except (OSError, TimeoutError) as exc:
            raise RequestFailure("connect", f"{type(exc).__name__}: {exc}") from exc
        self.connections_opened += 1
        self._all.add(proto)
        return proto, False

    def build(self, method: str, path: str, body: bytes | None = None) -> bytes:
        """The raw request bytes; build once and send many times to save CPU."""
        head = f"{method} {path} HTTP/1.1\r\n".encode("latin-1") + self._head_tail
        if body is None:
            return head + b"\r\n"
        return (
            head
            + b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )

    async def send(
        self,
        payload: bytes,
        sink: BodySink,
        *,
        timeout_s: float | None = None,
        head: bool = False,
    ) -> None:
        """Send prebuilt request bytes; the sink sees the response. Raises RequestFailure.

        ``timeout_s`` bounds the whole exchange (connect, send, full response)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        for attempt in (0, 1):
            if (self._idle and attempt == 0) or deadline is None:
                conn, reused = await self._acquire(fresh=attempt > 0)
            else:
                try:
                    conn, reused = await asyncio.wait_for(
                        self._acquire(fresh=attempt > 0), max(0.0, deadline - loop.time())
                    )
                except TimeoutError as exc:
                    raise RequestFailure("timeout", "connect took longer than the timeout") from exc
            fut: asyncio.Future[None] = loop.create_future()
            conn.start(payload, sink, fut, deadline, head)
            try:
                await fut
            except RequestFailure as exc:
                # A keep-alive connection the server closed just before we reused it: no byte
                # came back, so the server never saw the request. Resend once on a new one.
                if attempt == 0 and reused and exc.cause == "disconnect" and not conn.got_bytes:
                    self.stale_closes += 1
                    if self.stale_closes >= 3 and self.reused_ok == 0:
                        self._reuse = False  # this server closes after every response
                    continue
                raise
            if reused:
                self.reused_ok += 1
            return

    def close(self) -> None:
        for conn in list(self._all):
            conn._close()
        self._all.clear()
        self._idle.clear()


class BufferSink:
    """Collects a whole response body (for setup calls such as /v1/models and /metrics)."""

    def __init__(self) -> None:
        self.status = 0
        self.chunks: list[bytes] = []

    def on_status(self, status: int) -> None:
        self.status = status

    def on_body(self, data: bytes, t: float) -> None:
        self.chunks.append(data)

    def on_end(self, t: float) -> None:
        pass

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


async def fetch(
    client: HttpClient, method: str, path: str, body: bytes | None = None, timeout_s: float = 10.0
) -> tuple[int, bytes]:
    """One small request; returns (status, body). Raises RequestFailure."""
    sink = BufferSink()
    await client.send(client.build(method, path, body), sink, timeout_s=timeout_s)
    return sink.status, sink.body
