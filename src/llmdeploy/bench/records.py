"""Raw request tuples (seconds after the run origin) to report records.

A stage of 100,000 requests has 100,000 records and millions of chunk times, so this runs
once per stage and cheaply: the tuples come from the engine's own hot path, already of the
right types, so each record is built without validation, by filling a
:class:`~llmdeploy.bench.report.RequestRecord` the way pydantic's ``model_construct`` does
(every field given, no defaults to apply), at a fraction of its cost per record.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llmdeploy.bench.report import RequestRecord

if TYPE_CHECKING:
    from llmdeploy.bench.engine import Raw

__all__ = ["build_records"]

_FIELDS = frozenset(RequestRecord.model_fields)
_new = object.__new__
_set = object.__setattr__


def _construct(values: dict[str, Any]) -> RequestRecord:
    """``RequestRecord.model_construct(**values)`` for a dict that sets every field."""
    record: RequestRecord = _new(RequestRecord)
    _set(record, "__dict__", values)
    _set(record, "__pydantic_fields_set__", set(_FIELDS))
    _set(record, "__pydantic_extra__", None)
    _set(record, "__pydantic_private__", None)
    return record


def build_records(raws: Sequence[Raw], turns: int = 1) -> list[RequestRecord]:
    """One record per raw tuple (same order); the records take over the tuples' lists.
    ``turns`` > 1: a multi-turn stage, where request ``c * turns + t`` is conversation
    ``c``'s turn ``t``."""
    out: list[RequestRecord] = []
    append = out.append
    for r in raws:
        conversation, turn = divmod(r[0], turns) if turns > 1 else (None, None)
        append(
            _construct(
                {
                    "index": r[0],
                    "warmup": r[1],
                    "scheduled_s": r[2],
                    "start_s": r[3],
                    "end_s": r[4],
                    "token_times_s": r[5],
                    "prompt_tokens": r[6],
                    "output_tokens": r[7],
                    "token_source": r[8],
                    "cached_tokens": r[12],
                    "error": r[9],
                    "error_detail": r[10],
                    "malformed_events": r[11],
                    "conversation": conversation,
                    "turn": turn,
                }
            )
        )
    return out
