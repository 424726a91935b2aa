"""vLLM end to end on the CPU: build the CPU image, convert the tiny GGUF, up, chat, bench, down.

Slow (a 2.6 GB image built once per machine, ~45 s to healthy), but CI runs it. The engine is
Podman unless LLMDEPLOY_VLLM_E2E_ENGINE says docker.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
from e2e_helpers import Cli, engine_ready, free_port, leftovers, unavailable

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ENGINE = os.environ.get("LLMDEPLOY_VLLM_E2E_ENGINE", "podman")


def test_vllm_cpu_up_chat_bench_down(cli: Cli, tmp_path: Path) -> None:
    reason = engine_ready(ENGINE)
    if reason:
        unavailable(reason)
    for module in ("torch", "transformers", "accelerate", "gguf", "safetensors"):
        if importlib.util.find_spec(module) is None:
            unavailable(f"{module} is needed to convert the GGUF for vLLM (scripts/setup-python.sh --dev)")
    name = f"e2e-vllm-{uuid.uuid4().hex[:6]}"
    port = free_port()
    profile = tmp_path / f"{name}.yaml"
    profile.write_text(
        f"name: {name}\nextends: cpu-vllm\nengine: {ENGINE}\nserver: {{port: {port}}}\n"
    )
    try:
        up = cli.json("up", "--profile-file", str(profile), timeout=2400)
        assert isinstance(up, dict)
        assert up["model"] == "smollm2-135m" and up["engine"] == ENGINE
        assert "vllm-cpu" in up["image"]
        # the planner's capacity beside vLLM's "CPU KV cache size: N tokens" (1 GiB of cache)
        kv = up["kv_cache"]
        assert kv["compared"] == "tokens", kv
        assert kv["planned"] is not None and kv["actual"] is not None, kv
        assert abs(kv["actual"] - kv["planned"]) <= 0.10 * kv["planned"], kv
        assert kv["differs"] is False and kv["actual_bytes"] == 2**30, kv

        mounts = json.loads(subprocess.run(
            [ENGINE, "inspect", "--format", "{{json .Mounts}}", f"llmdeploy-{name}"],
            capture_output=True, text=True, timeout=60, check=True).stdout)
        model_mount = next(m for m in mounts if m["Destination"] == "/models")
        assert model_mount["RW"] is False
        assert (Path(model_mount["Source"]) / "config.json").is_file()  # the converted HF folder
        assert list(Path(model_mount["Source"]).glob("*.safetensors"))

        reply = cli.json("chat", "--deployment", name, "--max-tokens", "16",
                         "What is the capital of France?")
        assert isinstance(reply, dict)
        assert reply["content"].strip()
        assert reply["completion_tokens"] and reply["completion_tokens"] > 0

        report = cli.json("bench", "--deployment", name, "-n", "6", "-c", "2",
                          "--output-tokens", "8", "--no-progress", timeout=600)
        assert isinstance(report, dict)
        summary = report["stages"][0]["summary"]
        assert summary["ok"] == 6, summary["errors_by_cause"]
        assert summary["token_sources"] == {"usage": 6}
        server = report["stages"][0]["server"]
        assert server is not None and "vllm" in server["families"]

        rows = cli.json("status", name)
        assert isinstance(rows, list) and len(rows) == 1
        assert rows[0]["healthy"] is True and rows[0]["engine"] == ENGINE
        assert rows[0]["kv_cache"]["actual"] == kv["actual"]

        again = cli.json("up", "--profile-file", str(profile), timeout=600)
        assert isinstance(again, dict) and again["unchanged"] is True

        logs = cli("logs", name, "--tail", "400")
        assert "KV cache" in logs.stdout + logs.stderr
    finally:
        down = cli("down", name, timeout=300)
        assert down.returncode == 0, down.stderr
    assert leftovers(ENGINE, name) == []
