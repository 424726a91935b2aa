"""Incremental decoders for streamed bodies: Server-Sent Events and newline-delimited JSON.

Both take bytes as they arrive (split anywhere, even inside a line, a CRLF pair or a UTF-8
character) and hand complete payloads, with the arrival time of the fragment that completed
them, to a callback. SSE lines may end in ``\\n``, ``\\r\\n`` or a lone ``\\r`` (every ending
the event-stream format allows); NDJSON lines in ``\\n`` or ``\\r\\n``.
"""

from __future__ import annotations

from collections.abc import Callable

EventCallback = Callable[[bytes, float], None]

__all__ = ["NdjsonDecoder", "SseDecoder"]

_BOM = b"\xef\xbb\xbf"


def _complete_lines(decoder: SseDecoder | NdjsonDecoder, chunk: bytes) -> list[bytes] | None:
    """The lines ``chunk`` completes (LF-split, without the LF), keeping the unfinished rest
    in the decoder's buffer; None when it completes none."""
    buf = decoder._buf + chunk if decoder._buf else chunk
    if b"\n" not in buf:
        decoder._buf = buf
        return None
    lines = buf.split(b"\n")
    decoder._buf = lines.pop()
    return lines


class SseDecoder:
    """Server-Sent Events: ``data:`` lines joined by ``\\n``, dispatched at a blank line.

    Comment lines (``:`` keep-alives) and other fields (``event:``, ``id:``, ``retry:``) are
    ignored; a UTF-8 byte-order mark before the first line is skipped. An event left without
    its closing blank line is dispatched by :meth:`close`.
    """

    __slots__ = ("_buf", "_cr", "_data", "_emit", "_pending", "_slow", "_started")

    def __init__(self, emit: EventCallback) -> None:
        self._emit = emit
        self._buf = b""
        self._data: list[bytes] = []
        self._cr = False  # the last fragment ended in CR: an LF starting the next one pairs it
        self._started = False  # the byte-order-mark check is done
        self._pending = b""  # the start of a possible byte-order mark
        self._slow = True  # the next fragment needs _normalise (start of body, or after CR)

    def _normalise(self, chunk: bytes) -> bytes:
        """Rare cases, off the fast path: a BOM at the start, CR or CRLF line endings (a CR
        ending one fragment already ended a line, so an LF starting the next is its pair)."""
        if not self._started:
            head = self._pending + chunk
            if len(head) < 3 and _BOM.startswith(head):
                self._pending = head  # maybe a byte-order mark split over fragments
                return b""
            self._started, self._pending = True, b""
            chunk = head[3:] if head.startswith(_BOM) else head
        if self._cr and chunk[:1] == b"\n":
            chunk = chunk[1:]
        if b"\r" in chunk:
            self._cr = chunk[-1:] == b"\r"
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        else:
            self._cr = False
        self._slow = self._cr
        return chunk

    def feed(self, chunk: bytes, t: float) -> None:
        if self._slow or b"\r" in chunk:
            chunk = self._normalise(chunk)
        lines = _complete_lines(self, chunk)
        if lines is None:
            return
        data = self._data
        for line in lines:
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
            elif line == b"data":  # a field name alone: an empty data line
                data.append(b"")
            # ':' comments and other fields are ignored

    def close(self, t: float) -> None:
        """End of body: flush a final event that had no blank line after it."""
        if self._buf or self._pending:
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
        lines = _complete_lines(self, chunk)
        if lines is None:
            return
        for line in lines:
            line = line.strip()
            if line:
                self._emit(line, t)

    def close(self, t: float) -> None:
        line = self._buf.strip()
        self._buf = b""
        if line:
            self._emit(line, t)
