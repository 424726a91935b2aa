"""Arrival schedules: absolute offsets, constant and seeded Poisson."""

from __future__ import annotations

import itertools
import statistics

import pytest

from llmdeploy.bench.schedule import arrival_offsets


def take(it, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    return list(itertools.islice(it, n))


def test_constant_rate_offsets_are_exact_multiples() -> None:
    offs = take(arrival_offsets(4.0, "constant"), 1001)
    assert offs[:3] == [0.0, 0.25, 0.5]
    assert offs[1000] == pytest.approx(250.0, abs=1e-9)  # no accumulated drift


def test_poisson_is_seeded_and_has_the_requested_rate() -> None:
    a = take(arrival_offsets(10.0, "poisson", seed=7), 5000)
    b = take(arrival_offsets(10.0, "poisson", seed=7), 5000)
    c = take(arrival_offsets(10.0, "poisson", seed=8), 5000)
    assert a == b and a != c
    gaps = [y - x for x, y in itertools.pairwise(a)]
    assert statistics.fmean(gaps) == pytest.approx(0.1, rel=0.05)
    # exponential gaps: standard deviation close to the mean (constant would be 0)
    assert statistics.pstdev(gaps) == pytest.approx(0.1, rel=0.1)
    assert all(g >= 0 for g in gaps)


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        next(arrival_offsets(0.0, "constant"))
