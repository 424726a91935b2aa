"""``--vllm-json``: the result file of ``vllm bench serve --save-result --save-detailed``.

vLLM is not importable here (it needs torch); this contract test mirrors the keys vLLM's
``vllm/benchmarks/serve.py`` writes (``benchmark()``'s ``result`` dict, ``main_async()``'s
setup keys and ``process_one_metric``'s ``mean_/median_/std_/p<P>_<metric>_ms``; read at
vllm-project/vllm commit 009e6d4a and in vLLM 0.32.0) and checks our values against vLLM's
definitions. ``tests/e2e/test_vllm_json_real.py`` loads the file with vLLM's own readers in
the vLLM CPU image.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from llmdeploy.bench.config import (
    BenchConfig,
    LengthDist,
    LoadSpec,
    StopSpec,
    TargetSpec,
    WorkloadSpec,
)
from llmdeploy.bench.mock_server import MockServer
from llmdeploy.bench.report import load_report
from llmdeploy.bench.runner import run_bench
from llmdeploy.bench.vllm_json import write_vllm_json
from llmdeploy.cli import bench

# what `vllm bench serve --save-result --save-detailed` writes for a generation benchmark
VLLM_SETUP_KEYS = {"date", "endpoint_type", "backend", "label", "model_id", "tokenizer_id",
                   "num_prompts", "request_rate", "burstiness", "max_concurrency"}
VLLM_RESULT_KEYS = {"duration", "completed", "failed", "total_input_tokens",
                    "total_output_tokens", "request_throughput", "request_goodput",
                    "output_throughput", "total_token_throughput", "input_lens",
                    "output_lens", "ttfts", "itls", "latencies", "start_times", "queue_times",
                    "generated_texts", "errors", "max_output_tokens_per_s",
                    "max_concurrent_requests", "rtfx"}
VLLM_METRIC_KEYS = {f"{stat}_{m}_ms" for m in ("ttft", "tpot", "itl", "e2el")
                    for stat in ("mean", "median", "std", "p50", "p90", "p95", "p99")}
PER_REQUEST = ("input_lens", "output_lens", "ttfts", "itls", "latencies", "start_times",
               "queue_times", "generated_texts", "errors")


def _report(server: MockServer) -> object:
    return run_bench(BenchConfig(
        target=TargetSpec(base_url=f"http://127.0.0.1:{server.port}"),
        workload=WorkloadSpec(input_tokens=LengthDist.parse(12),
                              output_tokens=LengthDist.parse(6)),
        stages=[LoadSpec(mode="concurrency", value=3),
                LoadSpec(mode="rate", value=40, arrivals="poisson")],
        stop=StopSpec(requests=15, warmup_requests=2, timeout_s=10),
        slo={"ttft_ms": 1000},
    ))


def test_vllm_json_has_vllms_keys_and_definitions(
    mock_server: Callable[..., MockServer], tmp_path: Path
) -> None:
    server = mock_server(ttft_ms=3, itl_ms=1, error_rate=0.1, seed=4)
    report = _report(server)
    path = tmp_path / "vllm.json"
    write_vllm_json(report, path)  # type: ignore[arg-type]
    lines = path.read_text().splitlines()
    assert len(lines) == 2  # one object per stage, as --append-result writes
    for line, stage in zip(lines, report.stages, strict=True):  # type: ignore[attr-defined]
        got = json.loads(line)
        missing = (VLLM_SETUP_KEYS | VLLM_RESULT_KEYS | VLLM_METRIC_KEYS) - set(got)
        assert not missing, missing
        measured = [r for r in stage.records if not r.warmup]
        ok = [r for r in measured if r.ok]
        assert got["completed"] == len(ok) == stage.summary.ok
        assert got["failed"] == len(measured) - len(ok) and got["num_prompts"] == 15
        assert all(len(got[k]) == 15 for k in PER_REQUEST)
        assert got["errors"].count("") == len(ok)
        # vLLM's definitions: seconds per request, numpy statistics in ms over successes
        ttfts = [t for t, e in zip(got["ttfts"], got["errors"], strict=True) if not e]
        assert np.isclose(got["mean_ttft_ms"], np.mean(ttfts) * 1000)
        assert np.isclose(got["p99_ttft_ms"], np.percentile(ttfts, 99) * 1000)
        assert np.isclose(got["std_ttft_ms"], np.std(ttfts) * 1000)
        assert np.isclose(got["median_ttft_ms"], stage.summary.ttft_ms.median)
        assert np.isclose(got["p99_e2el_ms"], stage.summary.e2e_ms.p99)
        itls = [gap for gaps in got["itls"] for gap in gaps]
        assert np.isclose(got["mean_itl_ms"], np.mean(itls) * 1000)
        assert np.isclose(got["mean_tpot_ms"], stage.summary.tpot_ms.mean)
        assert got["total_output_tokens"] == sum(got["output_lens"]) == 6 * len(ok)
        assert got["total_input_tokens"] == stage.summary.prompt_tokens
        assert np.isclose(got["request_throughput"], stage.summary.requests_per_s)
        assert np.isclose(got["output_throughput"], stage.summary.output_tokens_per_s)
        assert got["request_goodput"] is not None
        assert 1 <= got["max_concurrent_requests"] <= 15
        assert got["backend"] == "openai-chat" and got["model_id"] == "mock-model"
        assert len(got["date"]) == 15 and got["date"][8] == "-"  # %Y%m%d-%H%M%S
    first, second = (json.loads(x) for x in lines)
    assert first["failed"] + second["failed"] > 0  # injected errors counted, not hidden
    assert (first["request_rate"], first["max_concurrency"]) == ("inf", 3)
    assert (second["request_rate"], second["burstiness"]) == (40, 1.0)
    assert any(q > 0 for q in second["queue_times"]) or second["queue_times"] == [0.0] * 15


def test_bench_report_writes_the_vllm_json_of_a_saved_run(
    mock_server: Callable[..., MockServer], tmp_path: Path
) -> None:
    server = mock_server(ttft_ms=1, itl_ms=1)
    url = f"http://127.0.0.1:{server.port}/v1"
    run = tmp_path / "run.json"
    first = tmp_path / "first.json"
    result = CliRunner().invoke(bench.app, ["--url", url, "-n", "5", "--output-tokens", "3",
                                            "--output", str(run), "--vllm-json", str(first)])
    assert result.exit_code == 0, result.output
    again = tmp_path / "again.json"
    result = CliRunner().invoke(bench.app, ["report", str(run), "--vllm-json", str(again)])
    assert result.exit_code == 0, result.output
    assert json.loads(first.read_text()) == json.loads(again.read_text())
    assert json.loads(again.read_text())["completed"] == load_report(run).stages[0].summary.ok
