"""Arrival schedules: absolute send offsets (seconds after the stage starts).

Offsets are computed from the stage origin, never by adding up sleeps, so a late wake-up
delays one request and never shifts the rest of the schedule (no drift).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Literal

__all__ = ["arrival_offsets"]


def arrival_offsets(
    rate_per_s: float, arrivals: Literal["constant", "poisson"], seed: int = 0
) -> Iterator[float]:
    """Infinite iterator of send offsets for ``rate_per_s`` requests per second.

    ``constant``: ``i / rate``. ``poisson``: cumulative sums of exponential gaps with mean
    ``1 / rate`` from a seeded generator (the same seed gives the same schedule).
    """
    if rate_per_s <= 0:
        raise ValueError("rate must be > 0")
    if arrivals == "constant":
        interval = 1.0 / rate_per_s
        i = 0
        while True:
            yield i * interval
            i += 1
    rng = random.Random(seed)
    t = 0.0
    while True:
        yield t
        t += rng.expovariate(rate_per_s)
