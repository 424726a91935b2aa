"""Plain rows for every tabular output (console, CSV, HTML, compare): one source of truth."""

from __future__ import annotations

from llmdeploy.bench.gates import metric_value
from llmdeploy.bench.report import BenchReport, Distribution, StageResult, StageSummary

__all__ = [
    "COMPARE_METRICS",
    "CSV_COLUMNS",
    "compare_rows",
    "request_rows",
    "stage_csv_row",
]

# (metric key for metric_value, label, higher_is_better)
COMPARE_METRICS: list[tuple[str, str, bool]] = [
    ("requests_per_s", "requests/s", True),
    ("output_tokens_per_s", "output tok/s", True),
    ("total_tokens_per_s", "total tok/s", True),
    ("concurrency", "concurrency", True),
    ("ttft_median_ms", "TTFT p50 ms", False),
    ("ttft_p99_ms", "TTFT p99 ms", False),
    ("itl_median_ms", "ITL p50 ms", False),
    ("itl_p99_ms", "ITL p99 ms", False),
    ("tpot_median_ms", "TPOT p50 ms", False),
    ("tpot_p99_ms", "TPOT p99 ms", False),
    ("e2e_median_ms", "E2E p50 ms", False),
    ("e2e_p99_ms", "E2E p99 ms", False),
    ("error_rate", "error rate", False),
    ("goodput_per_s", "goodput req/s", True),
]

_DISTS = ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms")
_STATS = ("mean", "median", "p90", "p95", "p99", "max")

CSV_COLUMNS = [
    "stage",
    "mode",
    "load",
    "requests",
    "ok",
    "failed",
    "error_rate",
    "duration_s",
    "requests_per_s",
    "output_tokens_per_s",
    "total_tokens_per_s",
    "concurrency",
    "prompt_tokens",
    "output_tokens",
    "cached_prompt_tokens",
    "token_source",
    *[f"{d[:-3]}_{s}_ms" for d in _DISTS for s in _STATS],
    "goodput_per_s",
    "goodput_ratio",
    "errors_by_cause",
]


def _dist(d: Distribution | None, stat: str) -> float | None:
    return None if d is None else float(getattr(d, stat))


def token_source_label(summary: StageSummary) -> str:
    if not summary.token_sources:
        return "-"
    return "+".join(f"{k}" for k, _ in sorted(summary.token_sources.items(), key=lambda x: -x[1]))


def stage_csv_row(stage: StageResult) -> dict[str, object]:
    s = stage.summary
    row: dict[str, object] = {
        "stage": stage.name,
        "mode": stage.load.mode,
        "load": stage.load.value,
        "requests": s.requests,
        "ok": s.ok,
        "failed": s.failed,
        "error_rate": round(s.error_rate, 6),
        "duration_s": round(s.duration_s, 6),
        "requests_per_s": round(s.requests_per_s, 4),
        "output_tokens_per_s": round(s.output_tokens_per_s, 4),
        "total_tokens_per_s": round(s.total_tokens_per_s, 4),
        "concurrency": round(s.concurrency, 4),
        "prompt_tokens": s.prompt_tokens,
        "output_tokens": s.output_tokens,
        "cached_prompt_tokens": "" if s.cached_prompt_tokens is None else s.cached_prompt_tokens,
        "token_source": token_source_label(s),
        "goodput_per_s": "" if s.goodput is None else round(s.goodput.requests_per_s, 4),
        "goodput_ratio": "" if s.goodput is None else round(s.goodput.ratio, 6),
        "errors_by_cause": ";".join(f"{k}={v}" for k, v in s.errors_by_cause.items()),
    }
    for d in _DISTS:
        for st in _STATS:
            v = _dist(getattr(s, d), st)
            row[f"{d[:-3]}_{st}_ms"] = "" if v is None else round(v, 4)
    return row


def request_rows(report: BenchReport) -> list[dict[str, object]]:
    """One row per request with its derived latencies (for --requests-csv)."""
    rows: list[dict[str, object]] = []
    for stage in report.stages:
        for r in stage.records:
            ttft, tpot = r.ttft_s, r.tpot_s
            rows.append(
                {
                    "stage": stage.name,
                    "index": r.index,
                    "warmup": r.warmup,
                    "start_s": round(r.start_s, 6),
                    "end_s": round(r.end_s, 6),
                    "ttft_ms": "" if ttft is None else round(ttft * 1000, 4),
                    "tpot_ms": "" if tpot is None else round(tpot * 1000, 4),
                    "e2e_ms": round(r.e2e_s * 1000, 4),
                    "chunks": len(r.token_times_s),
                    "prompt_tokens": "" if r.prompt_tokens is None else r.prompt_tokens,
                    "output_tokens": "" if r.output_tokens is None else r.output_tokens,
                    "cached_tokens": "" if r.cached_tokens is None else r.cached_tokens,
                    "token_source": r.token_source,
                    "error": r.error or "",
                    "error_detail": r.error_detail or "",
                }
            )
    return rows


def compare_rows(
    reports: list[BenchReport],
) -> list[tuple[str, str, list[float | None], list[float | None], bool]]:
    """Rows (stage, metric label, values per report, % delta vs the first, higher_is_better).

    Stages are matched by name; a stage missing from a run shows as None."""
    names: list[str] = []
    for rep in reports:
        for st in rep.stages:
            if st.name not in names:
                names.append(st.name)
    rows: list[tuple[str, str, list[float | None], list[float | None], bool]] = []
    for name in names:
        summaries = [next((s.summary for s in r.stages if s.name == name), None) for r in reports]
        for key, label, higher in COMPARE_METRICS:
            values = [None if s is None else metric_value(s, key) for s in summaries]
            base = values[0]
            deltas: list[float | None] = []
            for v in values:
                if v is None or base is None or base == 0:
                    deltas.append(None)
                else:
                    deltas.append((v - base) / abs(base) * 100.0)
            if all(v is None for v in values):
                continue
            rows.append((name, label, values, deltas, higher))
    return rows
