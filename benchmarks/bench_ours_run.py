"""Child process for benchmarks/bench_client.py: one llmdeploy-bench (or plain httpx) run.

Prints one JSON line: requests/s, latency percentiles, in-run CPU seconds, the client's
self-check (CPU and loop lag per worker, send lag, delivered rate, client-limited), the time
spent building the report, and peak RSS of this process and of its worker processes. Run in
its own process so the parent can charge all of its CPU (start-up included) to it, like
guidellm's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from typing import Any


def run_llmdeploy(a: argparse.Namespace) -> dict[str, Any]:
    from llmdeploy.bench.config import (
        BenchConfig,
        LengthDist,
        LoadSpec,
        StopSpec,
        TargetSpec,
        WorkloadSpec,
    )
    from llmdeploy.bench.runner import run_bench

    cfg = BenchConfig(
        target=TargetSpec(base_url=a.url, model="mock-model", metrics_path=None),
        workload=WorkloadSpec(
            input_tokens=LengthDist.parse(a.input_tokens),
            output_tokens=LengthDist.parse(a.output_tokens),
        ),
        stages=[
            LoadSpec(mode="rate", value=a.rate, arrivals=a.arrivals)
            if a.rate
            else LoadSpec(mode="concurrency", value=a.concurrency)
        ],
        stop=StopSpec(
            requests=None if a.duration else a.requests,
            duration_s=a.duration,
            warmup_requests=a.warmup,
            timeout_s=60,
        ),
        scrape_metrics=False,
        workers=a.workers,
    )
    cpu0, wall0 = time.process_time(), time.monotonic()
    report = run_bench(cfg, event_loop=a.loop)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    st = report.stages[0]
    s = st.summary
    c = s.client
    assert c is not None

    def dist(name: str) -> dict[str, float] | None:
        d = getattr(s, name)
        return None if d is None else {"p50": d.median, "p99": d.p99, "mean": d.mean}

    return {
        "tool": "llmdeploy",
        "loop": report.environment.event_loop,
        "ok": s.ok,
        "failed": s.failed,
        "requests_per_s": s.requests_per_s,
        "concurrency": s.concurrency,
        "ttft_ms": dist("ttft_ms"),
        "itl_ms": dist("itl_ms"),
        "tpot_ms": dist("tpot_ms"),
        "run_cpu_s": cpu,
        "run_wall_s": wall,
        "window_s": s.duration_s,
        "requests": s.requests,
        "e2e_ms": dist("e2e_ms"),
        "report_build_s": c.report_build_s,
        "client": c.model_dump(mode="json"),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_rss_children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "prompt_tokens": s.prompt_tokens,
    }


def run_httpx(a: argparse.Namespace) -> dict[str, Any]:
    """The same closed loop written the obvious way with httpx (for choosing the client)."""
    import httpx

    body = {
        "model": "mock-model",
        "messages": [{"role": "user", "content": "word " * int(a.input_tokens)}],
        "max_tokens": int(a.output_tokens),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    ok = 0
    ends: list[float] = []
    starts: list[float] = []

    async def main() -> None:
        nonlocal ok
        n = a.concurrency
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        async with httpx.AsyncClient(base_url=a.url, limits=limits, timeout=60) as client:
            counter = iter(range(a.requests))

            async def worker() -> None:
                nonlocal ok
                for _ in counter:
                    starts.append(time.monotonic())
                    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
                        async for line in r.aiter_lines():
                            if line.startswith("data: ") and line != "data: [DONE]":
                                json.loads(line[6:])
                    ends.append(time.monotonic())
                    ok += 1

            await asyncio.gather(*(worker() for _ in range(a.concurrency)))

    cpu0 = time.process_time()
    asyncio.run(main())
    window = max(ends) - min(starts)
    return {
        "tool": "httpx",
        "ok": ok,
        "failed": a.requests - ok,
        "requests_per_s": ok / window,
        "run_cpu_s": time.process_time() - cpu0,
        "run_wall_s": window,
    }


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--warmup", type=int, default=0)
    p.add_argument("--input-tokens", default="64")
    p.add_argument("--output-tokens", default="32")
    p.add_argument("--loop", default="auto")
    p.add_argument("--client", choices=["llmdeploy", "httpx"], default="llmdeploy")
    p.add_argument("--workers", type=int, default=None, help="client processes (auto)")
    p.add_argument("--rate", type=float, default=None, help="a rate stage (req/s)")
    p.add_argument("--arrivals", default="constant")
    p.add_argument("--duration", type=float, default=None, help="measured seconds")
    a = p.parse_args(argv)
    result = run_llmdeploy(a) if a.client == "llmdeploy" else run_httpx(a)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
