"""The client certifying itself: is a stage's result the server's, or the client's ceiling?

Each client process runs a :class:`LoopMonitor` over its stage window: its CPU time
(``time.process_time``: user + system of the process) and the lateness of a timer it sets
every :data:`LAG_INTERVAL_S` (event-loop lag: while a callback or a parse runs, everything
else waits, including the stamping of arriving chunks). :func:`client_check` combines the
processes' figures with the schedule's send lag and the delivered request rate, and marks
the stage **client-limited** when one of these thresholds is passed (reasons in
docs/bench.md):

=======================  =====================================================================
``CPU_LIMIT_PERCENT``    a worker process used more than 90% of one core over the stage
``LOOP_LAG_P99_MS``      its timer's lateness p99 exceeded 5 ms
``SEND_LAG_P99_MS``      sends left more than 5 ms after their planned time at p99 (rate
                         stages, when no ``--max-concurrency`` cap held sends back)
``RATE_SHORTFALL``       the delivered rate fell short of the planned rate by more than 0.5%
=======================  =====================================================================
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from llmdeploy.bench.report import ClientCheck, LagStats, WorkerUsage

__all__ = [
    "CPU_LIMIT_PERCENT",
    "LAG_INTERVAL_S",
    "LOOP_LAG_P99_MS",
    "MIN_RATE_SENDS",
    "RATE_SHORTFALL",
    "SEND_LAG_P99_MS",
    "LoopMonitor",
    "WorkerSample",
    "client_check",
    "lag_stats",
]

CPU_LIMIT_PERCENT = 90.0
LOOP_LAG_P99_MS = 5.0
SEND_LAG_P99_MS = 5.0
RATE_SHORTFALL = 0.005
LAG_INTERVAL_S = 0.005
# Below this many measured sends the delivered rate is not judged: with a handful of
# requests one 1-ms timer step is already more than 0.5% of the span.
MIN_RATE_SENDS = 200

_now = time.monotonic


@dataclass
class WorkerSample:
    """One process's raw figures for one stage (sent from a worker process to the runner)."""

    worker: int
    pid: int
    requests: int
    wall_s: float
    cpu_s: float
    lag_ms: list[float] = field(default_factory=list)
    cap_waits: int = 0
    ended_at: float = 0.0  # time.monotonic() when this process's share ended

    def usage(self) -> WorkerUsage:
        wall = max(self.wall_s, 1e-9)
        return WorkerUsage(
            worker=self.worker,
            pid=self.pid,
            requests=self.requests,
            wall_s=self.wall_s,
            cpu_s=self.cpu_s,
            cpu_percent=self.cpu_s / wall * 100.0,
            loop_lag_ms=lag_stats(self.lag_ms),
        )


class LoopMonitor:
    """CPU time and event-loop lag of this process between :meth:`start` and :meth:`stop`.

    Lag: a timer is set every ``interval_s``; each firing records how late it ran
    (``time.monotonic()`` at the call - the time it was due), in ms, never below 0."""

    def __init__(self, interval_s: float = LAG_INTERVAL_S) -> None:
        self._interval_s = interval_s
        self._lags: list[float] = []
        self._timer: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._cpu0 = 0.0
        self._wall0 = 0.0

    def start(self) -> None:
        self._lags = []
        self._cpu0 = time.process_time()
        self._wall0 = _now()
        self._arm(self._wall0)

    def _arm(self, now: float) -> None:
        self._due = now + self._interval_s
        self._timer = asyncio.get_running_loop().call_later(self._interval_s, self._tick)

    def _tick(self) -> None:
        now = _now()
        late = now - self._due
        self._lags.append(late * 1000.0 if late > 0 else 0.0)
        self._arm(now)

    def stop(self, worker: int, requests: int, cap_waits: int = 0) -> WorkerSample:
        cpu = time.process_time() - self._cpu0
        now = _now()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return WorkerSample(
            worker, os.getpid(), requests, now - self._wall0, cpu, self._lags, cap_waits, now
        )


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def lag_stats(values_ms: Sequence[float]) -> LagStats | None:
    """p50, p99 (linear interpolation, numpy's default) and max; None for no values."""
    if not values_ms:
        return None
    v = sorted(values_ms)
    return LagStats(p50=_percentile(v, 50), p99=_percentile(v, 99), max=v[-1], samples=len(v))


def _rate(n: int, first: float, last: float) -> float | None:
    span = last - first
    return (n - 1) / span if n >= 2 and span > 0 else None


def client_check(
    samples: Sequence[WorkerSample],
    sends: Sequence[tuple[float, float]],
    target_rate_per_s: float | None,
) -> ClientCheck:
    """The self-check of one stage.

    ``samples``: one per client process. ``sends``: (planned, actual) send times in seconds
    of the stage's n measured requests (empty for fixed-concurrency stages). Delivered rate:
    (n - 1) / (last actual send - first planned send); planned rate: (n - 1) / (last
    planned send - first planned send), the target itself for constant arrivals.
    ``target_rate_per_s``: the stage's rate (None for fixed concurrency)."""
    workers = [s.usage() for s in sorted(samples, key=lambda s: s.worker)]
    cap_waits = sum(s.cap_waits for s in samples)
    reasons: list[str] = []
    for w in workers:
        if w.cpu_percent > CPU_LIMIT_PERCENT:
            reasons.append(
                f"worker {w.worker} used {w.cpu_percent:.0f}% of a core "
                f"(limit {CPU_LIMIT_PERCENT:.0f}%)"
            )
        if w.loop_lag_ms is not None and w.loop_lag_ms.p99 > LOOP_LAG_P99_MS:
            reasons.append(
                f"worker {w.worker} event-loop lag p99 {w.loop_lag_ms.p99:.1f} ms "
                f"(limit {LOOP_LAG_P99_MS:g} ms)"
            )
    send_lag = lag_stats([(actual - planned) * 1000.0 for planned, actual in sends])
    planned_rate = delivered = rate_error = None
    if target_rate_per_s is not None and sends:
        # both spans start at the first planned send: a late start that the client catches
        # up with does not count, a client that falls behind ends late (sends never leave
        # early, so delivered <= planned)
        first = min(p for p, _ in sends)
        planned_rate = _rate(len(sends), first, max(p for p, _ in sends))
        delivered = _rate(len(sends), first, max(a for _, a in sends))
        if planned_rate and delivered:
            rate_error = delivered / planned_rate - 1.0
    if cap_waits == 0:  # with the cap holding sends back, the lag is the server's doing
        if send_lag is not None and send_lag.p99 > SEND_LAG_P99_MS:
            reasons.append(f"send lag p99 {send_lag.p99:.1f} ms (limit {SEND_LAG_P99_MS:g} ms)")
        if rate_error is not None and len(sends) >= MIN_RATE_SENDS and (
            -rate_error > RATE_SHORTFALL
        ):
            reasons.append(
                f"delivered {delivered:.1f} req/s, {-rate_error:.2%} short of the planned "
                f"{planned_rate:.1f} (limit {RATE_SHORTFALL:.1%})"
            )
    return ClientCheck(
        workers=workers,
        send_lag_ms=send_lag,
        cap_waits=cap_waits,
        target_rate_per_s=target_rate_per_s,
        planned_rate_per_s=planned_rate,
        delivered_rate_per_s=delivered,
        rate_error=rate_error,
        client_limited=bool(reasons),
        reasons=reasons,
    )
