"""``bench compare``'s verdicts: is a run better, worse, or not significantly different?

Runs from different days differ by noise; a verdict says a change is real only when these
tests agree:

1. **It is larger than the noise threshold** (``threshold_pct``, default
   :data:`DEFAULT_THRESHOLD_PCT` %): a change smaller than that is below what back-to-back
   runs of the same server on a shared machine move by (docs/bench.md), so it is "no
   significant change" whatever the statistics say. A latency must also move by at least
   ``min_change_ms`` (default :data:`DEFAULT_MIN_CHANGE_MS` ms): sub-millisecond latencies
   (an ITL of 1 ms against a fast mock) move by tens of percent between back-to-back runs of
   one server, with the machine's scheduling, not the server's work, and the per-request
   bootstrap below cannot see that between-run noise.
2. **It is outside the run-to-run sampling noise**, judged from the per-request records the
   reports keep: for the median and p99 of TTFT, TPOT, ITL and E2E, a percentile bootstrap
   (Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993, ch. 13): both runs'
   samples are resampled with replacement :data:`RESAMPLES` times, the statistic is taken
   on each resample, and the 2.5th and 97.5th percentiles of the differences bound a 95%
   interval of the change; the change is significant when that interval excludes 0. The
   error rate uses the normal-approximation interval of a difference of two proportions
   (Wald), and a change of at least :data:`ERROR_RATE_THRESHOLD_PT` points. Throughputs
   (requests/s, output tok/s) are one number per run, with no per-request distribution to
   resample: they are judged by the threshold alone, and the verdict says so
   (``method="threshold"``). A p99 gets a verdict only from at least 100 values in each run
   (``ceil(1 / (1 - 0.99))``): with fewer it is the slowest request, and one slow request is
   not a regression (``method="too few samples"``, verdict "not measured").

Why a bootstrap and not Mann-Whitney: Mann-Whitney tests whether one distribution tends to
be shifted against the other, not whether the median or the p99 moved, and a p99 can
regress while the bulk (and so the rank test) stays put. The bootstrap answers the question
for the statistic itself. numpy (already a dependency) does the resampling vectorised;
SciPy would add ~40 MB for the same ``np.quantile`` calls. The generator is seeded, so a
comparison gives the same verdicts every time. Samples above :data:`MAX_SAMPLE` values (ITL
pools every gap of every request) are first thinned to that many by a seeded draw without
replacement, which keeps the cost near a second per stage of 2,000 requests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from llmdeploy.bench.columns import METRICS
from llmdeploy.bench.report import BenchReport, RequestRecord, StageResult

__all__ = [
    "COMPARED",
    "DEFAULT_MIN_CHANGE_MS",
    "DEFAULT_THRESHOLD_PCT",
    "ERROR_RATE_THRESHOLD_PT",
    "MAX_SAMPLE",
    "RESAMPLES",
    "Verdict",
    "compare_verdicts",
    "regressions",
    "verdict_line",
]

DEFAULT_THRESHOLD_PCT = 5.0
DEFAULT_MIN_CHANGE_MS = 1.0
ERROR_RATE_THRESHOLD_PT = 0.5  # percentage points
RESAMPLES = 1000  # Efron & Tibshirani: >= 1000 for percentile intervals
MAX_SAMPLE = 5000
_Z95 = 1.959963984540054  # two-sided 95% normal quantile

VerdictWord = Literal["better", "worse", "no significant change", "not measured"]

# (metric key, label): the latency statistics judged by bootstrap, then the rest
_LATENCY = (("ttft", "TTFT"), ("tpot", "TPOT"), ("itl", "ITL"), ("e2e", "E2E"))
COMPARED: tuple[tuple[str, str], ...] = (
    *((f"{n}_{stat}_ms", f"{label} {'p50' if stat == 'median' else stat}")
      for n, label in _LATENCY for stat in ("median", "p99")),
    ("requests_per_s", "requests/s"),
    ("output_tokens_per_s", "output tok/s"),
    ("error_rate", "error rate"),
)


@dataclass(frozen=True)
class Verdict:
    """One metric of one stage, a later run against the base run.

    ``change_pct``: (value - base) / base x 100 (the error rate: the difference in
    percentage points). ``low_pct`` / ``high_pct``: the 95% interval of that change (None
    for threshold-only metrics). ``method``: ``bootstrap``, ``proportions`` or
    ``threshold``."""

    stage: str
    metric: str
    label: str
    base: float | None
    value: float | None
    change_pct: float | None
    low_pct: float | None
    high_pct: float | None
    method: str
    verdict: VerdictWord

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_verdicts(
    base: BenchReport,
    other: BenchReport,
    *,
    threshold_pct: float = DEFAULT_THRESHOLD_PCT,
    min_change_ms: float = DEFAULT_MIN_CHANGE_MS,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> list[Verdict]:
    """Verdicts for every metric of :data:`COMPARED` in every stage the two runs share
    (matched by name, in the base run's order); a latency that moved by less than
    ``min_change_ms`` milliseconds is no significant change."""
    import numpy as np

    rng = np.random.default_rng(seed)
    names = {st.name: st for st in other.stages}
    verdicts: list[Verdict] = []
    for st in base.stages:
        later = names.get(st.name)
        if later is None:
            continue
        for key, label in COMPARED:
            verdict = _judge(st, later, key, label, threshold_pct, resamples, rng)
            small = (key.endswith("_ms") and verdict.base is not None
                     and verdict.value is not None
                     and abs(verdict.value - verdict.base) < min_change_ms)
            if small and verdict.verdict in ("better", "worse"):
                verdict = replace(verdict, verdict="no significant change")
            verdicts.append(verdict)
    return verdicts


def _judge(
    a: StageResult, b: StageResult, key: str, label: str, threshold: float, resamples: int,
    rng: Any,
) -> Verdict:
    metric = METRICS[key]
    va, vb = metric.value(a.summary), metric.value(b.summary)
    if va is None or vb is None:
        return Verdict(a.name, key, label, va, vb, None, None, None, "-", "not measured")
    if key == "error_rate":
        return _proportions(a, b, label, va, vb)
    change = _pct(va, vb)
    name, _, stat = key.rpartition("_ms")[0].partition("_")
    sa, sb = _samples(a.records, name), _samples(b.records, name)
    if name not in dict(_LATENCY) or len(sa) < 2 or len(sb) < 2:
        word = _word(change, change, change, threshold, metric.higher_is_better)
        return Verdict(a.name, key, label, va, vb, change, None, None, "threshold", word)
    q = 0.5 if stat == "median" else 0.99
    if min(len(sa), len(sb)) < math.ceil(1 / (1 - q)):
        # under 100 values a p99 is the maximum, one slow request: no verdict on it
        return Verdict(a.name, key, label, va, vb, change, None, None, "too few samples",
                       "not measured")
    low, high = _bootstrap(sa, sb, q, va, resamples, rng)
    word = _word(change, low, high, threshold, metric.higher_is_better)
    return Verdict(a.name, key, label, va, vb, change, low, high, "bootstrap", word)


def _pct(base: float, value: float) -> float | None:
    if base == 0:
        return 0.0 if value == 0 else None
    return (value - base) / abs(base) * 100.0


def _word(
    change: float | None, low: float | None, high: float | None, threshold: float,
    higher_is_better: bool,
) -> VerdictWord:
    """Worse or better only when the change passes the threshold and its interval
    excludes 0; a change from 0 (no percentage) counts as passing the threshold."""
    if low is None or high is None:
        return "no significant change"
    big = change is None or abs(change) >= threshold
    if not big or low <= 0 <= high:
        return "no significant change"
    up = low > 0
    return "better" if up == higher_is_better else "worse"


def _samples(records: Sequence[RequestRecord], name: str) -> list[float]:
    """Per-request values (ms) of latency ``name`` over the successful measured records."""
    ok = [r for r in records if r.ok and not r.warmup]
    if name == "ttft":
        return [(r.token_times_s[0] - r.start_s) * 1000.0 for r in ok if r.token_times_s]
    if name == "tpot":
        return [tp * 1000.0 for r in ok if (tp := r.tpot_s) is not None]
    if name == "itl":
        return [(b - a) * 1000.0 for r in ok
                for a, b in zip(r.token_times_s, r.token_times_s[1:], strict=False)]
    return [r.e2e_s * 1000.0 for r in ok]


def _bootstrap(
    a: list[float], b: list[float], q: float, base: float, resamples: int, rng: Any
) -> tuple[float | None, float | None]:
    """95% percentile-bootstrap interval of (quantile q of b - quantile q of a), as % of
    ``base`` (None bounds when ``base`` is 0)."""
    import numpy as np

    xa, xb = _thin(np.asarray(a), rng), _thin(np.asarray(b), rng)
    diffs = np.empty(resamples)
    chunk = max(1, 2_000_000 // max(len(xa), len(xb)))
    for start in range(0, resamples, chunk):
        k = min(chunk, resamples - start)
        qa = np.quantile(xa[rng.integers(0, len(xa), size=(k, len(xa)))], q, axis=1)
        qb = np.quantile(xb[rng.integers(0, len(xb), size=(k, len(xb)))], q, axis=1)
        diffs[start:start + k] = qb - qa
    low, high = np.percentile(diffs, [2.5, 97.5])
    if base == 0:
        return (None, None) if low <= 0 <= high else (math.copysign(math.inf, low),
                                                      math.copysign(math.inf, high))
    return float(low / abs(base) * 100.0), float(high / abs(base) * 100.0)


def _thin(x: Any, rng: Any) -> Any:
    return x if len(x) <= MAX_SAMPLE else rng.choice(x, size=MAX_SAMPLE, replace=False)


def _proportions(a: StageResult, b: StageResult, label: str, pa: float, pb: float) -> Verdict:
    """Error rate: the change in percentage points with a Wald 95% interval; worse or
    better when the interval excludes 0 and the change is at least
    :data:`ERROR_RATE_THRESHOLD_PT` points (a relative threshold means nothing from 0%)."""
    na, nb = a.summary.requests, b.summary.requests
    diff = (pb - pa) * 100.0
    if na == 0 or nb == 0:
        return Verdict(a.name, "error_rate", label, pa, pb, diff, None, None, "proportions",
                       "not measured")
    se = math.sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb) * 100.0
    low, high = diff - _Z95 * se, diff + _Z95 * se
    word: VerdictWord = "no significant change"
    if abs(diff) >= ERROR_RATE_THRESHOLD_PT and not low <= 0 <= high:
        word = "worse" if diff > 0 else "better"
    return Verdict(a.name, "error_rate", label, pa, pb, diff, low, high, "proportions", word)


def regressions(verdicts: Sequence[Verdict]) -> list[Verdict]:
    return [v for v in verdicts if v.verdict == "worse"]


def verdict_line(verdicts: Sequence[Verdict]) -> str:
    """One line: what got worse, what got better, how many did not change."""
    worse = [v for v in verdicts if v.verdict == "worse"]
    better = [v for v in verdicts if v.verdict == "better"]
    same = sum(1 for v in verdicts if v.verdict == "no significant change")

    def named(vs: list[Verdict]) -> str:
        return ", ".join(f"{v.label} {_signed(v)} ({v.stage})" for v in vs)

    parts = []
    if worse:
        parts.append(f"WORSE: {named(worse)}")
    if better:
        parts.append(f"better: {named(better)}")
    parts.append(f"{same} no significant change")
    if not worse and not better:
        return "no significant change (" + parts[-1].split(" ", 1)[0] + " metrics)"
    return "; ".join(parts)


def _signed(v: Verdict) -> str:
    if v.change_pct is None:
        return "from 0"
    unit = " pt" if v.metric == "error_rate" else "%"
    return f"{v.change_pct:+.1f}{unit}"
