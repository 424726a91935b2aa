"""``bench compare`` verdicts: better, worse or no significant change, from the records."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from llmdeploy.bench.compare import compare_verdicts, verdict_line
from llmdeploy.bench.config import BenchConfig, LoadSpec, TargetSpec
from llmdeploy.bench.loop import environment
from llmdeploy.bench.metrics import summarize
from llmdeploy.bench.report import BenchReport, RequestRecord, StageResult
from llmdeploy.cli import bench


def _records(seed: int, ttft_ms: float, itl_ms: float, n: int = 300, tail: float = 0.0,
             failed: int = 0) -> list[RequestRecord]:
    """``n`` streamed requests with noisy TTFT around ``ttft_ms`` (``tail``: the slowest 3%
    take that much longer) and 8 chunks ``itl_ms`` apart."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        start = i * 0.5
        ttft = rng.gauss(ttft_ms, ttft_ms * 0.1) / 1000
        if tail and rng.random() < 0.03:
            ttft += tail / 1000
        times = [start + ttft + k * rng.gauss(itl_ms, itl_ms * 0.05) / 1000 for k in range(8)]
        error = "http_500" if i < failed else None
        out.append(RequestRecord(index=i, start_s=start, end_s=times[-1] + 0.001,
                                 token_times_s=[] if error else times, output_tokens=8,
                                 prompt_tokens=16, token_source="usage", error=error))
    return out


def _report(records: list[RequestRecord]) -> BenchReport:
    import asyncio

    loop = asyncio.new_event_loop()
    try:
        env = environment(loop)
    finally:
        loop.close()
    load = LoadSpec(mode="concurrency", value=4)
    return BenchReport(
        created_at="2026-01-01T00:00:00+00:00",
        config=BenchConfig(target=TargetSpec(base_url="http://127.0.0.1:1"), stages=[load]),
        environment=env,
        model="m",
        stages=[StageResult(name=load.name, load=load, started_s=0, ended_s=200,
                            records=records, summary=summarize(records))],
    )


def _by_label(base: BenchReport, other: BenchReport, **kw: float) -> dict[str, str]:
    return {v.label: v.verdict for v in compare_verdicts(base, other, **kw)}


def test_two_runs_of_the_same_server_show_no_significant_change() -> None:
    verdicts = _by_label(_report(_records(1, 50, 10)), _report(_records(2, 50, 10)))
    assert set(verdicts.values()) == {"no significant change"}, verdicts


def test_a_slower_ttft_is_worse_and_a_faster_itl_better() -> None:
    verdicts = compare_verdicts(_report(_records(1, 50, 10)), _report(_records(2, 60, 8)))
    words = {v.label: v.verdict for v in verdicts}
    assert words["TTFT p50"] == "worse" and words["TTFT p99"] == "worse"
    assert words["ITL p50"] == "better" and words["TPOT p50"] == "better"
    ttft = next(v for v in verdicts if v.label == "TTFT p50")
    assert ttft.method == "bootstrap" and ttft.low_pct is not None and ttft.high_pct is not None
    assert 0 < ttft.low_pct < ttft.change_pct < ttft.high_pct  # type: ignore[operator]
    line = verdict_line(verdicts)
    assert line.startswith("WORSE: TTFT p50 +") and "better: " in line


def test_a_tail_regression_is_caught_at_p99_while_the_median_holds() -> None:
    words = _by_label(_report(_records(1, 50, 10)), _report(_records(2, 50, 10, tail=200)))
    assert words["TTFT p99"] == "worse"
    assert words["TTFT p50"] == "no significant change"


def test_a_real_change_under_the_noise_threshold_is_no_significant_change() -> None:
    base, later = _report(_records(1, 50, 10, n=2000)), _report(_records(2, 51.5, 10, n=2000))
    assert _by_label(base, later, threshold_pct=5)["TTFT p50"] == "no significant change"
    assert _by_label(base, later, threshold_pct=1)["TTFT p50"] == "worse"  # 3%: real


def test_a_sub_millisecond_latency_change_is_no_significant_change() -> None:
    """An ITL of 1.0 vs 1.2 ms (+20%, far outside the bootstrap interval) is what back-to-back
    runs against a fast mock move by: below --min-change-ms (1 ms) it is not a change."""
    base, later = _report(_records(1, 50, 1.0, n=2000)), _report(_records(2, 50, 1.2, n=2000))
    assert _by_label(base, later)["ITL p50"] == "no significant change"
    assert _by_label(base, later, min_change_ms=0)["ITL p50"] == "worse"


def test_a_p99_of_fewer_than_100_requests_gets_no_verdict() -> None:
    """20 requests: the p99 is the slowest one; one slow request is not a regression."""
    base, later = _report(_records(1, 50, 10, n=20)), _report(_records(2, 50, 10, n=20,
                                                                        tail=200))
    verdicts = {v.label: v for v in compare_verdicts(base, later)}
    assert verdicts["TTFT p99"].verdict == "not measured"
    assert verdicts["TTFT p99"].method == "too few samples"
    assert verdicts["TTFT p50"].verdict in ("no significant change", "worse")
    assert verdicts["ITL p99"].method == "bootstrap"  # 20 x 7 gaps: enough


def test_error_rate_verdict_uses_percentage_points() -> None:
    base = _report(_records(1, 50, 10))
    assert _by_label(base, _report(_records(2, 50, 10, failed=30)))["error rate"] == "worse"
    assert _by_label(base, _report(_records(2, 50, 10, failed=1)))["error rate"] == (
        "no significant change")


def test_cli_verdicts_and_fail_on_regression(tmp_path: Path) -> None:
    base, same, slow = tmp_path / "base.json", tmp_path / "same.json", tmp_path / "slow.json"
    _report(_records(1, 50, 10)).save(base)
    _report(_records(2, 50, 10)).save(same)
    _report(_records(3, 65, 10)).save(slow)
    result = CliRunner().invoke(bench.app, ["compare", str(base), str(same), str(slow)])
    assert result.exit_code == 0, result.output
    assert "verdict same.json: no significant change" in result.output
    assert "verdict slow.json: WORSE: TTFT p50 +" in " ".join(result.output.split())
    ok = subprocess.run([sys.executable, "-m", "llmdeploy", "bench", "compare", str(base),
                         str(same), "--fail-on-regression"], capture_output=True, text=True,
                        timeout=60)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([sys.executable, "-m", "llmdeploy", "bench", "compare", str(base),
                          str(slow), "--fail-on-regression"], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 9, bad.stderr
    assert "TTFT p50" in bad.stderr and "Traceback" not in bad.stderr
    as_json = CliRunner().invoke(bench.app, ["compare", str(base), str(slow), "--json"])
    assert '"verdict": "WORSE: TTFT p50' in as_json.output
