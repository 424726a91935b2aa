"""A lean HTTP/1.1 client on ``asyncio.Protocol``, built for measuring, not for features.

Why not httpx or aiohttp: the bench client must not eat the CPU it measures. Reading the
socket through a protocol callback lets every body fragment be stamped with the monotonic
clock the moment the event loop hands it over, without a coroutine wake-up in between, and
costs a fraction of the CPU per request (figures in ``docs/bench.md``).

Supported: ``http://`` and ``https://``, keep-alive connection reuse, ``Content-Length``,
``Transfer-Encoding: chunked`` and read-until-close bodies. Not supported (not needed for
inference servers): redirects, compression, proxies, HTTP/2, ``100 Continue``.

Failures are reported as :class:`RequestFailure` with a short ``cause`` used for the
error-by-cause counts: ``connect``, ``disconnect``, ``timeout``, ``protocol``. One connection
and its response parser are in :mod:`llmdeploy.bench.http_connection`; the pool is here.
"""

from __future__ import annotations

import asyncio
import ssl as _ssl
from urllib.parse import urlsplit

from llmdeploy.bench.http_connection import BodySink, Connection, RequestFailure

__all__ = ["BodySink", "BufferSink", "HttpClient", "RequestFailure", "fetch"]


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
        self._idle: list[Connection] = []
        self._all: set[Connection] = set()
        self.connect_timeout_s = connect_timeout_s
        self.connections_opened = 0
        self.reused_ok = 0  # exchanges that succeeded on a reused connection
        self.stale_closes = 0  # reused connections the server had already closed
        self._reuse = True

    def _release(self, conn: Connection) -> None:
        if self._reuse:
            self._idle.append(conn)
        else:
            conn._close()
            self._all.discard(conn)

    async def _acquire(self, fresh: bool = False) -> tuple[Connection, bool]:
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
                    lambda: Connection(self), self.host, self.port, ssl=self._ssl
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
