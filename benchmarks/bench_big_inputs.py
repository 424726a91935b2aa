"""Big inputs: 100K-token prompts at concurrency 16, and client memory at 1,400 streams.

    python benchmarks/bench_big_inputs.py [--quick] [--only prompts,memory]

1. 100K-token prompts (about 520 KB of JSON per request) streamed at concurrency 16 against
   the mock server, beside 128-token prompts in the same run (the baseline):
   a. with server-like timing (TTFT 50 ms, ITL 10 ms, 64 output tokens), so the server sets
      the pace: if the client keeps up, both runs deliver the same requests/s and output
      tokens/s (ratio ~1.0) and the same TTFT; a client that collapses (the known failure of
      `vllm bench serve`'s client with long prompts) shows a ratio well below 1;
   b. against an instant mock (TTFT = ITL = 0, 16 output tokens): the client's own cost per
      100K-token request (build, send), as prompt tokens per second it sustains.
2. Memory: peak RSS of the client process (one process, `--workers 1`) at 1,400 concurrent
   streams against the mock server (`--epoll`: select() stops at 1,024 sockets; TTFT 100 ms,
   ITL 100 ms, 16 tokens, so 1,400 are in flight at once), beside 16 streams in the same run.
   Goal: under 200 MB.

Every figure is one run on a shared machine; the ratios are what count. Only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_client import mock_server, ours

BIG = 100_000
SMALL = 128


def _run(url: str, conc: int, tokens: int, *, prompt: int, secs: float,
         workers: int = 1) -> dict[str, Any]:
    return ours(url, conc, 0, tokens=tokens, warmup=conc,
                extra=("--input-tokens", str(prompt), "--duration", str(secs),
                       "--workers", str(workers)))


def _line(label: str, r: dict[str, Any]) -> str:
    c = r["client"]
    w = c["workers"][0]
    flag = "CLIENT-LIMITED: " + "; ".join(c["reasons"]) if c["client_limited"] else "not limited"
    return (f"   {label:<22} {r['requests_per_s']:8.1f} req/s, "
            f"{r['prompt_tokens'] / r['window_s'] / 1e6:6.2f} M prompt tok/s, TTFT p50 "
            f"{r['ttft_ms']['p50']:6.1f} p99 {r['ttft_ms']['p99']:6.1f} ms; client CPU "
            f"{w['cpu_percent']:.0f}%, loop lag p99 {w['loop_lag_ms']['p99']:.1f} ms; {flag}")


def prompts(q: float) -> dict[str, Any]:
    secs = max(4.0, 15 * q)
    out: dict[str, Any] = {}
    print(f"1a. Prompts of {BIG:,} vs {SMALL} tokens, c=16, mock TTFT 50 ms / ITL 10 ms / 64 "
          f"output tokens, {secs:g} s each")
    with mock_server(50, 10, 64) as url:
        small = _run(url, 16, 64, prompt=SMALL, secs=secs)
        big = _run(url, 16, 64, prompt=BIG, secs=secs)
    print(_line(f"{SMALL}-token prompts", small))
    print(_line(f"{BIG:,}-token prompts", big))
    ratio = big["requests_per_s"] / small["requests_per_s"]
    ttft_delta = big["ttft_ms"]["p50"] - small["ttft_ms"]["p50"]
    out["paced"] = {"small": small, "big": big, "ratio": ratio, "ttft_p50_delta_ms": ttft_delta}
    print(f"   throughput {BIG:,} / {SMALL} tokens: {ratio:.3f}x (no collapse: >= 0.95 -> "
          f"{'PASS' if ratio >= 0.95 else 'FAIL'}); TTFT p50 +{ttft_delta:.2f} ms "
          "(sending 520 KB over loopback and the mock server parsing it)")
    print(f"1b. Client cost: instant mock (TTFT = ITL = 0, 16 output tokens), c=16, {secs:g} s")
    with mock_server(0, 0, 16) as url:
        small = _run(url, 16, 16, prompt=SMALL, secs=secs)
        big = _run(url, 16, 16, prompt=BIG, secs=secs)
    print(_line(f"{SMALL}-token prompts", small))
    print(_line(f"{BIG:,}-token prompts", big))
    tok_ratio = (big["prompt_tokens"] / big["window_s"]) / (
        small["prompt_tokens"] / small["window_s"])
    out["instant"] = {"small": small, "big": big, "prompt_tokens_per_s_ratio": tok_ratio}
    print(f"   prompt tokens/s {BIG:,} / {SMALL} tokens: {tok_ratio:.1f}x")
    return out


def memory(q: float) -> dict[str, Any]:
    secs = max(4.0, 8 * q)
    print(f"2. Client peak RSS (one process), mock TTFT 100 ms / ITL 100 ms / 16 tokens "
          f"(--epoll), {secs:g} s each")
    out: dict[str, Any] = {}
    with mock_server(100, 100, 16, extra=("--epoll",)) as url:
        for conc in (16, 1400):
            r = _run(url, conc, 16, prompt=SMALL, secs=secs)
            out[str(conc)] = r
            print(f"   c={conc:<5} peak RSS {r['peak_rss_mb']:6.1f} MB; {r['requests']:,} "
                  f"requests, {r['requests_per_s']:.0f} req/s, concurrency held "
                  f"{r['concurrency']:.0f}; client CPU "
                  f"{r['client']['workers'][0]['cpu_percent']:.0f}%")
    big = out["1400"]["peak_rss_mb"]
    out["ratio"] = big / out["16"]["peak_rss_mb"]
    print(f"   1,400 / 16 streams: {out['ratio']:.2f}x; under 200 MB: "
          f"{'PASS' if big < 200 else 'FAIL'}")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", default="prompts,memory")
    p.add_argument("--json-out", type=Path)
    a = p.parse_args()
    q = 0.3 if a.quick else 1.0
    only = {x.strip() for x in a.only.split(",")}
    results: dict[str, Any] = {}
    if "prompts" in only:
        results["prompts"] = prompts(q)
    if "memory" in only:
        results["memory"] = memory(q)
    if a.json_out:
        a.json_out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
