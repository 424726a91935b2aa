"""What a stage sends and who sends it: arrival schedules and the stage plan.

A stage is a list of **work items**: ``(index, planned offset)`` pairs, where ``index`` is
the item's number in the stage (it picks the prompt, and item ``i < warmup`` is warm-up) and
the offset is the planned send time in seconds after the stage origin (rate stages), or None
(fixed concurrency: sent as soon as one of the worker's streams is free). The plan deals
every item to exactly one worker process, from one schedule computed the same way in every
process, so N processes send what one would have sent.

Offsets are computed from the stage origin, never by adding up sleeps, so a late wake-up
delays one request and never shifts the rest of the schedule (no drift).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["StagePlan", "WorkItem", "arrival_offsets", "deal_cycle", "split_evenly"]

WorkItem = tuple[int, float | None]  # (index in the stage, planned send offset in s or None)


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


def split_evenly(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` whole shares differing by at most one, larger first:
    ``split_evenly(5, 2) == [3, 2]``."""
    if parts < 1:
        raise ValueError("parts must be >= 1")
    base, extra = divmod(total, parts)
    return [base + (1 if k < extra else 0) for k in range(parts)]


def deal_cycle(weights: Sequence[int]) -> list[int]:
    """One period of a smooth weighted round-robin: ``sum(weights)`` slots, worker ``k`` in
    ``weights[k]`` of them, spread evenly (nginx's smooth weighted balancing).
    ``deal_cycle([3, 2]) == [0, 1, 0, 1, 0]``."""
    if not weights or any(w < 0 for w in weights) or sum(weights) == 0:
        raise ValueError(f"bad weights {list(weights)!r}")
    total = sum(weights)
    current = [0] * len(weights)
    cycle: list[int] = []
    for _ in range(total):
        for k, w in enumerate(weights):
            current[k] += w
        best = max(range(len(weights)), key=lambda k: current[k])
        current[best] -= total
        cycle.append(best)
    return cycle


@dataclass(frozen=True)
class StagePlan:
    """One stage, as every worker process sees it (plain data, cheap to send to a process).

    ``mode``: ``concurrency`` (``concurrency`` streams in all, split over the workers) or
    ``rate`` (``rate`` requests/s on one global schedule of ``arrivals``, seeded by
    ``seed``; optional ``max_concurrency`` cap, split over the workers). ``limit``: items in
    the stage, warm-up included (None: until ``duration_s`` of measured time); items below
    ``warmup`` are warm-up. ``workers``: how many processes share the stage.
    ``offsets``: a rate stage's planned send offsets given explicitly (trace replay, already
    scaled by its speed) instead of ``rate`` and ``arrivals``. ``turns`` > 1: every item is a
    conversation (item ``c`` holds requests ``c * turns`` .. ``c * turns + turns - 1``, sent
    one after another by one worker); ``limit`` and ``warmup`` still count requests.
    """

    mode: Literal["concurrency", "rate"]
    workers: int = 1
    concurrency: int = 1
    rate: float = 0.0
    arrivals: Literal["constant", "poisson"] = "constant"
    seed: int = 0
    max_concurrency: int | None = None
    limit: int | None = None
    warmup: int = 0
    duration_s: float | None = None
    offsets: tuple[float, ...] | None = None
    turns: int = 1

    def __post_init__(self) -> None:
        if self.turns < 1:
            raise ValueError("turns must be >= 1")
        if self.workers < 1:
            raise ValueError("workers must be >= 1")
        if self.mode == "concurrency" and self.concurrency < self.workers:
            raise ValueError("fewer streams than workers")
        if self.mode == "rate" and self.rate <= 0:
            raise ValueError("rate must be > 0")
        if self.limit is None and self.duration_s is None:
            raise ValueError("a stage needs a request limit or a duration")

    def streams(self, worker: int) -> int:
        """Concurrent streams of ``worker`` (concurrency mode)."""
        return split_evenly(self.concurrency, self.workers)[worker]

    def cap(self, worker: int) -> int | None:
        """``worker``'s share of the in-flight cap of a rate stage (at least 1)."""
        if self.max_concurrency is None:
            return None
        return max(1, split_evenly(self.max_concurrency, self.workers)[worker])

    def items(self, worker: int = 0) -> Iterator[WorkItem]:
        """The work items dealt to ``worker``, in send order.

        Rate: the global schedule (or the explicit ``offsets``), item ``i`` to worker
        ``i mod workers``; it ends at
        ``limit`` items or when an offset is ``duration_s`` or more past the first measured
        item's. Concurrency: items dealt by :func:`deal_cycle` over the workers' stream
        counts, so each worker gets items in proportion to its streams; without a limit
        the items never end (the worker stops at its deadline)."""
        if not 0 <= worker < self.workers:
            raise ValueError(f"no worker {worker} in a plan of {self.workers}")
        if self.mode == "rate":
            return self._rate_items(worker)
        return self._concurrency_items(worker)

    def _unit_limit(self) -> int | None:
        """Items in the stage: conversations whose first request is below ``limit``."""
        return None if self.limit is None else -(-self.limit // self.turns)

    def _rate_items(self, worker: int) -> Iterator[WorkItem]:
        n, duration = self.workers, self.duration_s
        limit, warmup = self._unit_limit(), -(-self.warmup // self.turns)
        measured_from: float | None = None
        source: Iterator[float] = (
            iter(self.offsets) if self.offsets is not None
            else arrival_offsets(self.rate, self.arrivals, self.seed)
        )
        for i, offset in enumerate(source):
            if limit is not None and i >= limit:
                return
            if i == warmup:
                measured_from = offset
            if duration is not None and measured_from is not None and (
                offset - measured_from >= duration
            ):
                return
            if i % n == worker:
                yield i, offset

    def _concurrency_items(self, worker: int) -> Iterator[WorkItem]:
        if self.workers == 1:
            indices: Iterator[int] = itertools.count()
        else:
            cycle = deal_cycle(split_evenly(self.concurrency, self.workers))
            mine = [slot for slot, owner in enumerate(cycle) if owner == worker]
            period = len(cycle)
            indices = (base + slot for base in itertools.count(0, period) for slot in mine)
        limit = self._unit_limit()
        for i in indices:
            if limit is not None and i >= limit:
                return
            yield i, None
