"""A profile file's bytes and text: the checks before any YAML is parsed.

``read_bytes`` refuses a missing path, a directory, a FIFO or device, an unreadable or huge
file; ``decode_text`` refuses UTF-16/32 (saying so), binary data, invalid UTF-8 and control
characters, each with the line and column of the first bad byte, and drops a UTF-8 BOM.
"""

from __future__ import annotations

import codecs
import functools
import re
from pathlib import Path

from llmdeploy.errors import ProfileError

MAX_BYTES = 1024 * 1024
"""Largest profile file read, in bytes (a real profile is a few hundred bytes)."""
# YAML's printable set (YAML 1.2, [1] c-printable); what is outside it is refused. Compiling
# the full Unicode class costs ~7 ms, a twentieth of `up --dry-run`; profiles are nearly always
# ASCII, where the set is the small class below (the same characters), so the full one is
# compiled only for text that needs it.
_NON_PRINTABLE_ASCII = re.compile("[^\x09\x0a\x0d\x20-\x7e]")
_NON_PRINTABLE_FULL = "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"


@functools.cache
def _non_printable_full() -> re.Pattern[str]:
    return re.compile(_NON_PRINTABLE_FULL)


def _first_non_printable(text: str) -> re.Match[str] | None:
    """The first character of ``text`` outside YAML's printable set, if any."""
    if text.isascii():
        return _NON_PRINTABLE_ASCII.search(text)
    return _non_printable_full().search(text)


def read_bytes(path: Path, location: str) -> bytes:
    """The file's bytes; refuses a missing path, a directory, a special file, a huge file."""
    try:
        if path.is_dir():
            raise ProfileError(f"{location}: is a directory, not a profile file")
        if not path.exists():
            if path.is_symlink():
                raise ProfileError(f"{location}: a symbolic link to a missing file")
            raise ProfileError(f"profile file not found: {location}")
        if not path.is_file():
            raise ProfileError(f"{location}: not a regular file (a profile is a YAML file)")
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except PermissionError as exc:
        raise ProfileError(
            f"{location}: cannot read the profile: permission denied",
            hint="check the file's permissions (it must be readable by this user)",
        ) from exc
    except OSError as exc:
        raise ProfileError(f"{location}: cannot read the profile: {exc.strerror or exc}") from exc
    if len(data) > MAX_BYTES:
        raise ProfileError(
            f"{location}: too large for a profile (more than {MAX_BYTES // 1024} KiB)",
            hint="is this the right file? A profile is a short YAML document",
        )
    return data


def decode_text(data: bytes, location: str) -> str:
    """UTF-8 text of ``data``; refuses other encodings, binary data and control characters."""
    encoding = _wide_encoding(data)
    if encoding:
        raise ProfileError(
            f"{location}: the file is {encoding}; a profile must be UTF-8",
            hint=f"convert it, e.g. `iconv -f {encoding} -t UTF-8 FILE`, or save it as UTF-8",
        )
    if b"\x00" in data:
        line, column = _line_column(data, data.index(b"\x00"))
        raise ProfileError(
            f"{location}:{line}:{column}: contains NUL bytes: this is a binary file, "
            "not a YAML profile"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _line_column(data, exc.start)
        raise ProfileError(
            f"{location}:{line}:{column}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
            "a profile must be UTF-8",
            hint="save the file as UTF-8",
        ) from exc
    text = text.removeprefix("\ufeff")  # a UTF-8 byte-order mark (Windows editors write one)
    bad = _first_non_printable(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        raise ProfileError(
            f"{location}:{line}:{column}: control character U+{ord(bad.group()):04X} "
            "is not allowed in YAML",
            hint="remove it, or write it as an escape inside a double-quoted string",
        )
    return text


# ---------------------------------------------------------------------------------------------
# encoding


def _wide_encoding(data: bytes) -> str | None:
    """'UTF-16' / 'UTF-32' when ``data`` is text in one of them (by its BOM or first bytes)."""
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "UTF-32"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16"
    # without a BOM, YAML tells the encoding from the NULs around its first (ASCII) character;
    # it is only called UTF-16/32 when the start decodes as printable text in it
    head = data[:4]
    if len(head) == 4 and head[:3] == b"\x00\x00\x00":
        name, codec = "UTF-32", "utf-32-be"
    elif len(head) == 4 and head[1:] == b"\x00\x00\x00":
        name, codec = "UTF-32", "utf-32-le"
    elif len(head) >= 2 and head[0] == 0 and head[1] != 0:
        name, codec = "UTF-16", "utf-16-be"
    elif len(head) >= 2 and head[0] != 0 and head[1] == 0:
        name, codec = "UTF-16", "utf-16-le"
    else:
        return None
    try:  # an incremental decoder keeps a character cut at the end of the sample for later
        text = codecs.getincrementaldecoder(codec)().decode(data[:1024], final=False)
    except UnicodeDecodeError:
        return None
    return name if text and not _first_non_printable(text) else None


def _line_column(data: bytes, offset: int) -> tuple[int, int]:
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return line, column
