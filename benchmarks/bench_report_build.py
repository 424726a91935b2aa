"""Time to build a stage's report from its raw requests: this code vs the code of a baseline
commit, on the same synthetic stage, in one run.

    python benchmarks/bench_report_build.py [--requests 115000] [--chunks 32]
                                            [--baseline fd2c2f4]

The stage is what a 20 s window at ~5,750 requests/s leaves (the issue's figure: ~4 s to
build after such a window): every request with ``--chunks`` chunk times. Baseline: the
commit's own code, read with ``git show`` (its ``summarize`` and its per-request
``model_construct``, run after the stage with the garbage collector on, as its runner did).
Now: :func:`llmdeploy.bench.records.build_records` and :func:`~llmdeploy.bench.metrics.
summarize`, as the runner calls them (collector off while the records are built).
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


Raws = list[tuple[Any, ...]]


def stage(n: int, chunks: int, origin: float) -> tuple[Raws, Raws]:
    """(absolute-time raws as the baseline kept them, origin-relative raws as now)."""
    old, new = [], []
    for i in range(n):
        start = origin + 1.0 + i / 5750
        times = [start + 0.02 + k * 0.001 for k in range(chunks)]
        end = times[-1] + 0.0002
        old.append((i, False, None, start, end, times, 64, chunks, "usage", None, None, 0, None))
        rel = [t - origin for t in times]
        new.append((i, False, None, start - origin, end - origin, rel, 64, chunks, "usage",
                    None, None, 0, None))
    return old, new


def baseline_module(rev: str) -> types.ModuleType:
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:src/llmdeploy/bench/metrics.py"],
                         capture_output=True, text=True, check=True).stdout
    mod = types.ModuleType("baseline_metrics")
    exec(compile(src, f"{rev}:metrics.py", "exec"), mod.__dict__)
    return mod


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--requests", type=int, default=115_000)
    p.add_argument("--chunks", type=int, default=32)
    p.add_argument("--baseline", default="fd2c2f4")
    a = p.parse_args()
    from llmdeploy.bench.metrics import summarize
    from llmdeploy.bench.records import build_records
    from llmdeploy.bench.report import RequestRecord

    origin = 5000.0
    old_raws, new_raws = stage(a.requests, a.chunks, origin)
    base = baseline_module(a.baseline)

    gc.enable()
    t0 = time.perf_counter()
    recs_old = [
        RequestRecord.model_construct(
            index=r[0], warmup=r[1], scheduled_s=None, start_s=r[3] - origin,
            end_s=r[4] - origin, token_times_s=[x - origin for x in r[5]], prompt_tokens=r[6],
            output_tokens=r[7], token_source=r[8], error=r[9], error_detail=r[10],
            malformed_events=r[11], cached_tokens=r[12],
        )
        for r in old_raws
    ]
    s_old = base.summarize(recs_old)
    t_old = time.perf_counter() - t0
    del recs_old, old_raws
    gc.collect()

    t0 = time.perf_counter()
    gc.disable()
    recs = build_records(new_raws)
    s_new = summarize(recs)
    gc.enable()
    t_new = time.perf_counter() - t0
    for key in ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms"):
        o, n = getattr(s_old, key), getattr(s_new, key)
        assert o.count == n.count and abs(o.p99 - n.p99) < 1e-9 and abs(o.median - n.median) < 1e-9
    print(f"stage: {a.requests:,} requests x {a.chunks} chunks "
          f"({a.requests * (a.chunks - 1):,} inter-token gaps)")
    print(f"  baseline {a.baseline}: {t_old:6.2f} s")
    print(f"  now            : {t_new:6.2f} s  ({t_old / t_new:.1f}x faster; same statistics)")
    print(f"  as a share of a 20 s window: {t_old / 20:.1%} -> {t_new / 20:.1%}")


if __name__ == "__main__":
    sys.exit(main())
