"""The first bytes of a remote file, fetched by HTTP Range requests as a parser asks for them.

``RemotePrefix(client, url)`` is a ``read_prefix(n)`` callable for the header parsers
(``gguf_header.parse_header``, ``hf.header_from_reader``): asked for the first ``n`` bytes, it
fetches what it lacks with ``Range: bytes=START-END`` (RFC 9110, section 14), at least doubling
what it holds each time, so a header of H bytes costs about log2(H / first_bytes) requests and
at most 2 x H bytes. ``ReadStats`` counts requests and response bytes for the report.

A server that ignores the Range header answers 200 with the whole file. The body is then read
as a stream only as far as the parser needs and the connection closed: a few MiB of a
multi-GiB file, never the file. ``ReadStats.ranged`` becomes False and a note says so.

``max_bytes`` bounds what a header may take (a corrupt length field cannot make it read a
file); asking for more is a ModelError. HTTP errors and connection failures are ModelError
too (raised ``from`` the httpx exception), naming the URL without its query string.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType

import httpx

from llmdeploy.core.sizes import MIB, format_bytes
from llmdeploy.errors import ModelError
from llmdeploy.models.sources.https import display_url

FIRST_BYTES = 512 * 1024  # a small GGUF's whole header; a tokenizer-heavy one takes 4-5 doublings
MAX_HEADER_BYTES = 256 * MIB
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_UNSATISFIED = re.compile(r"^bytes \*/(\d+)$")


@dataclass
class ReadStats:
    """What reading headers cost: requests sent and response body bytes received."""

    requests: int = 0
    bytes_read: int = 0
    ranged: bool = True  # every server honoured the Range header
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


class RemotePrefix:
    """``read_prefix(n)`` over HTTP for one URL (see the module docstring). Use as a context
    manager, or call ``close()``: a server that ignored the Range header leaves a response
    open."""

    def __init__(
        self,
        client: httpx.Client,
        url: str,
        stats: ReadStats,
        *,
        headers: Mapping[str, str] | None = None,
        label: str | None = None,
        first_bytes: int = FIRST_BYTES,
        max_bytes: int = MAX_HEADER_BYTES,
    ) -> None:
        self._client = client
        self.url = url
        self.label = label or display_url(url)
        self._headers = dict(headers or {})
        self._stats = stats
        self._first = first_bytes
        self._max = max_bytes
        self._data = bytearray()
        self._eof = False
        self._stream: httpx.Response | None = None  # a 200 answer, read as far as needed
        self._chunks: Iterator[bytes] | None = None
        self.size: int | None = None  # the file's size, once a response said it

    def __enter__(self) -> RemotePrefix:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
            self._chunks = None

    def __call__(self, n: int) -> bytes:
        """The start of the file: at least ``n`` bytes (all fetched so far, which may be more),
        fewer only when the file is shorter."""
        if n > len(self._data) and not self._eof:
            if n > self._max:
                raise ModelError(
                    f"{self.label}: the header would need more than "
                    f"{format_bytes(self._max)} ({n:,} bytes); not reading further",
                    hint="the file is damaged, or its header is unusually large: download it "
                    "and plan the local file",
                )
            want = min(max(n, 2 * len(self._data), self._first), self._max)
            if self.size is not None:
                want = min(want, self.size)
            self._fill(want)
        return bytes(self._data)

    def read(self, start: int, length: int) -> bytes:
        """``length`` bytes from ``start`` (fewer at the end of the file)."""
        return self(start + length)[start : start + length]

    # --- fetching ------------------------------------------------------------------------

    def _fill(self, end: int) -> None:
        if self._chunks is not None:
            self._read_stream(end)
            return
        start = len(self._data)
        if self.size is not None and start >= self.size:
            self._eof = True
            return
        headers = self._headers | {
            "Range": f"bytes={start}-{end - 1}",
            "Accept-Encoding": "identity",  # byte ranges of the file, not of a compressed body
        }
        try:
            request = self._client.build_request("GET", self.url, headers=headers)
            response = self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise ModelError(
                f"cannot read {self.label}: {exc}",
                hint="check the URL and your network or proxy settings (HTTPS_PROXY)",
            ) from exc
        self._stats.requests += 1
        status = response.status_code
        if status == 206:
            try:
                self._partial(response, start, end)
            finally:
                response.close()
        elif status == 416:
            response.close()
            match = _UNSATISFIED.match(response.headers.get("Content-Range", ""))
            self.size = int(match.group(1)) if match else start
            self._eof = True
        elif status == 200:
            self._whole(response, start, end)
        else:
            response.close()
            raise _status_error(response, self.label)

    def _partial(self, response: httpx.Response, start: int, end: int) -> None:
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if match is None or int(match.group(1)) != start:
            raise ModelError(
                f"{self.label}: the server answered a range request with the wrong range "
                f"(Content-Range {response.headers.get('Content-Range')!r}, asked from {start})"
            )
        if match.group(3) != "*":
            self.size = int(match.group(3))
        limit = end - start
        body = bytearray()
        try:
            for chunk in response.iter_raw():
                body += chunk
                self._stats.bytes_read += len(chunk)
                if len(body) >= limit:
                    break
        except httpx.HTTPError as exc:
            raise ModelError(f"reading {self.label} failed: {exc}") from exc
        self._data += body[:limit]
        if len(body) < limit or (self.size is not None and len(self._data) >= self.size):
            self._eof = True

    def _whole(self, response: httpx.Response, start: int, end: int) -> None:
        """A 200 answer: the server ignores Range and sends the file from its first byte."""
        self._stats.ranged = False
        self._stats.note(
            f"{self.label}: the server ignores HTTP Range requests; read the start of its "
            "full answer as far as the header reaches, then closed the connection"
        )
        encoded = response.headers.get("Content-Encoding", "identity").lower() != "identity"
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and not encoded:
            self.size = int(length)
        self._data = bytearray()  # the body starts at byte 0 again
        self._stream = response
        self._chunks = response.iter_raw() if not encoded else response.iter_bytes()
        self._read_stream(end)

    def _read_stream(self, end: int) -> None:
        assert self._chunks is not None
        try:
            while len(self._data) < end:
                chunk = next(self._chunks, None)
                if chunk is None:
                    self._eof = True
                    self.close()
                    return
                self._data += chunk
                self._stats.bytes_read += len(chunk)
        except httpx.HTTPError as exc:
            self.close()
            raise ModelError(f"reading {self.label} failed: {exc}") from exc


def _status_error(response: httpx.Response, label: str) -> ModelError:
    status = response.status_code
    if status == 404:
        return ModelError(f"{label}: not found (HTTP 404)", hint="check the URL")
    if status in (401, 403):
        return ModelError(
            f"{label}: access denied (HTTP {status})",
            hint="a private or gated model needs a token (hf://: set HF_TOKEN); an https:// "
            "URL must be public or pre-signed",
        )
    return ModelError(f"{label}: the server answered HTTP {status} {response.reason_phrase}")


def get_json(
    client: httpx.Client,
    url: str,
    stats: ReadStats,
    *,
    headers: Mapping[str, str] | None = None,
    label: str | None = None,
    max_bytes: int = 64 * MIB,
) -> object:
    """A small JSON document (config.json, an index, a registry manifest) by a plain GET."""
    import json

    label = label or display_url(url)
    try:
        with client.stream("GET", url, headers=dict(headers or {})) as response:
            stats.requests += 1
            if response.status_code != 200:
                raise _status_error(response, label)
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                stats.bytes_read += len(chunk)
                if len(body) > max_bytes:
                    raise ModelError(f"{label}: larger than {format_bytes(max_bytes)}")
    except httpx.HTTPError as exc:
        raise ModelError(
            f"cannot read {label}: {exc}",
            hint="check the URL and your network or proxy settings (HTTPS_PROXY)",
        ) from exc
    try:
        return json.loads(bytes(body))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{label} is not valid JSON: {exc}") from exc
