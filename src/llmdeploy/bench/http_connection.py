"""One keep-alive HTTP/1.1 connection of the bench client: writes a request, parses the
response as it arrives and hands each body fragment, stamped on arrival, to a sink.

Failures are :class:`RequestFailure` with a short ``cause`` used for the error-by-cause
counts: ``connect``, ``disconnect``, ``timeout``, ``protocol``.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    from llmdeploy.bench.http import HttpClient

_monotonic = time.monotonic
_os_write = os.write

__all__ = ["BodySink", "Connection", "RequestFailure"]


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


class Connection(asyncio.Protocol):
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
