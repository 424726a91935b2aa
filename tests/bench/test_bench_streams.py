"""SSE and NDJSON decoding: split anywhere, CRLF, comments, final event without blank line."""

from __future__ import annotations

import pytest

from llmdeploy.bench.streams import NdjsonDecoder, SseDecoder

SSE = (
    b": keep-alive\r\n\r\n"
    b'data: {"a":1}\r\n\r\n'
    b"event: message\n"
    b'data: {"b":\n'
    b'data: 2}\n\n'
    b"data: [DONE]\n\n"
)


def _collect_sse(pieces: list[bytes]) -> list[tuple[bytes, float]]:
    got: list[tuple[bytes, float]] = []
    dec = SseDecoder(lambda p, t: got.append((p, t)))
    for i, piece in enumerate(pieces):
        dec.feed(piece, float(i))
    dec.close(99.0)
    return got


def test_sse_whole_body_yields_events_in_order() -> None:
    got = _collect_sse([SSE])
    assert [p for p, _ in got] == [b'{"a":1}', b'{"b":\n2}', b"[DONE]"]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 16])
def test_sse_split_at_any_boundary_gives_same_events(size: int) -> None:
    pieces = [SSE[i : i + size] for i in range(0, len(SSE), size)]
    assert [p for p, _ in _collect_sse(pieces)] == [b'{"a":1}', b'{"b":\n2}', b"[DONE]"]


def test_sse_event_is_stamped_with_time_of_fragment_that_completed_it() -> None:
    got = _collect_sse([b'data: {"x"', b":1}\n", b"\n"])
    assert got == [(b'{"x":1}', 2.0)]


def test_sse_final_event_without_blank_line_is_flushed_on_close() -> None:
    got = _collect_sse([b"data: [DONE]"])
    assert got == [(b"[DONE]", 99.0)]


def test_ndjson_split_lines_and_blank_lines() -> None:
    got: list[bytes] = []
    dec = NdjsonDecoder(lambda p, t: got.append(p))
    body = b'{"a":1}\n\n{"b":2}\r\n{"c":3}'
    for i in range(len(body)):
        dec.feed(body[i : i + 1], 0.0)
    dec.close(1.0)
    assert got == [b'{"a":1}', b'{"b":2}', b'{"c":3}']


EVENTS = [b'{"a":1}', b'{"b":\n2}', b"[DONE]"]


def _framed(eol: bytes) -> bytes:
    return (
        b": keep-alive" + eol + eol
        + b"id: 1" + eol + b'data:{"a":1}' + eol + eol
        + b"event: message" + eol + b'data: {"b":' + eol + b"data: 2}" + eol + eol
        + b"data: [DONE]" + eol + eol
    )


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_sse_every_line_ending_split_anywhere(eol: bytes, size: int) -> None:
    body = _framed(eol)
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    assert [p for p, _ in _collect_sse(pieces)] == EVENTS


def test_sse_crlf_split_between_fragments_is_one_line_end() -> None:
    # "\r" ends one fragment and "\n" starts the next: one line end, not a blank line that
    # would cut the two data lines of one event apart
    got = _collect_sse([b'data: {"b":\r', b'\ndata: 2}\r', b"\n\r", b"\n"])
    assert [p for p, _ in got] == [b'{"b":\n2}']


def test_sse_mixed_line_endings_and_byte_order_mark() -> None:
    body = b'\xef\xbb\xbfdata: {"a":1}\r\n\ndata: [DONE]\r\r'
    for size in (1, 2, len(body)):
        pieces = [body[i : i + size] for i in range(0, len(body), size)]
        assert [p for p, _ in _collect_sse(pieces)] == [b'{"a":1}', b"[DONE]"]


def test_sse_field_name_alone_is_an_empty_data_line() -> None:
    assert [p for p, _ in _collect_sse([b"data\ndata: x\n\n"])] == [b"\nx"]
