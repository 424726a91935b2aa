"""The workloads people run, against the mock server's toy prefix cache: shared prefixes,
multi-turn conversations, trace replay; each seeded and reproducible."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmdeploy.bench.config import (
    BenchConfig,
    LengthDist,
    LoadSpec,
    StopSpec,
    TargetSpec,
    WorkloadSpec,
)
from llmdeploy.bench.mock_server import MockServer
from llmdeploy.bench.report import BenchReport
from llmdeploy.bench.runner import run_bench

DATA = Path(__file__).parent.parent / "data" / "traces"


def _run(server: MockServer, stages: list[LoadSpec], requests: int | None, **workload: Any
         ) -> BenchReport:
    wl: dict[str, Any] = {"input_tokens": LengthDist.parse(10),
                          "output_tokens": LengthDist.parse(4), "prompt_nonce": 5}
    wl.update(workload)
    return run_bench(BenchConfig(
        target=TargetSpec(base_url=f"http://127.0.0.1:{server.port}"),
        workload=WorkloadSpec(**wl),
        stages=stages,
        stop=StopSpec(requests=requests, timeout_s=10),
        scrape_metrics=True,
    ))


def _bodies(server: MockServer) -> list[dict[str, Any]]:
    return [json.loads(body) for method, path, body in server.requests
            if path.endswith("/chat/completions")][1:]  # the first is the pre-flight


def test_shared_prefixes_are_interleaved_and_cached_after_their_first_use(
    mock_server: Callable[..., MockServer],
) -> None:
    server = mock_server(ttft_ms=1, itl_ms=0.5, prefix_cache=True, record_requests=True)
    report = _run(server, [LoadSpec(mode="concurrency", value=1)], 9,
                  shared_prefix_tokens=40, prefixes=3)
    stage = report.stages[0]
    cached = [r.cached_tokens for r in sorted(stage.records, key=lambda r: r.index)]
    assert all(c is not None and c < 3 for c in cached[:3]), cached  # first use: a miss
    assert all(c is not None and 40 <= c < 43 for c in cached[3:]), cached  # then the prefix
    assert stage.expected_cached_prompt_tokens == 6 * 40
    assert stage.summary.cached_prompt_tokens == sum(c or 0 for c in cached)
    server_view = stage.server
    assert server_view is not None
    assert server_view.derived["prefix_cache_hit_tokens"] >= 6 * 40
    # interleaved: request n starts with prefix n mod 3; every prompt is 40 + 10 words
    texts = [b["messages"][0]["content"].split() for b in _bodies(server)]
    assert all(len(t) == 50 for t in texts)
    assert texts[0][:40] == texts[3][:40] == texts[6][:40] != texts[1][:40]
    assert len({" ".join(t[40:]) for t in texts}) == 9  # every suffix its own


def test_the_same_seed_and_nonce_replay_the_same_requests(
    mock_server: Callable[..., MockServer],
) -> None:
    runs = []
    for nonce in (5, 5, 6):
        server = mock_server(ttft_ms=0, itl_ms=0, record_requests=True)
        _run(server, [LoadSpec(mode="concurrency", value=2)], 6, shared_prefix_tokens=8,
             prefixes=2, prompt_nonce=nonce, seed=3)
        runs.append(sorted(json.dumps(b["messages"]) for b in _bodies(server)))
    assert runs[0] == runs[1]
    assert not set(runs[0]) & set(runs[2])  # another nonce: nothing shared with that run


def test_multi_turn_conversations_resend_the_history_with_the_real_answers(
    mock_server: Callable[..., MockServer],
) -> None:
    server = mock_server(ttft_ms=1, itl_ms=0.5, prefix_cache=True, record_requests=True)
    report = _run(server, [LoadSpec(mode="concurrency", value=2)], 6, turns=3,
                  think_time_s=0.02)
    stage = report.stages[0]
    records = sorted(stage.records, key=lambda r: r.index)
    assert [(r.conversation, r.turn) for r in records] == [
        (0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert all(r.ok for r in records)
    # each turn resends every earlier message: the mock counts prompt words
    prompts = [r.prompt_tokens or 0 for r in records]
    assert prompts[1] == prompts[0] + 4 + 10 and prompts[2] == prompts[1] + 4 + 10
    # the mock's cache serves the earlier turn's prompt again: cached tokens rise by turn
    for c in (0, 3):
        assert records[c].cached_tokens is not None and records[c].cached_tokens < 3
        assert records[c + 1].cached_tokens == prompts[c]
        assert records[c + 2].cached_tokens == prompts[c + 1]
    # the history holds the answer the server gave (the mock answers " tok" per token)
    later = [b for b in _bodies(server) if len(b["messages"]) == 3]
    assert later and all(b["messages"][1] == {"role": "assistant", "content": " tok" * 4}
                         for b in later)
    # think time: each next turn starts at least 20 ms after the previous answer
    for a, b in ((0, 1), (1, 2), (3, 4), (4, 5)):
        assert records[b].start_s - records[a].end_s >= 0.019
    by_turn = stage.summary.by_turn
    assert [t.turn for t in by_turn] == [0, 1, 2] and all(t.ok == 2 for t in by_turn)
    assert by_turn[2].cached_prompt_tokens == prompts[1] + prompts[4]
    # cacheable by design: the previous turn's prompt and answer, per later turn
    assert stage.expected_cached_prompt_tokens == sum(
        prompts[i - 1] + 4 for i in (1, 2, 4, 5))


def test_multi_turn_rate_stage_counts_conversations(
    mock_server: Callable[..., MockServer],
) -> None:
    server = mock_server(ttft_ms=1, itl_ms=0.5)
    report = _run(server, [LoadSpec(mode="rate", value=50)], 8, turns=2)
    records = report.stages[0].records
    assert len(records) == 8 and {r.conversation for r in records} == {0, 1, 2, 3}
    firsts = [r for r in records if r.turn == 0]
    assert all(r.scheduled_s is not None for r in firsts)
    assert all(r.scheduled_s is None for r in records if r.turn == 1)


def test_mooncake_replay_sends_at_the_trace_offsets_with_its_lengths(
    mock_server: Callable[..., MockServer],
) -> None:
    server = mock_server(ttft_ms=1, itl_ms=0.5, prefix_cache=True)
    report = _run(server, [LoadSpec(mode="trace", value=10)], 6, kind="trace",
                  trace_path=str(DATA / "mooncake_sample.jsonl"), trace_format="mooncake")
    stage = report.stages[0]
    records = sorted(stage.records, key=lambda r: r.index)
    first = records[0].scheduled_s
    assert first is not None
    planned = [round((r.scheduled_s or 0) - first, 6) for r in records]
    assert planned == [0, 0, 0.05, 0.12, 0.2, 0.26]  # trace ms / 1000 / speed 10
    assert all(r.start_s - (r.scheduled_s or 0) < 0.02 for r in records)
    assert [r.prompt_tokens for r in records] == [600, 520, 1100, 300, 1100, 40]
    assert [r.output_tokens for r in records] == [4, 3, 5, 2, 4, 6]
    expected = [0, 512, 600, 0, 1100, 0]
    for r, want in zip(records, expected, strict=True):
        assert r.cached_tokens is not None and want <= r.cached_tokens < want + 3, (r, want)
    assert stage.expected_cached_prompt_tokens == sum(expected)
    assert stage.name == "trace x10"


def test_burstgpt_replay_uses_seconds_and_skips_failed_rows(
    mock_server: Callable[..., MockServer],
) -> None:
    server = mock_server(ttft_ms=1, itl_ms=0.5)
    report = _run(server, [LoadSpec(mode="trace", value=20)], 4, kind="trace",
                  trace_path=str(DATA / "burstgpt_sample.csv"), trace_format="burstgpt")
    records = sorted(report.stages[0].records, key=lambda r: r.index)
    first = records[0].scheduled_s or 0
    assert [round((r.scheduled_s or 0) - first, 6) for r in records] == [
        0, 0.025, 0.2, 0.3625]
    assert [r.prompt_tokens for r in records] == [47, 108, 30, 64]
    assert [r.output_tokens for r in records] == [18, 23, 27, 12]


def test_conversations_stay_whole_on_one_worker_process(
    mock_server: Callable[..., MockServer],
) -> None:
    """--workers 2 with 3-turn conversations: each conversation's turns run in one process,
    in order, each resending the answers its own process received."""
    server = mock_server(ttft_ms=1, itl_ms=0.5, prefix_cache=True, record_requests=True)
    cfg = BenchConfig(
        target=TargetSpec(base_url=f"http://127.0.0.1:{server.port}"),
        workload=WorkloadSpec(input_tokens=LengthDist.parse(10),
                              output_tokens=LengthDist.parse(4), turns=3, prompt_nonce=5),
        stages=[LoadSpec(mode="concurrency", value=4)],
        stop=StopSpec(requests=24, timeout_s=10),
        workers=2,
    )
    stage = run_bench(cfg).stages[0]
    records = sorted(stage.records, key=lambda r: r.index)
    assert [(r.conversation, r.turn) for r in records] == [
        (c, t) for c in range(8) for t in range(3)]
    assert all(r.ok for r in records)
    client = stage.summary.client
    assert client is not None and len(client.workers) == 2
    assert sorted(w.requests for w in client.workers) == [12, 12]
    for c in range(8):
        turns = records[3 * c: 3 * c + 3]
        assert turns[0].end_s <= turns[1].start_s and turns[1].end_s <= turns[2].start_s
        # the later turns were served from the history the same conversation sent
        assert turns[1].cached_tokens == turns[0].prompt_tokens
        assert turns[2].cached_tokens == turns[1].prompt_tokens
    histories = [b["messages"] for b in _bodies(server) if len(b["messages"]) == 5]
    assert len(histories) == 8


def test_trace_replay_over_two_workers_keeps_the_trace_offsets(
    mock_server: Callable[..., MockServer],
) -> None:
    server = mock_server(ttft_ms=1, itl_ms=0.5)
    cfg = BenchConfig(
        target=TargetSpec(base_url=f"http://127.0.0.1:{server.port}"),
        workload=WorkloadSpec(kind="trace", trace_path=str(DATA / "mooncake_sample.jsonl"),
                              trace_format="mooncake", prompt_nonce=5),
        stages=[LoadSpec(mode="trace", value=10)],
        stop=StopSpec(requests=6, timeout_s=10),
        workers=2,
    )
    stage = run_bench(cfg).stages[0]
    records = sorted(stage.records, key=lambda r: r.index)
    first = records[0].scheduled_s or 0
    assert [round((r.scheduled_s or 0) - first, 6) for r in records] == [
        0, 0, 0.05, 0.12, 0.2, 0.26]
    assert [r.prompt_tokens for r in records] == [600, 520, 1100, 300, 1100, 40]
    client = stage.summary.client
    assert client is not None and len(client.workers) == 2
