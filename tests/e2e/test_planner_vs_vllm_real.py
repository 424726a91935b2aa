"""The planner's vLLM KV-cache figure against the real vLLM CPU image, family by family.

One container of the image the suite builds for vLLM (the built-in ``cpu-vllm`` profile's
``localhost/llmdeploy/vllm-cpu:<vllm>-<llmdeploy>``; built here, exactly as ``up`` builds it,
when this test runs first) starts vLLM's engine on each synthetic config of
``tests/data/vllm_kv`` in turn (``probe.py``: dummy weights, no tokenizer,
``VLLM_CPU_KVCACHE_SPACE=1``). For each, vLLM's startup line
``CPU KV cache size: N tokens, Maximum concurrency for L tokens per request: Cx`` is read from
the container's log and compared with ``llmdeploy plan --json``'s ``kv_capacity_tokens`` for a
profile serving that config the same way: within 2%. The figures the unit tests
(``tests/unit/test_kv_vllm.py``) use are checked against the same log, so they cannot go stale.

About two minutes on 2 cores with the image present (one process imports vLLM once; the
engines start in ~5 s each).
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path

import pytest
from e2e_helpers import Cli, built_image, engine_ready, unavailable

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ENGINE = "podman"
DATA = Path(__file__).resolve().parents[1] / "data" / "vllm_kv"
CASES = json.loads((DATA / "cases.json").read_text(encoding="utf-8"))
TOLERANCE = 0.02
_LINE = re.compile(
    r"KV cache size: ([\d,]+) tokens, Maximum concurrency for ([\d,]+) tokens per request: "
    r"([\d.]+)x"
)
_END = re.compile(r"^=== END (\S+) (ok|error: .*)$", re.MULTILINE)


def _start_probe(image: str, name: str) -> subprocess.Popen[str]:
    """Start every case in one container (its log: stdout and stderr together)."""
    space = str(CASES["cpu_kvcache_space_gib"])
    command = [
        ENGINE, "run", "--rm", "--name", name, "--shm-size", "1g",
        "-e", f"VLLM_CPU_KVCACHE_SPACE={space}", "-v", f"{DATA}:/cfg:ro",
        "--entrypoint", "python", image, "/cfg/probe.py", "/cfg/cases.json",
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _logged(log: str) -> dict[str, tuple[int, int, float, str]]:
    """Per case: (tokens, max_model_len, concurrency, outcome) from vLLM's own lines."""
    found: dict[str, tuple[int, int, float, str]] = {}
    for part in log.split("=== CASE ")[1:]:
        name = part.split(maxsplit=1)[0]
        line = _LINE.search(part)
        end = _END.search(part)
        assert line, f"{name}: vLLM logged no 'KV cache size' line:\n{part[-2000:]}"
        assert end and end.group(1) == name, f"{name}: the probe did not finish:\n{part[-2000:]}"
        tokens, length = (int(g.replace(",", "")) for g in line.group(1, 2))
        found[name] = (tokens, length, float(line.group(3)), end.group(2))
    return found


def _planner_tokens(cli: Cli, case: dict[str, object], folder: Path) -> int:
    """``llmdeploy plan --json``'s kv_capacity_tokens for a profile serving the case's config
    on vLLM's CPU backend as the probe does (the server's max_num_seqs default on the CPU: 128)."""
    profile = folder / f"{case['name']}.yaml"
    profile.write_text(
        f"name: kv-{case['name']}\nextends: cpu-vllm\n"
        f"model: {{ref: 'file://{DATA / str(case['config'])}', name: kv-{case['name']}, convert: null}}\n"
        f"backend:\n  kind: vllm\n  max_model_len: {case['max_model_len']}\n"
        f"  max_num_seqs: {case.get('max_num_seqs', 128)}\n"
        f"  cpu_kvcache_space_gib: {CASES['cpu_kvcache_space_gib']}\n",
        encoding="utf-8",
    )
    # no weight files: the parameter count only sizes the weights, not the cache
    done = cli("plan", "-f", str(profile), "--memory", "64GiB", "--params", "10M", "--json")
    # exit 10: 128 sequences at max_model_len do not fit in 1 GiB; the figures are printed
    assert done.returncode in (0, 10), done.stderr + done.stdout
    plan = json.loads(done.stdout)
    assert plan["context_tokens"] == case["max_model_len"], plan
    return int(plan["kv_capacity_tokens"])


def test_planner_kv_tokens_match_vllm_cpu_per_family(cli: Cli, tmp_path: Path) -> None:
    reason = engine_ready(ENGINE)
    if reason:
        unavailable(reason)
    image = built_image("cpu-vllm", ENGINE, tmp_path, "model")
    cases = CASES["cases"]
    container = f"llmdeploy-e2e-kvprobe-{uuid.uuid4().hex[:6]}"
    probe = _start_probe(image, container)
    try:
        # vLLM's CPU worker binds one core; the planner runs beside it on the other
        planned = {case["name"]: _planner_tokens(cli, case, tmp_path) for case in cases}
        log, _ = probe.communicate(timeout=600)
    finally:
        probe.kill()
        subprocess.run([ENGINE, "rm", "-f", container], capture_output=True, timeout=60)
    assert probe.returncode == 0, log[-3000:]
    logged = _logged(log)
    assert sorted(logged) == sorted(c["name"] for c in cases)

    rows, misses = [], []
    for case in cases:
        name = case["name"]
        tokens, length, concurrency, outcome = logged[name]
        assert length == case["max_model_len"], name
        # the unit tests' figures are this log's
        assert (tokens, concurrency) == (case["logged_tokens"], case["logged_concurrency"]), (
            f"{name}: vLLM now logs {tokens} tokens ({concurrency}x); update "
            "tests/data/vllm_kv/cases.json and docs/planner.md"
        )
        refused = case.get("refused")
        if refused:
            assert outcome.startswith("error:") and refused in outcome, (name, outcome)
        else:
            assert outcome == "ok", f"{name}: the CPU backend did not run it: {outcome}"
        planner = planned[name]
        rows.append(f"{name}: vLLM {tokens:,} planner {planner:,} ({planner / tokens:.4f})")
        if abs(planner / tokens - 1) > TOLERANCE:
            misses.append(rows[-1])
    print("\n".join(rows))
    assert not misses, "planner off by more than 2%:\n" + "\n".join(misses)
