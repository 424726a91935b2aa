"""Download one file over HTTP(S) with resume and sha256 verification.

The bytes go to ``NAME.part`` beside the destination; a small ``NAME.part.json`` remembers the
URL and the server's validators (ETag, Last-Modified) so that a later run resumes with
``Range: bytes=N-`` and ``If-Range``, and only when the server said it accepts ranges
(``Accept-Ranges: bytes`` or a 206 answer). A server that ignores the range (200) gets the file
from the start again. A connection lost mid-way is retried ``retries`` times within one call.

Once complete, the sha256 (computed while streaming) is compared with the expected one; a
mismatch removes the file and raises ModelError. Only then is ``.part`` renamed to the
destination, so a file under the final name is always complete.

The download never writes through a link: a ``.part`` file that is a symbolic link or has
another hard link (it could be someone's file) is removed and the transfer starts again, and
files are opened with ``O_NOFOLLOW`` (``O_EXCL`` for a new one). The destination is only ever
replaced by rename, so a hard-linked file under that name keeps its content.

``sibling_url`` and ``probe`` serve split models (``NAME-00001-of-0000N.gguf``): the other
parts' URLs are derived from the first one's, and each is checked (a one-byte ranged GET)
before anything is downloaded, so that a missing part is named at once.

httpx exceptions are translated here into ModelError (raised ``from`` the original).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from llmdeploy.errors import ModelError
from llmdeploy.fileops import hash_into, read_json_object, sha256_file, write_json_atomic
from llmdeploy.models.sources.base import NullProgress, Progress

_CONTENT_RANGE_RE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_UNSATISFIED_RANGE_RE = re.compile(r"^bytes \*/(\d+)$")


@dataclass(frozen=True)
class Downloaded:
    path: Path
    size: int
    sha256: str


class _Interrupted(Exception):
    """The transfer stopped before the end; ``kept`` says whether the partial file is kept."""

    def __init__(self, received: int, kept: bool, cause: Exception) -> None:
        super().__init__(str(cause))
        self.received = received
        self.kept = kept
        self.cause = cause


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _meta_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part.json")


def default_client() -> httpx.Client:
    from llmdeploy import __version__

    return httpx.Client(
        follow_redirects=True,
        timeout=httpx.Timeout(30.0, read=120.0),
        headers={"User-Agent": f"llmdeploy/{__version__}"},
    )


@contextmanager
def _client_or_default(client: httpx.Client | None) -> Iterator[httpx.Client]:
    if client is not None:
        yield client
        return
    with default_client() as own:
        yield own


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    progress: Progress | None = None,
    client: httpx.Client | None = None,
    retries: int = 2,
) -> Downloaded:
    """Download ``url`` to ``dest`` (resuming a previous partial download); verify ``sha256``."""
    progress = progress or NullProgress()
    dest.parent.mkdir(parents=True, exist_ok=True)
    shown = display_url(url)
    try:
        with _client_or_default(client) as http:
            attempt = 0
            while True:
                try:
                    digest, size = _transfer(http, url, dest, progress)
                    break
                except _Interrupted as exc:
                    if attempt < retries:
                        attempt += 1
                        continue
                    hint = (
                        "run the same command again: the download resumes where it stopped"
                        if exc.kept
                        else "run the same command again (this server does not support resuming)"
                    )
                    raise ModelError(
                        f"download of {shown} was interrupted after {exc.received} bytes: "
                        f"{exc.cause}",
                        hint=hint,
                    ) from exc.cause
    finally:
        progress.finish()
    part = part_path(dest)
    if sha256 is not None and digest != sha256:
        part.unlink(missing_ok=True)
        _meta_path(dest).unlink(missing_ok=True)
        raise ModelError(
            f"checksum mismatch for {shown}: expected sha256 {sha256}, got {digest}; "
            "the downloaded file was removed",
            hint="the server's file is not the one the reference names: check the URL and "
            "the #sha256= value",
        )
    os.chmod(part, 0o644)  # readable by the container's non-root user
    os.replace(part, dest)
    _meta_path(dest).unlink(missing_ok=True)
    return Downloaded(dest, size, digest)


def _transfer(
    http: httpx.Client, url: str, dest: Path, progress: Progress
) -> tuple[str, int]:
    """One attempt: returns (sha256, size) of the complete ``.part`` file, or raises."""
    part, meta_path = part_path(dest), _meta_path(dest)
    meta = read_json_object(meta_path)
    offset = _own_file_size(part)
    if offset and (meta is None or meta.get("url") != url or not meta.get("ranges")):
        part.unlink()
        offset = 0
    headers: dict[str, str] = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        validator = _strong_etag(meta) or (meta or {}).get("last_modified")
        if validator:
            headers["If-Range"] = str(validator)
    received = offset
    kept = bool(offset)  # only resumable partial files survive to this point
    try:
        with http.stream("GET", url, headers=headers) as response:
            if response.status_code == 416 and offset:
                total = _unsatisfied_total(response)
                if total == offset:  # the previous run had every byte already
                    progress.start(total, dest.name)
                    progress.advance(offset)
                    return sha256_file(part), offset
                part.unlink()
                raise _Interrupted(0, False, RuntimeError("the server refused to resume"))
            _raise_for_status(response, url)
            if response.status_code == 206 and offset:
                start = _content_range_start(response)
                if start != offset:
                    part.unlink()
                    raise _Interrupted(0, False, RuntimeError("unexpected Content-Range"))
            else:
                offset = received = 0
            # a compressed body (despite Accept-Encoding: identity) has neither a usable
            # length nor byte ranges of the file itself
            encoded = response.headers.get("Content-Encoding", "identity").lower() != "identity"
            ranges = not encoded and (
                response.status_code == 206
                or response.headers.get("Accept-Ranges", "").lower() == "bytes"
            )
            kept = ranges
            _write_meta(meta_path, url, response, ranges)
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length and length.isdigit() and not encoded else None
            progress.start(total, dest.name)
            digest = hashlib.sha256()
            if offset:
                hash_into(part, digest)
                progress.advance(offset)
            with _open_part(part, append=bool(offset)) as handle:
                for chunk in response.iter_bytes():  # as received: a cut keeps every byte
                    handle.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    progress.advance(len(chunk))
            if total is not None and received != total:
                raise _Interrupted(
                    received, kept, RuntimeError(f"got {received} of {total} bytes")
                )
            return digest.hexdigest(), received
    except httpx.TransportError as exc:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout) and received == offset == 0:
            raise ModelError(
                f"cannot connect to {httpx.URL(url).host}: {exc}",
                hint="check the URL and your network or proxy settings (HTTPS_PROXY)",
            ) from exc
        if not kept:
            part.unlink(missing_ok=True)
            meta_path.unlink(missing_ok=True)
        raise _Interrupted(received, kept, exc) from exc
    except _Interrupted as exc:
        if not exc.kept:
            part.unlink(missing_ok=True)
            meta_path.unlink(missing_ok=True)
        raise


def _own_file_size(path: Path) -> int:
    """The size of ``path`` when it is a plain file only this download holds; anything else
    under that name (a symbolic link, a file with a second hard link) is removed, never
    written through, and 0 returned."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return 0
    if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
        return st.st_size
    path.unlink()
    return 0


