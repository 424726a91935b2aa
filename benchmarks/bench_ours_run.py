"""Child process for benchmarks/bench_client.py: one llmdeploy-bench (or plain httpx) run.

Prints one JSON line: requests/s, latency percentiles, in-run CPU seconds. Run in its own
process so the parent can charge all of its CPU (start-up included) to it, like guidellm's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
        stages=[LoadSpec(mode="concurrency", value=a.concurrency)],
        stop=StopSpec(requests=a.requests, warmup_requests=a.warmup, timeout_s=60),
        scrape_metrics=False,
    )
    cpu0, wall0 = time.process_time(), time.monotonic()
    report = run_bench(cfg, event_loop=a.loop)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    st = report.stages[0]
    s = st.summary

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
    a = p.parse_args(argv)
    result = run_llmdeploy(a) if a.client == "llmdeploy" else run_httpx(a)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
