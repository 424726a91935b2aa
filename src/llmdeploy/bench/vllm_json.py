"""The result JSON of ``vllm bench serve --save-result --save-detailed``, from a bench report.

vLLM (``vllm/benchmarks/serve.py``, ``benchmark()`` and ``main_async()``) writes one JSON
object per run: the setup (``date`` as ``%Y%m%d-%H%M%S``, ``endpoint_type``, ``backend``,
``label``, ``model_id``, ``tokenizer_id``, ``num_prompts``, ``request_rate`` (``"inf"`` when
unlimited), ``burstiness``, ``max_concurrency``), the totals (``duration``, ``completed``,
``failed``, ``total_input_tokens``, ``total_output_tokens``, ``request_throughput``,
``request_goodput``, ``output_throughput``, ``total_token_throughput``,
``max_output_tokens_per_s``, ``max_concurrent_requests``, ``rtfx``), per request
(``input_lens``, ``output_lens``, ``ttfts`` and ``latencies`` in seconds, ``itls`` as lists of
seconds, ``start_times``, ``queue_times``, ``generated_texts``, ``errors``), and for each of
``ttft``, ``tpot``, ``itl``, ``e2el``: ``mean_<m>_ms``, ``median_<m>_ms``, ``std_<m>_ms`` and
``p<P>_<m>_ms`` (``P`` written as an integer when whole: ``p99_ttft_ms``, ``p99.9_ttft_ms``).

:func:`vllm_result` builds that object for one stage with vLLM's definitions: statistics over
successful requests with numpy's mean, population standard deviation, median and linear
percentiles (0 when there are none, as vLLM's ``np.mean(x or 0)``); failed requests count in
``failed`` and appear in the per-request lists with 0 latencies and their error. The
percentiles written are :data:`PERCENTILES` (vLLM's ``--metric-percentiles 50,90,95,99``).
A run of several stages is written like ``vllm bench serve --append-result``: one object per
line. What vLLM has and we do not: ``tokenizer_id`` is null (no tokenizer: prompt and output
lengths are the server's counts), ``generated_texts`` are empty strings (the bench keeps no
text). llmdeploy adds ``llmdeploy_stage`` and ``llmdeploy_report_schema`` (extra keys, as
``--metadata`` adds).
"""

from __future__ import annotations

import itertools
import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

from llmdeploy.bench.report import BenchReport, RequestRecord, StageResult, write_text

__all__ = ["PERCENTILES", "VLLM_METRICS", "vllm_result", "vllm_results", "write_vllm_json"]

PERCENTILES = (50.0, 90.0, 95.0, 99.0)
VLLM_METRICS = ("ttft", "tpot", "itl", "e2el")


def vllm_results(report: BenchReport) -> list[dict[str, Any]]:
    """One vLLM result object per stage of ``report``."""
    return [vllm_result(report, st) for st in report.stages]


def write_vllm_json(report: BenchReport, path: str | Path) -> None:
    """Write the vLLM result file: one JSON object (one stage), else one per line."""
    text = "\n".join(json.dumps(r) for r in vllm_results(report))
    write_text(path, text, "vLLM result JSON")


def _backend(report: BenchReport) -> str:
    t = report.config.target
    if t.api == "ollama":
        return "ollama"  # not one of vLLM's backends; the closest honest name
    return "openai-chat" if t.endpoint == "chat" else "openai"


def _date(created_at: str) -> str:
    try:
        return datetime.fromisoformat(created_at).strftime("%Y%m%d-%H%M%S")
    except ValueError:
        return created_at


def _itls(r: RequestRecord) -> list[float]:
    t = r.token_times_s
    return [b - a for a, b in itertools.pairwise(t)] if r.ok else []


def _error(r: RequestRecord) -> str:
    if r.ok:
        return ""
    return f"{r.error}: {r.error_detail}" if r.error_detail else str(r.error)


