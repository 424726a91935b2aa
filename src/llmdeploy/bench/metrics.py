"""Every metric, derived from raw per-request timestamps (definitions in docs/bench.md).

- TTFT: request start -> arrival of the first content chunk (role-only chunks do not count).
- ITL: gaps between consecutive content chunks of one request, pooled over requests.
- TPOT: (E2E - TTFT) / (output tokens - 1), per request with at least 2 output tokens.
- E2E: request start -> last byte of the response.
- Rates divide totals of successful measured requests by the stage window (first measured
  start -> last measured end). Concurrency is time-averaged in-flight requests (Little's law).
Failed requests are counted by cause (with the first server message of each cause) and
excluded from every latency statistic. A request that brought no generated text is a failure
(``empty_response``), never a fast success.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

from llmdeploy.bench.report import (
    BenchReport,
    Distribution,
    GoodputSummary,
    RequestRecord,
    StageSummary,
    TurnSummary,
)
from llmdeploy.errors import UsageError

SLO_KEYS = ("ttft_ms", "tpot_ms", "e2e_ms")

__all__ = [
    "SLO_KEYS",
    "distribution",
    "parse_slo",
    "percentile",
    "resummarize",
    "summarize",
]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Percentile ``q`` in [0, 100] by linear interpolation between closest ranks
    (numpy's default). ``sorted_values`` must be sorted and non-empty."""
    n = len(sorted_values)
    if n == 0:
        raise ValueError("percentile of no values")
    if n == 1:
        return float(sorted_values[0])
    pos = (n - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac)


def distribution(values_ms: Sequence[float] | Any) -> Distribution | None:
    """Statistics of ``values_ms`` (a sequence or a numpy array); None when empty.

    Order statistics come from one ``numpy.partition`` (linear time) instead of a full
    sort, and are interpolated exactly as :func:`percentile` does; the mean is numpy's
    pairwise sum."""
    import numpy as np

    v = np.asarray(values_ms, dtype=float)
    n = len(v)
    if n == 0:
        return None
    qs = (50.0, 90.0, 95.0, 99.0)
    ranks = {0, n - 1}
    for q in qs:
        pos = (n - 1) * q / 100.0
        ranks.update((math.floor(pos), min(math.floor(pos) + 1, n - 1)))
    part = np.partition(v, sorted(ranks))

    def pct(q: float) -> float:
        pos = (n - 1) * q / 100.0
        lo = math.floor(pos)
        hi = min(lo + 1, n - 1)
        a, b = float(part[lo]), float(part[hi])
        return a + (b - a) * (pos - lo)

    return Distribution(
        count=n,
        mean=float(v.mean()),
        median=pct(50),
        p90=pct(90),
        p95=pct(95),
        p99=pct(99),
        max=float(part[n - 1]),
        min=float(part[0]),
    )


