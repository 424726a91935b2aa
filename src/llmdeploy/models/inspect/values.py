"""Small readers both model formats share: integers from metadata, the dominant tensor type."""

from __future__ import annotations

from collections import Counter
from typing import Any


def as_int(value: Any) -> int | None:
    """An integer metadata value, or None; for a per-layer list (some architectures), the
    largest."""
    if isinstance(value, list):
        ints = [v for v in value if isinstance(v, int | float)]
        return int(max(ints)) if ints else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def dominant_type(counts: Counter[str]) -> str | None:
    """The tensor type holding most parameters, F32 (norms, biases) counted only when nothing
    else is there; None for no tensors."""
    weights = Counter({k: v for k, v in counts.items() if k != "F32"}) or counts
    return weights.most_common(1)[0][0] if weights else None