def vllm_result(report: BenchReport, stage: StageResult) -> dict[str, Any]:
    """The object ``vllm bench serve --save-result --save-detailed`` writes, for one stage
    (warm-up requests left out, as vLLM's warm-ups are)."""
    import numpy as np

    load = stage.load
    s = stage.summary
    measured = [r for r in stage.records if not r.warmup]
    ok = [r for r in measured if r.ok]
    duration = s.duration_s if s.duration_s > 0 else 1e-9
    output_lens = [(r.output_tokens or 1) if r.ok else 0 for r in measured]
    total_input = sum(r.prompt_tokens or 0 for r in ok)
    total_output = sum(output_lens)
    series: dict[str, list[float]] = {
        "ttft": [r.ttft_s for r in ok if r.ttft_s is not None],
        "tpot": [tp for r in ok if (tp := r.tpot_s) is not None],
        "itl": [gap for r in ok for gap in _itls(r)],
        "e2el": [r.e2e_s for r in ok],
    }
    if load.mode == "concurrency":
        rate: float | str = "inf"
        burstiness: float | str = 1.0
        max_concurrency: int | None = int(load.value)
    else:
        rate = load.value if load.mode == "rate" else "inf"
        # vLLM: burstiness 1 = Poisson; constant gaps are the gamma limit of infinite shape
        burstiness = 1.0 if load.arrivals == "poisson" else "inf"
        max_concurrency = load.max_concurrency
    peak_tokens, peak_concurrency = _peaks(ok)
    result: dict[str, Any] = {
        "date": _date(report.created_at),
        "endpoint_type": _backend(report),
        "backend": _backend(report),
        "label": "llmdeploy-bench",
        "model_id": report.model,
        "tokenizer_id": None,
        "num_prompts": len(measured),
        "request_rate": rate,
        "burstiness": burstiness,
        "max_concurrency": max_concurrency,
        "duration": s.duration_s,
        "completed": len(ok),
        "failed": len(measured) - len(ok),
        "total_input_tokens": total_input,
        "total_output_tokens": total_output,
        "request_throughput": len(ok) / duration,
        "request_goodput": s.goodput.requests_per_s if s.goodput is not None else None,
        "output_throughput": total_output / duration,
        "total_token_throughput": (total_input + total_output) / duration,
        "input_lens": [r.prompt_tokens or 0 for r in measured],
        "output_lens": output_lens,
        "ttfts": [(r.ttft_s or 0.0) if r.ok else 0.0 for r in measured],
        "itls": [_itls(r) for r in measured],
        "latencies": [r.e2e_s if r.ok else 0.0 for r in measured],
        "start_times": [r.start_s for r in measured],
        "queue_times": [
            max(0.0, r.start_s - r.scheduled_s) if r.scheduled_s is not None else 0.0
            for r in measured
        ],
        "generated_texts": ["" for _ in measured],
        "errors": [_error(r) for r in measured],
        "max_output_tokens_per_s": peak_tokens,
        "max_concurrent_requests": peak_concurrency,
        "rtfx": 0.0,
    }
    for name in VLLM_METRICS:
        values = np.asarray(series[name] or [0.0], dtype=float) * 1000.0
        result[f"mean_{name}_ms"] = float(np.mean(values))
        result[f"median_{name}_ms"] = float(np.median(values))
        result[f"std_{name}_ms"] = float(np.std(values))
        for p in PERCENTILES:
            word = str(int(p)) if int(p) == p else str(p)
            result[f"p{word}_{name}_ms"] = float(np.percentile(values, p))
    result["llmdeploy_stage"] = stage.name
    result["llmdeploy_report_schema"] = report.schema_version
    return result


def _peaks(ok: list[RequestRecord]) -> tuple[float, int]:
    """vLLM's ``max_output_tokens_per_s`` (content chunks per one-second bucket from the
    first start, its token times being start + ttft + cumulative itls, i.e. the chunk
    arrivals) and ``max_concurrent_requests`` (a sweep over half-open [start, end))."""
    if not ok:
        return 0.0, 0
    first = min(r.start_s for r in ok)
    last = max(r.end_s for r in ok)
    buckets = [0] * (math.ceil(last - first) + 1)
    for r in ok:
        for t in r.token_times_s:
            k = int(t - first)
            if 0 <= k < len(buckets):
                buckets[k] += 1
    events = sorted([(r.start_s, 1) for r in ok] + [(r.end_s, -1) for r in ok])
    now = peak = 0
    for _, delta in events:
        now += delta
        peak = max(peak, now)
    return float(max(buckets)), peak