def _open_part(path: Path, *, append: bool) -> BinaryIO:
    """Open the ``.part`` file for writing without following a link: appended to when it is
    this download's own file, else created anew (``O_EXCL``: never an existing file)."""
    if append:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
        if os.fstat(fd).st_nlink != 1:  # linked since we looked: leave it alone
            os.close(fd)
            raise _Interrupted(0, False, RuntimeError(f"{path.name} gained a second link"))
    else:
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    return os.fdopen(fd, "ab" if append else "wb")


def sibling_url(url: str, filename: str) -> str:
    """``url`` with its last path segment replaced by ``filename``, a name as it appears in
    URLs (percent-escapes kept as they are). The query string is kept (some hosts need
    ``?download=true``; a pre-signed query signs one file only, so its siblings are refused
    by the server)."""
    parts = urlsplit(url)
    folder = parts.path.rsplit("/", 1)[0]
    name = quote(filename, safe="%!$&'()*+,;=:@-._~")
    return urlunsplit(parts._replace(path=f"{folder}/{name}", fragment=""))


def probe(url: str, *, client: httpx.Client | None = None) -> bool:
    """True when ``url`` answers a one-byte ranged GET with 200 or 206, False on 404;
    ModelError for any other answer (named by ``_raise_for_status``) or no connection."""
    try:
        with _client_or_default(client) as http, http.stream(
            "GET", url, headers={"Range": "bytes=0-0", "Accept-Encoding": "identity"}
        ) as response:
            if response.status_code == 404:
                return False
            _raise_for_status(response, url)
            return True
    except httpx.TransportError as exc:
        raise ModelError(
            f"cannot reach {display_url(url)}: {exc}",
            hint="check the URL and your network or proxy settings (HTTPS_PROXY)",
        ) from exc


def display_url(url: str) -> str:
    """``url`` without query string or credentials (pre-signed URLs carry secrets there)."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(query=None, fragment=None, userinfo=b""))


def _raise_for_status(response: httpx.Response, url: str) -> None:
    status = response.status_code
    if status < 400:
        return
    url = display_url(url)
    if status == 404:
        raise ModelError(f"{url}: not found (HTTP 404)", hint="check the URL")
    if status in (401, 403):
        raise ModelError(
            f"{url}: access denied (HTTP {status})",
            hint="llmdeploy sends no credentials for https:// models; use a public or "
            "pre-signed URL, or download the file and use file://",
        )
    raise ModelError(f"{url}: the server answered HTTP {status} {response.reason_phrase}")


def _content_range_start(response: httpx.Response) -> int | None:
    match = _CONTENT_RANGE_RE.match(response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _unsatisfied_total(response: httpx.Response) -> int | None:
    match = _UNSATISFIED_RANGE_RE.match(response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _strong_etag(meta: dict[str, Any] | None) -> str | None:
    etag = (meta or {}).get("etag")
    # If-Range needs a strong validator; a weak ETag (W/"...") cannot be used
    return etag if isinstance(etag, str) and not etag.startswith("W/") else None


def _write_meta(path: Path, url: str, response: httpx.Response, ranges: bool) -> None:
    meta = {
        "url": url,
        "ranges": ranges,
        "etag": response.headers.get("ETag"),
        "last_modified": response.headers.get("Last-Modified"),
    }
    # owner-only: a pre-signed URL carries its signature in the query string
    write_json_atomic(path, meta, mode=0o600)
