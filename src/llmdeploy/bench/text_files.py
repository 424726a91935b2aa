"""Reading the bench's input files (reports, datasets, traces) as UTF-8 text.

One place says what a missing, unreadable or binary file is, so every input names the file
and the problem the same way (a BenchError, never a traceback).
"""

from __future__ import annotations

from pathlib import Path

from llmdeploy.errors import BenchError

__all__ = ["read_text"]


def read_text(path: Path, kind: str, hint: str, encoding: str = "utf-8") -> str:
    """The text of ``path``, a ``kind`` ("report", "dataset", "trace") of the bench.

    Raises BenchError ``cannot read KIND PATH: REASON`` when the file cannot be read, and
    ``KIND PATH is not UTF-8 text (byte N): is it a binary file?`` with ``hint`` when it does
    not decode. ``encoding``: ``utf-8``, or ``utf-8-sig`` to drop a byte-order mark."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BenchError(f"cannot read {kind} {path}: {exc.strerror or exc}") from exc
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise BenchError(
            f"{kind} {path} is not UTF-8 text (byte {exc.start}): is it a binary file?",
            hint=hint,
        ) from exc
