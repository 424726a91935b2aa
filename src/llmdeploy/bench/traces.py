"""Request traces with timestamps: the public Mooncake and BurstGPT formats.

* **Mooncake** (https://github.com/kvcache-ai/Mooncake, ``FAST25-release/traces``): JSONL, one
  request per line: ``timestamp`` (ms since the first request), ``input_length`` and
  ``output_length`` (tokens), ``hash_ids`` (one id per block of
  :data:`MOONCAKE_BLOCK_TOKENS` prompt tokens; requests that share an id share that block of
  prompt, so the ids describe the prefix reuse of the original service).
* **BurstGPT** (https://github.com/HPMLL/BurstGPT, ``data/BurstGPT_*.csv``): CSV with the header
  ``Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type``; ``Timestamp`` in
  seconds. Rows with 0 response tokens (requests that failed in the original service; the
  ``*_without_fails`` files leave them out) or 0 request tokens are skipped and counted.

A replay sends request *i* at ``(timestamp_i - timestamp_first) / speed`` after the stage
starts, with the trace's lengths, for the entries inside the chosen window of trace time.

Every problem with a file (unreadable, not UTF-8, empty, a line that is not JSON, a missing
field or column, a value that is not a number, a negative or decreasing timestamp) is a
:class:`~llmdeploy.errors.BenchError` (exit 8) naming the file, the line and the field.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from llmdeploy.bench.text_files import read_text
from llmdeploy.errors import BenchError

__all__ = [
    "BURSTGPT_COLUMNS",
    "MOONCAKE_BLOCK_TOKENS",
    "MOONCAKE_FIELDS",
    "Trace",
    "TraceEntry",
    "TraceFormat",
    "guess_format",
    "load_trace",
    "window",
]

TraceFormat = Literal["mooncake", "burstgpt"]
MOONCAKE_BLOCK_TOKENS = 512
MOONCAKE_FIELDS = ("timestamp", "input_length", "output_length")  # hash_ids is optional
BURSTGPT_COLUMNS = ("Timestamp", "Request tokens", "Response tokens")  # the ones replay uses


@dataclass(frozen=True)
class TraceEntry:
    """One request of a trace: where it is (``line``, 1-based), when it arrived (seconds on
    the trace's clock), its lengths in tokens and its prompt block ids (Mooncake)."""

    line: int
    timestamp_s: float
    input_tokens: int
    output_tokens: int
    hash_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Trace:
    path: str
    format: TraceFormat
    entries: tuple[TraceEntry, ...]
    skipped: int = 0  # BurstGPT rows without request or response tokens


def guess_format(path: str | Path) -> TraceFormat | None:
    """``mooncake`` for ``.jsonl`` / ``.json``, ``burstgpt`` for ``.csv``, else None."""
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".json"):
        return "mooncake"
    if suffix == ".csv":
        return "burstgpt"
    return None


