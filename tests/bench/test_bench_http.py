"""The raw HTTP/1.1 client against small scripted servers: framing, keep-alive, failures."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from llmdeploy.bench.http import BufferSink, HttpClient, RequestFailure, fetch

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _with_server(handler: Handler, body: Callable[[str], Awaitable[None]]) -> None:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await body(f"http://127.0.0.1:{port}")
    finally:
        server.close()


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    if length:
        await reader.readexactly(length)
    return head


def test_chunked_body_split_into_single_bytes_and_keep_alive_reuse() -> None:
    response = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )
    connections = 0

    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        for _ in range(2):
            await _read_request(r)
            for i in range(len(response)):
                w.write(response[i : i + 1])
                await w.drain()
                await asyncio.sleep(0)
        w.close()

    async def body(url: str) -> None:
        client = HttpClient(url)
        for _ in range(2):
            status, data = await fetch(client, "POST", "/x", b"{}")
            assert (status, data) == (200, b"hello world")
        assert client.connections_opened == 1
        client.close()

    asyncio.run(_with_server(handler, body))
    assert connections == 1


def test_content_length_and_connection_close_open_a_new_connection() -> None:
    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await _read_request(r)
        w.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope")
        await w.drain()
        w.close()

    async def body(url: str) -> None:
        client = HttpClient(url)
        assert await fetch(client, "GET", "/a") == (404, b"nope")
        assert await fetch(client, "GET", "/b") == (404, b"nope")
        assert client.connections_opened == 2
        client.close()

    asyncio.run(_with_server(handler, body))


def test_body_until_close_without_length() -> None:
    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await _read_request(r)
        w.write(b"HTTP/1.0 200 OK\r\n\r\nraw body")
        await w.drain()
        w.close()

    async def body(url: str) -> None:
        client = HttpClient(url)
        assert await fetch(client, "GET", "/") == (200, b"raw body")
        client.close()

    asyncio.run(_with_server(handler, body))


def test_disconnect_mid_body_and_timeout_and_refused_have_causes() -> None:
    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        head = await _read_request(r)
        if b"/cut" in head:
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
            await w.drain()
            w.transport.abort()
        else:  # /slow: never answer
            await asyncio.sleep(5)

    async def body(url: str) -> None:
        client = HttpClient(url)
        with pytest.raises(RequestFailure) as cut:
            await client.send(client.build("GET", "/cut"), BufferSink(), timeout_s=5)
        assert cut.value.cause == "disconnect"
        with pytest.raises(RequestFailure) as slow:
            await client.send(client.build("GET", "/slow"), BufferSink(), timeout_s=0.2)
        assert slow.value.cause == "timeout"
        client.close()

    asyncio.run(_with_server(handler, body))

    async def refused() -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        client = HttpClient(f"http://127.0.0.1:{port}")
        with pytest.raises(RequestFailure) as exc:
            await fetch(client, "GET", "/")
        assert exc.value.cause == "connect"

    asyncio.run(refused())


def test_only_http_urls() -> None:
    with pytest.raises(ValueError):
        HttpClient("ftp://127.0.0.1/")
