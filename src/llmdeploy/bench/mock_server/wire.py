"""One accepted socket of the mock server, read with ``recvmsg`` for the kernel's receive
timestamps (``SO_TIMESTAMPNS`` on Linux), so a request is stamped when it arrived, not when
the server got round to reading it."""

from __future__ import annotations

import asyncio
import socket
import struct
import sys
import time
from typing import TYPE_CHECKING, Any

from llmdeploy.bench.mock_server.handler import Conn

if TYPE_CHECKING:
    from llmdeploy.bench.mock_server.server import MockServer

__all__ = ["SO_TIMESTAMPNS", "Wire"]

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35 if sys.platform == "linux" else None)
_TIMESPEC = struct.Struct("@qq")
_ANC_SPACE = socket.CMSG_SPACE(_TIMESPEC.size)
_READ_SIZE = 262144


class Wire:
    """One accepted socket, read with ``recvmsg`` for the kernel's receive timestamps.

    Implements the few transport calls ``Conn`` makes (``write``, ``close``, ``abort``,
    ``get_extra_info``) on the loop's ``add_reader``/``add_writer``."""

    def __init__(self, server: MockServer, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.fd = sock.fileno()
        self.loop = asyncio.get_running_loop()
        self.out: list[bytes] = []
        self.closing = False
        self.closed = False
        self.conn = Conn(server)
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
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
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
