"""Incremental decoders for streamed bodies: Server-Sent Events and newline-delimited JSON.

Both take bytes as they arrive (split anywhere, even inside a line or a UTF-8 character) and
hand complete payloads, with the arrival time of the fragment that completed them, to a
callback. Lines may end in ``\\n`` or ``\\r\\n``.
"""

from __future__ import annotations

from collections.abc import Callable

EventCallback = Callable[[bytes, float], None]

__all__ = ["NdjsonDecoder", "SseDecoder"]


class SseDecoder:
    """Server-Sent Events: ``data:`` lines joined by ``\\n``, dispatched at a blank line.

    Comment lines (``:`` keep-alives) and other fields (``event:``, ``id:``, ``retry:``) are
    ignored. An event left without its closing blank line is dispatched by :meth:`close`.
    """

    __slots__ = ("_buf", "_data", "_emit")

    def __init__(self, emit: EventCallback) -> None:
        self._emit = emit
        self._buf = b""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes, t: float) -> None:
        buf = self._buf + chunk if self._buf else chunk
        if b"\n" not in buf:
            self._buf = buf
            return
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        data = self._data
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if data:
                    payload = data[0] if len(data) == 1 else b"\n".join(data)
                    data.clear()
                    self._emit(payload, t)
                continue
            if line.startswith(b"data:"):
                value = line[5:]
                if value.startswith(b" "):
                    value = value[1:]
                data.append(value)
            # ':' comments and other fields are ignored

    def close(self, t: float) -> None:
        """End of body: flush a final event that had no blank line after it."""
        if self._buf:
            self.feed(b"\n", t)
        if self._data:
            payload = b"\n".join(self._data)
            self._data.clear()
            self._emit(payload, t)


class NdjsonDecoder:
    """Newline-delimited JSON (Ollama): every non-blank line is one payload."""

    __slots__ = ("_buf", "_emit")

    def __init__(self, emit: EventCallback) -> None:
        self._emit = emit
        self._buf = b""

    def feed(self, chunk: bytes, t: float) -> None:
        buf = self._buf + chunk if self._buf else chunk
        if b"\n" not in buf:
            self._buf = buf
            return
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        for line in lines:
            line = line.strip()
            if line:
                self._emit(line, t)

    def close(self, t: float) -> None:
        line = self._buf.strip()
        self._buf = b""
        if line:
            self._emit(line, t)
