"""Time `llmdeploy up` to healthy against a raw `podman/docker run` + readiness poll.

Both start the same cached image with the same model mount and arguments, so the ratio is
llmdeploy's own overhead (profile resolution, model-store check, engine API, health polling).
Also times `llmdeploy --help`. Timings on shared machines are noisy: read the ratios.

usage: python benchmarks/up_vs_raw.py [--engines podman,docker] [--rounds 3]
Needs the engines, the tiny model and the locally built image (run `llmdeploy up` once first).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import httpx

PROFILES = {"podman": "edge-podman", "docker": "cpu-docker"}


def llmdeploy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmdeploy", *args], capture_output=True,
                          text=True, check=False)


def wait_ready(url: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{url} never became ready")


def time_up(engine: str) -> tuple[float, dict[str, object]]:
    profile = PROFILES[engine]
    llmdeploy("down", profile)
    started = time.monotonic()
    result = llmdeploy("up", "--profile", profile, "--json")
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(result.stderr)
    return elapsed, json.loads(result.stdout)


def raw_argv(engine: str) -> tuple[list[str], str]:
    """The same container as `up`, as the plain engine CLI would start it."""
    dry = llmdeploy("up", "--profile", PROFILES[engine], "--dry-run")
    joined = dry.stdout.replace("\\\n", " ")  # the rendered lines are wrapped with backslashes
    line = next(line for line in joined.splitlines() if line.startswith(f"{engine} run "))
    import shlex

    argv = shlex.split(line)
    name_at = argv.index("--name") + 1
    argv[name_at] = argv[name_at] + "-raw"
    port_at = argv.index("--publish") + 1
    host, port, ctr = argv[port_at].rsplit(":", 2)
    argv[port_at] = f"{host}:{int(port) + 100}:{ctr}"
    # the local build tag (what `up` ran here) instead of the upstream reference
    return argv, f"http://127.0.0.1:{int(port) + 100}/health"


def time_raw(engine: str, image: str) -> float:
    argv, url = raw_argv(engine)
    upstream = next(a for a in argv if a.startswith("ghcr.io/") or a.startswith("localhost/"))
    argv[argv.index(upstream)] = image
    name = argv[argv.index("--name") + 1]
    subprocess.run([engine, "rm", "-f", name], capture_output=True, check=False)
    started = time.monotonic()
    subprocess.run(argv, capture_output=True, check=True)
    wait_ready(url)
    elapsed = time.monotonic() - started
    subprocess.run([engine, "rm", "-f", name], capture_output=True, check=False)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engines", default="podman,docker")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    helps = []
    for _ in range(5):
        started = time.monotonic()
        llmdeploy("--help")
        helps.append(time.monotonic() - started)
    print(f"llmdeploy --help: median {statistics.median(helps) * 1000:.0f} ms (5 runs)")
    base = os.environ.get("LLMDEPLOY_BASE_IMAGE")
    print(f"base image: {base or 'default'}")
    for engine in args.engines.split(","):
        ups, raws = [], []
        for _ in range(args.rounds):
            elapsed, summary = time_up(engine)
            ups.append(elapsed)
            image = str(summary["image"])
            raws.append(time_raw(engine, image))
        llmdeploy("down", PROFILES[engine])
        up_s, raw_s = statistics.median(ups), statistics.median(raws)
        print(f"{engine}: llmdeploy up -> healthy median {up_s:.2f} s; raw run + poll "
              f"median {raw_s:.2f} s; ratio up/raw = {up_s / raw_s:.2f} "
              f"(rounds {args.rounds}; up {[round(x, 2) for x in ups]}, "
              f"raw {[round(x, 2) for x in raws]})")


if __name__ == "__main__":
    main()