def load_trace(path: str | Path, fmt: TraceFormat) -> Trace:
    """The trace in ``path`` (read once per file version: cached by path, size and mtime).
    Raises BenchError naming file, line and field for every problem."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise BenchError(f"cannot read trace {p}: {exc.strerror or exc}") from exc
    return _load(str(p), fmt, st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=4)
def _load(path: str, fmt: TraceFormat, size: int, mtime_ns: int) -> Trace:
    p = Path(path)
    text = read_text(p, "trace", _HINTS[fmt], encoding="utf-8-sig")
    if not text.strip():
        raise BenchError(f"trace {p} is empty", hint=_HINTS[fmt])
    trace = _mooncake(p, text) if fmt == "mooncake" else _burstgpt(p, text)
    if not trace.entries:
        raise BenchError(
            f"trace {p} has no requests"
            + (f" ({trace.skipped} rows without request or response tokens skipped)"
               if trace.skipped else ""),
            hint=_HINTS[fmt],
        )
    return trace


_HINTS: dict[str, str] = {
    "mooncake": 'Mooncake traces are JSONL: {"timestamp": MS, "input_length": N, '
    '"output_length": N, "hash_ids": [...]} per line',
    "burstgpt": "BurstGPT traces are CSV with the header Timestamp,Model,Request tokens,"
    "Response tokens,Total tokens,Log Type",
}


def window(
    trace: Trace, start_s: float = 0.0, duration_s: float | None = None, speed: float = 1.0
) -> list[tuple[float, TraceEntry]]:
    """The entries whose time since the trace's first request lies in [start_s,
    start_s + duration_s), each with its send offset: seconds after the first of them,
    divided by ``speed`` (2 replays twice as fast)."""
    if speed <= 0:
        raise ValueError("speed must be > 0")
    origin = trace.entries[0].timestamp_s
    end = math.inf if duration_s is None else start_s + duration_s
    chosen = [e for e in trace.entries if start_s <= e.timestamp_s - origin < end]
    if not chosen:
        return []
    first = chosen[0].timestamp_s
    return [((e.timestamp_s - first) / speed, e) for e in chosen]


# Mooncake --------------------------------------------------------------------------------
def _mooncake(p: Path, text: str) -> Trace:
    entries: list[TraceEntry] = []
    previous: TraceEntry | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise BenchError(f"trace {p} line {lineno} is not JSON: {exc}",
                             hint=_HINTS["mooncake"]) from exc
        if not isinstance(obj, dict):
            raise BenchError(f"trace {p} line {lineno}: expected a JSON object, not "
                             f"{type(obj).__name__}", hint=_HINTS["mooncake"])
        for field in MOONCAKE_FIELDS:
            if field not in obj:
                raise BenchError(f"trace {p} line {lineno}: missing field {field!r}",
                                 hint=_HINTS["mooncake"])
        where = f"trace {p} line {lineno}"
        ts_ms = _number(obj["timestamp"], where, "timestamp")
        hash_ids = obj.get("hash_ids", [])
        if not isinstance(hash_ids, list) or not all(
            isinstance(h, int) and not isinstance(h, bool) and h >= 0 for h in hash_ids
        ):
            raise BenchError(f"{where}: field 'hash_ids' must be a list of whole numbers "
                             f">= 0", hint=_HINTS["mooncake"])
        entry = TraceEntry(
            line=lineno,
            timestamp_s=ts_ms / 1000.0,
            input_tokens=_whole(obj["input_length"], where, "input_length", 1),
            output_tokens=_whole(obj["output_length"], where, "output_length", 1),
            hash_ids=tuple(hash_ids),
        )
        _check_order(p, previous, entry, "timestamp")
        entries.append(entry)
        previous = entry
    return Trace(str(p), "mooncake", tuple(entries))


# BurstGPT --------------------------------------------------------------------------------
def _burstgpt(p: Path, text: str) -> Trace:
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if not header or not any(cell.strip() for cell in header):
        raise BenchError(f"trace {p} is empty", hint=_HINTS["burstgpt"])
    names = [cell.strip() for cell in header]
    for column in BURSTGPT_COLUMNS:
        if column not in names:
            raise BenchError(
                f"trace {p} line 1: missing column {column!r} (the header has: "
                f"{', '.join(names)})",
                hint=_HINTS["burstgpt"],
            )
    at = {column: names.index(column) for column in BURSTGPT_COLUMNS}
    entries: list[TraceEntry] = []
    skipped = 0
    previous: TraceEntry | None = None
    for lineno, row in enumerate(reader, 2):
        if not row or not any(cell.strip() for cell in row):
            continue
        where = f"trace {p} line {lineno}"
        cells: dict[str, str] = {}
        for column, index in at.items():
            if index >= len(row) or not row[index].strip():
                raise BenchError(f"{where}: missing value for column {column!r}",
                                 hint=_HINTS["burstgpt"])
            cells[column] = row[index].strip()
        ts = _number(_parse(cells["Timestamp"], where, "Timestamp"), where, "Timestamp")
        entry = TraceEntry(
            line=lineno,
            timestamp_s=ts,
            input_tokens=_whole(_parse(cells["Request tokens"], where, "Request tokens"),
                                where, "Request tokens", 0),
            output_tokens=_whole(_parse(cells["Response tokens"], where, "Response tokens"),
                                 where, "Response tokens", 0),
        )
        _check_order(p, previous, entry, "Timestamp")
        previous = entry
        if entry.input_tokens == 0 or entry.output_tokens == 0:
            skipped += 1
            continue
        entries.append(entry)
    return Trace(str(p), "burstgpt", tuple(entries), skipped)


# values ----------------------------------------------------------------------------------
def _parse(text: str, where: str, field: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise BenchError(f"{where}: {field} {text!r} is not a number") from None


def _number(value: Any, where: str, field: str) -> float:
    """A finite number >= 0 (a time)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
        value
    ):
        raise BenchError(f"{where}: {field} must be a finite number, not {value!r}")
    if value < 0:
        raise BenchError(f"{where}: {field} {value!r} is negative; times are counted from "
                         "the start of the trace")
    return float(value)


def _whole(value: Any, where: str, field: str, minimum: int) -> int:
    number = value
    if isinstance(value, float) and value.is_integer():
        number = int(value)
    if isinstance(number, bool) or not isinstance(number, int) or number < minimum:
        raise BenchError(f"{where}: {field} must be a whole number >= {minimum}, "
                         f"not {value!r}")
    return number


def _check_order(p: Path, previous: TraceEntry | None, entry: TraceEntry, field: str) -> None:
    if previous is not None and entry.timestamp_s < previous.timestamp_s:
        raise BenchError(
            f"trace {p} line {entry.line}: {field} goes back in time (line "
            f"{previous.line} is later); a trace must be sorted by arrival time",
            hint="sort the file by its timestamp column",
        )
