"""The load engine against the real mock server: worker processes merged into one report,
rate accuracy, the client-limited flag, and the failure path of worker processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import MockProcess
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
from llmdeploy.errors import BenchError


def config(url: str, load: LoadSpec, *, workers: int | None, out: int = 4,
           **stop: Any) -> BenchConfig:
    return BenchConfig(
        target=TargetSpec(base_url=url, metrics_path=None),
        workload=WorkloadSpec(input_tokens=LengthDist.parse(16),
                              output_tokens=LengthDist.parse(out)),
        stages=[load],
        stop=StopSpec(timeout_s=20, **stop),
        scrape_metrics=False,
        workers=workers,
    )


def url_of(server: MockServer) -> str:
    return f"http://127.0.0.1:{server.port}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purposes only once reaped: check its state
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_two_workers_merge_into_one_stage(mock_process: Callable[..., MockProcess]) -> None:
    proc = mock_process("--ttft-ms", "20", "--itl-ms", "2")
    rep = run_bench(config(proc.url, LoadSpec(mode="concurrency", value=8), workers=2,
                           requests=400, warmup_requests=8))
    st = rep.stages[0]
    s, c = st.summary, st.summary.client
    indices = [r.index for r in st.records]
    assert indices == list(range(408))  # every item once, merged in order
    assert s.requests == 400 and s.warmup_excluded == 8 and s.ok == 400
    assert c is not None and len(c.workers) == 2
    assert {w.pid for w in c.workers}.isdisjoint({os.getpid()})
    assert sorted(w.requests for w in c.workers) == [204, 204]
    # one merged timeline: both processes' requests interleave over the same window
    assert s.ttft_ms is not None and all(
        r.token_times_s[0] - r.start_s >= 0.020 for r in st.records if r.ok
    )  # never earlier than the server's injected delay: stamps share one clock
    assert 20.0 <= s.ttft_ms.median < 25.0
    assert s.concurrency == pytest.approx(8, rel=0.2)


def test_workers_send_unique_prompts(mock_server: Callable[..., MockServer]) -> None:
    server = mock_server(ttft_ms=0, itl_ms=0, record_requests=True)
    cfg = config(url_of(server), LoadSpec(mode="concurrency", value=6), workers=3, requests=60,
                 out=6)  # the pre-flight asks for 4
    cfg.stages.append(LoadSpec(mode="rate", value=200.0))
    rep = run_bench(cfg)
    posts = [json.loads(body) for method, path, body in server.requests
             if method == "POST" and path.endswith("/chat/completions")]
    prompts = [p["messages"][0]["content"] for p in posts if p.get("max_tokens") == 6]
    assert len(prompts) == 120 and len(set(prompts)) == 120  # across workers and stages
    assert [len(st.summary.client.workers) for st in rep.stages if st.summary.client] == [3, 3]


def test_rate_stage_over_workers_keeps_one_schedule(
    mock_server: Callable[..., MockServer],
) -> None:
    server = mock_server(ttft_ms=1, itl_ms=1)
    rep = run_bench(config(url_of(server), LoadSpec(mode="rate", value=400.0), workers=2,
                           requests=400))
    st = rep.stages[0]
    recs = sorted(st.records, key=lambda r: r.index)
    assert [r.index for r in recs] == list(range(400))
    first = recs[0].scheduled_s
    assert first is not None
    for r in recs:  # planned sends on one absolute schedule, whichever process sent them
        assert r.scheduled_s == pytest.approx(first + r.index / 400.0, abs=1e-9)
        assert r.start_s >= r.scheduled_s
    c = st.summary.client
    assert c is not None and c.planned_rate_per_s == pytest.approx(400.0)


@pytest.mark.parametrize("rate", [500.0, 2000.0])
def test_delivered_rate_within_half_a_percent(
    mock_process: Callable[..., MockProcess], rate: float
) -> None:
    """The issue's requirement, checked as stated: a constant rate is delivered within 0.5%
    over a few seconds (a shortfall means sends fell behind: a real fault)."""
    proc = mock_process("--ttft-ms", "1", "--itl-ms", "1")
    rep = run_bench(config(proc.url, LoadSpec(mode="rate", value=rate), workers=1,
                           duration_s=3.0, warmup_requests=20))
    c = rep.stages[0].summary.client
    assert c is not None and c.delivered_rate_per_s is not None and c.rate_error is not None
    assert abs(c.rate_error) <= 0.005, c
    assert rep.stages[0].summary.requests == pytest.approx(3 * rate, abs=1)


def test_client_limited_is_flagged_only_when_the_client_cannot_keep_up(
    mock_process: Callable[..., MockProcess],
) -> None:
    proc = mock_process("--ttft-ms", "0", "--itl-ms", "0", "--epoll")  # thousands of sockets
    # an easy load is not flagged. A stall of this shared machine (another process taking the
    # core for > 5 ms) does flag a run, rightly: the client was late. So up to three tries; a
    # bug that flags every run (a wrong rate or CPU figure) still fails all three.
    for _ in range(3):
        easy = run_bench(config(proc.url, LoadSpec(mode="rate", value=40.0), workers=1,
                                requests=60))
        c = easy.stages[0].summary.client
        assert c is not None
        if not c.client_limited:
            break
    assert not c.client_limited, c.reasons
    assert c.rate_error is not None and c.rate_error > -0.005
    # 100,000 requests/s is beyond any single Python process: sends fall behind the plan
    hard = run_bench(config(proc.url, LoadSpec(mode="rate", value=100_000.0),
                            workers=1, requests=3000))
    c = hard.stages[0].summary.client
    assert c is not None and c.client_limited
    assert c.rate_error is not None and c.rate_error < -0.005
    assert any("short of the planned" in r or "send lag" in r for r in c.reasons)


def test_a_worker_that_fails_is_named_and_none_is_left(
    mock_server: Callable[..., MockServer], tmp_path: Path
) -> None:
    server = mock_server(ttft_ms=0, itl_ms=0)
    dataset = tmp_path / "prompts.jsonl"
    dataset.write_text('{"prompt": "hello"}\n')
    cfg = config(url_of(server), LoadSpec(mode="concurrency", value=2), workers=2, requests=20)
    cfg.workload = WorkloadSpec(kind="dataset", dataset_path=str(dataset),
                                output_tokens=LengthDist.parse(2))
    from llmdeploy.bench.loop import run_coroutine
    from llmdeploy.bench.runner import BenchRunner

    runner = BenchRunner(cfg)  # reads the dataset here; each worker reads it again
    dataset.unlink()
    with pytest.raises(BenchError, match=r"bench worker \d \(pid \d+\).*cannot read dataset"):
        run_coroutine(runner.run())
    time.sleep(0.2)
    assert not [p for p in _children() if "llmdeploy-bench-worker" in _cmdline(p)]


def test_a_killed_worker_is_an_error_naming_it(mock_server: Callable[..., MockServer]) -> None:
    server = mock_server(ttft_ms=5, itl_ms=5)
    cfg = config(url_of(server), LoadSpec(mode="concurrency", value=4), workers=2,
                 duration_s=20.0, out=8)
    import multiprocessing

    killed: list[int] = []

    def kill_one() -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not killed:
            kids = {p.name: p.pid for p in multiprocessing.active_children()
                    if p.name.startswith("llmdeploy-bench-worker")}
            pid = kids.get("llmdeploy-bench-worker-1")
            if len(kids) == 2 and pid:
                time.sleep(0.5)  # mid-stage
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one)
    killer.start()
    started = time.monotonic()
    with pytest.raises(BenchError, match=r"bench worker 1 \(pid \d+\) was killed by signal 9"):
        run_bench(cfg)
    killer.join()
    assert time.monotonic() - started < 15  # not the stage's 20 s: stopped at once
    assert killed and not _alive(killed[0])
    assert not [p for p in multiprocessing.active_children()
                if p.name.startswith("llmdeploy-bench-worker")]


def _children() -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == os.getpid():
                    out.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _session(sid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                pids.append(int(entry.name))
    return pids


def test_ctrl_c_stops_every_process(mock_process: Callable[..., MockProcess]) -> None:
    proc = mock_process("--ttft-ms", "5", "--itl-ms", "5")
    cli = subprocess.Popen(
        [sys.executable, "-m", "llmdeploy", "bench", "--url", f"{proc.url}/v1", "-c", "4",
         "--duration", "60s", "--workers", "2", "--output-tokens", "8", "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        # a shell runs background jobs with SIGINT ignored, and children inherit that: give
        # the CLI the default handler a terminal's foreground command has
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(_session(cli.pid)) < 3:
            time.sleep(0.1)  # the runner, the fork server and two workers
        assert len(_session(cli.pid)) >= 3, "the workers never started"
        time.sleep(1.0)
        os.killpg(cli.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        started = time.monotonic()
        _, err = cli.communicate(timeout=15)
        assert time.monotonic() - started < 10  # not the stage's 60 s
        assert b"Traceback" not in err
        # a Ctrl-C is exit 130 and says so (Typer returned its Exit(130): this was exit 0)
        assert cli.returncode == 130 and b"Interrupted." in err, (cli.returncode, err[-500:])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _session(cli.pid):
            time.sleep(0.1)
        assert _session(cli.pid) == []  # no orphan left behind
    finally:
        if cli.poll() is None:
            os.killpg(cli.pid, signal.SIGKILL)
            cli.wait(10)


def test_report_records_the_self_check(mock_process: Callable[..., MockProcess],
                                       tmp_path: Path) -> None:
    proc = mock_process("--ttft-ms", "2", "--itl-ms", "1")
    out = tmp_path / "run.json"
    res = subprocess.run(
        [sys.executable, "-m", "llmdeploy", "bench", "--url", f"{proc.url}/v1", "-r", "50",
         "-n", "40", "--workers", "2", "--output-tokens", "4", "--no-progress",
         "--output", str(out)],
        capture_output=True, text=True, timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert "client-limited" in res.stdout and "client CPU %" in res.stdout
    report = BenchReport.model_validate_json(out.read_text())
    c = report.stages[0].summary.client
    assert c is not None and len(c.workers) == 2 and c.report_build_s is not None
    assert c.target_rate_per_s == 50.0 and c.send_lag_ms is not None
    assert all(w.loop_lag_ms is not None and w.loop_lag_ms.samples > 0 for w in c.workers)
