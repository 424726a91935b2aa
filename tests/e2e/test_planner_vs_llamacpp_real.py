"""The planner's llama.cpp KV cache against the real llama.cpp server, family by family.

For each synthetic model family (``tests/support/synthetic_gguf.py``: dense GQA, per-layer KV
heads, MoE, sliding windows (gemma2, gemma3, cohere2, gpt-oss), MLA, old-style DeepSeek,
Mamba-2, hybrids (granitehybrid, falcon-h1, nemotron_h, lfm2)) and
a few settings (context, slots, cache types, flash attention, unified cache, full SWA cache,
micro-batch), the server (``xllamacpp``, in a child process on 127.0.0.1) logs the caches it
allocated; the planner, given a llama.cpp profile that serves the same file, must agree within
2%. About 1-2 s per case; the files are written once per module (a few MB each).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from e2e_helpers import unavailable

from llmdeploy.models.inspect.gguf import inspect_gguf
from llmdeploy.planner import check_profile
from llmdeploy.profiles.schema import Profile
from support.llamacpp_kv import MiB, Settings, parse_cache_lines, server_cache_log
from support.synthetic_gguf import FAMILIES, write_gguf

pytestmark = [pytest.mark.e2e]

TOLERANCE = 0.02

CASES: list[tuple[str, Settings]] = [
    ("llama", Settings()),
    ("llama", Settings(ctx_size=2048, parallel=3)),  # per-slot streams, rounded to 3 x 768
    ("llama", Settings(ctx_size=3000, parallel=2, kv_unified=True)),  # one stream, 3072 cells
    ("llama", Settings(parallel=2, cache_type_k="q8_0", cache_type_v="q8_0")),
    ("deci", Settings()),
    ("deci", Settings(flash_attn="off")),  # V padded to the widest layer
    ("qwen3moe", Settings(parallel=2)),
    ("gemma2", Settings(parallel=2)),
    ("gemma3", Settings(parallel=2)),
    ("gemma3", Settings(parallel=2, kv_unified=True)),
    ("gemma3", Settings(swa_full=True)),
    ("gemma3", Settings(ubatch=100)),
    ("deepseek2-mla", Settings()),
    ("deepseek2-mla", Settings(parallel=2, cache_type_k="q8_0", cache_type_v="q8_0")),
    ("deepseek2-old", Settings()),
    ("mamba2", Settings(parallel=2)),
    ("granitehybrid", Settings(parallel=2)),
    ("granitehybrid", Settings(ctx_size=8192, parallel=4, cache_type_k="q8_0",
                               cache_type_v="q8_0")),
    ("cohere2", Settings(parallel=2)),
    ("gpt-oss", Settings(parallel=2)),
    ("falcon-h1", Settings(parallel=2)),
    ("nemotron_h", Settings(parallel=2)),
    ("lfm2", Settings(parallel=2)),
]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    for module in ("xllamacpp", "gguf"):
        if importlib.util.find_spec(module) is None:
            unavailable(f"{module} is not installed (scripts/setup-python.sh --dev)")
    folder = tmp_path_factory.mktemp("synthetic-gguf")
    return {name: write_gguf(family, folder / f"{name}.gguf") for name, family in FAMILIES.items()}


def _profile(model: Path, settings: Settings) -> Profile:
    return Profile.model_validate({
        "name": "kv-check",
        "engine": "podman",
        "accelerator": "cpu",
        "backend": {"kind": "llamacpp", "ctx_size": settings.ctx_size,
                    "parallel": settings.parallel, "extra_args": settings.extra_args()},
        "model": {"ref": model.as_uri(), "name": model.stem},
    })  # fmt: skip


def _server_bytes(log: str) -> float:
    lines = parse_cache_lines(log)
    assert lines, "the server logged no cache size:\n" + log[-2000:]
    return sum(line.total_mib for line in lines) * MiB


@pytest.mark.parametrize(
    ("family", "settings"), CASES, ids=[f"{f}[{s.label()}]" for f, s in CASES]
)
def test_planner_kv_cache_matches_the_llamacpp_server(
    models: dict[str, Path], family: str, settings: Settings
) -> None:
    model = models[family]
    server = _server_bytes(server_cache_log(model, settings))
    report = check_profile(_profile(model, settings), inspect_gguf(model), available_bytes=None)
    ratio = report.kv_cache_bytes / server
    assert abs(ratio - 1) <= TOLERANCE, (
        f"{family} ({settings.label()}): planner {report.kv_cache_bytes / MiB:.2f} MiB, "
        f"llama.cpp {server / MiB:.2f} MiB (x{ratio:.3f})"
    )


def test_llmdeploy_plan_cli_gives_the_servers_figure(
    models: dict[str, Path], tmp_path: Path
) -> None:
    """The same check through ``llmdeploy plan -f PROFILE --json`` (the command users run)."""
    settings = Settings(parallel=2)
    model = models["gemma3"]
    profile = tmp_path / "gemma3.yaml"
    profile.write_text(json.dumps(_profile(model, settings).model_dump(mode="json",
                                                                     exclude_defaults=True)))
    result = subprocess.run(
        [sys.executable, "-m", "llmdeploy", "plan", "-f", str(profile), "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    planned = json.loads(result.stdout)["kv_cache_bytes"]
    server = _server_bytes(server_cache_log(model, settings))
    assert abs(planned / server - 1) <= TOLERANCE, (planned / MiB, server / MiB)
