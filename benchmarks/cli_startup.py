"""How long short CLI commands take to start, against a baseline tree, in one run.

    python benchmarks/cli_startup.py [--baseline-src ../main/src] [--rounds 15]

Runs each command from this checkout's ``src`` and, interleaved, from the baseline's (another
checkout or worktree of llmdeploy, e.g. the main branch), with the same Python, and prints the
medians and the ratio this/baseline. Without a baseline only this tree is timed. Machines are
noisy: read the ratios, not the absolute figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1] / "src"
COMMANDS = (["--help"], ["profiles", "--help"], ["up", "--help"], ["bench", "--help"])


def once(src: Path, args: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "llmdeploy", *args], capture_output=True, env=env,
                   check=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-src", type=Path, help="the baseline tree's src/ folder")
    parser.add_argument("--rounds", type=int, default=15)
    opts = parser.parse_args()
    trees = {"this": HERE}
    if opts.baseline_src is not None:
        trees["baseline"] = opts.baseline_src.resolve()
    for args in COMMANDS:
        times: dict[str, list[float]] = {name: [] for name in trees}
        for _ in range(opts.rounds):
            for name, src in trees.items():
                times[name].append(once(src, args))
        medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
        line = f"llmdeploy {' '.join(args):16} " + "  ".join(
            f"{name} {ms:.0f} ms" for name, ms in medians.items()
        )
        if "baseline" in medians:
            line += f"  ratio {medians['this'] / medians['baseline']:.2f}"
        print(line)


if __name__ == "__main__":
    main()