def parse_slo(text: str) -> dict[str, float]:
    """``ttft_ms=500,tpot_ms=50`` -> {"ttft_ms": 500.0, "tpot_ms": 50.0}."""
    slo: dict[str, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in SLO_KEYS:
            raise UsageError(
                f"bad SLO {part.strip()!r}", hint=f"use KEY=VALUE with KEY in {', '.join(SLO_KEYS)}"
            )
        try:
            number = float(value)
        except ValueError as exc:
            raise UsageError(f"bad SLO value in {part.strip()!r}") from exc
        if not math.isfinite(number) or number <= 0:
            raise UsageError(f"bad SLO value in {part.strip()!r}: must be a number > 0")
        slo[key] = number
    return slo


def _meets(r: RequestRecord, slo: dict[str, float]) -> bool:
    if not r.ok:
        return False
    if "ttft_ms" in slo:
        ttft = r.ttft_s
        if ttft is None or ttft * 1000 > slo["ttft_ms"]:
            return False
    if "tpot_ms" in slo:
        tpot = r.tpot_s
        if tpot is not None and tpot * 1000 > slo["tpot_ms"]:
            return False
    return not ("e2e_ms" in slo and r.e2e_s * 1000 > slo["e2e_ms"])


def _latencies(
    ok: Sequence[RequestRecord], starts: Any, ends: Any, outs: Any, counts: Any
) -> dict[str, Any]:
    """TTFT, pooled ITL, TPOT and E2E in ms (numpy arrays) of successful records, with the
    same arithmetic as :class:`RequestRecord`'s properties, vectorised: a stage of 100,000
    requests has millions of inter-token gaps."""
    import numpy as np

    flat = np.fromiter(
        itertools.chain.from_iterable(r.token_times_s for r in ok), float, int(counts.sum())
    )
    firsts = np.cumsum(counts) - counts  # index in flat of each record's first chunk
    has = counts > 0
    ttft_s = flat[firsts[has]] - starts[has]
    # gaps between consecutive chunks, minus the ones that straddle two records
    keep = np.ones(max(len(flat) - 1, 0), dtype=bool)
    keep[firsts[has][1:] - 1] = False
    itl = (flat[1:] - flat[:-1])[keep] * 1000.0
    e2e_s = ends - starts
    with_tpot = has & (outs >= 2)
    tpot = (e2e_s[with_tpot] - (flat[firsts[with_tpot]] - starts[with_tpot])) / (
        outs[with_tpot] - 1
    )
    return {"ttft": ttft_s * 1000.0, "itl": itl, "tpot": tpot * 1000.0, "e2e": e2e_s * 1000.0}


def summarize(
    records: Sequence[RequestRecord], slo: dict[str, float] | None = None
) -> StageSummary:
    """The summary of one stage, every figure derived from ``records`` (definitions in the
    module docstring); warm-up records are only counted."""
    import numpy as np

    measured = [r for r in records if not r.warmup]
    ok: list[RequestRecord] = []
    errors: dict[str, int] = {}
    messages: dict[str, str] = {}
    sources: dict[str, int] = {}
    lag: list[float] = []
    starts: list[float] = []
    ends: list[float] = []
    outs: list[int] = []
    counts: list[int] = []
    prompt_tokens = 0
    cached: int | None = None
    window_start = math.inf
    window_end = -math.inf
    busy = 0.0
    for r in measured:  # one pass: a stage may hold 100,000 records
        start, end = r.start_s, r.end_s
        window_start = min(window_start, start)
        window_end = max(window_end, end)
        busy += end - start
        if r.scheduled_s is not None:
            lag.append((start - r.scheduled_s) * 1000.0)
        error = r.error
        if error is not None:
            errors[error] = errors.get(error, 0) + 1
            if r.error_detail and error not in messages:
                messages[error] = r.error_detail
            continue
        ok.append(r)
        starts.append(start)
        ends.append(end)
        outs.append(r.output_tokens or 0)
        counts.append(len(r.token_times_s))
        prompt_tokens += r.prompt_tokens or 0
        if r.cached_tokens is not None:
            cached = (cached or 0) + r.cached_tokens
        sources[r.token_source] = sources.get(r.token_source, 0) + 1
    duration = max(window_end - window_start, 1e-9) if measured else 0.0
    output_tokens = sum(outs)
    lat = _latencies(
        ok, np.array(starts, dtype=float), np.array(ends, dtype=float),
        np.array(outs, dtype=np.int64), np.array(counts, dtype=np.int64),
    )

    def rate(x: float) -> float:
        return x / duration if duration > 0 else 0.0

    goodput = None
    if slo:
        good = sum(1 for r in measured if _meets(r, slo))
        goodput = GoodputSummary(
            slo=dict(slo),
            good_requests=good,
            requests_per_s=rate(good),
            ratio=good / len(measured) if measured else 0.0,
        )
    return StageSummary(
        requests=len(measured),
        ok=len(ok),
        failed=len(measured) - len(ok),
        warmup_excluded=len(records) - len(measured),
        errors_by_cause=dict(sorted(errors.items())),
        error_messages=dict(sorted(messages.items())),
        error_rate=(len(measured) - len(ok)) / len(measured) if measured else 0.0,
        duration_s=duration,
        ttft_ms=distribution(lat["ttft"]),
        itl_ms=distribution(lat["itl"]),
        tpot_ms=distribution(lat["tpot"]),
        e2e_ms=distribution(lat["e2e"]),
        schedule_lag_ms=distribution(lag),
        prompt_tokens=prompt_tokens,
        output_tokens=output_tokens,
        cached_prompt_tokens=cached,
        output_tokens_per_s=rate(output_tokens),
        total_tokens_per_s=rate(output_tokens + prompt_tokens),
        requests_per_s=rate(len(ok)),
        concurrency=rate(busy),
        token_sources=sources,
        goodput=goodput,
        by_turn=_by_turn(measured),
    )


def resummarize(report: BenchReport, slo: dict[str, float]) -> None:
    """Derive every stage summary of ``report`` again from its records, with goodput under
    ``slo``, and record ``slo`` in its config (``bench report --slo``)."""
    report.config.slo = dict(slo)
    for stage in report.stages:
        client = stage.summary.client  # the client's self-check is not derived from records
        stage.summary = summarize(stage.records, slo or None)
        stage.summary.client = client


def _by_turn(measured: Sequence[RequestRecord]) -> list[TurnSummary]:
    """Per turn of a multi-turn stage: requests, successes, TTFT, prompt and cached prompt
    tokens (empty when no record has a turn)."""
    turns: dict[int, list[RequestRecord]] = {}
    for r in measured:
        if r.turn is not None:
            turns.setdefault(r.turn, []).append(r)
    rows = []
    for turn in sorted(turns):
        ok = [r for r in turns[turn] if r.ok]
        cached = [r.cached_tokens for r in ok if r.cached_tokens is not None]
        rows.append(TurnSummary(
            turn=turn,
            requests=len(turns[turn]),
            ok=len(ok),
            ttft_ms=distribution([(r.token_times_s[0] - r.start_s) * 1000.0
                                  for r in ok if r.token_times_s]),
            prompt_tokens=sum(r.prompt_tokens or 0 for r in ok),
            cached_prompt_tokens=sum(cached) if cached else None,
        ))
    return rows
