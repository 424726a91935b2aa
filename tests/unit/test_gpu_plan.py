"""`llmdeploy plan MODEL_REF --gpu NAME`: the GPU table, the answers (each the largest that
fits, checked against the planner itself) and the command's output, JSON and errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from llmdeploy.core.model_info import ModelInfo
from llmdeploy.errors import LlmdeployError, ModelError, UsageError
from llmdeploy.planner import PRESETS, plan
from llmdeploy.planner.gpus import GPUS, gpu_named
from llmdeploy.planner.kv_llamacpp import CELL_PAD
from llmdeploy.planner.request import (
    ModelQuestion,
    PlanRequest,
    answer_question,
    plan_request,
)
from llmdeploy.planner.sizing import (
    GPU_COUNTS,
    KV_CACHE_DTYPES,
    Sizing,
    size_model,
)
from llmdeploy.planner.spec import BackendKind
from llmdeploy.planner.target import Target, gpu_target
from llmdeploy.planner.whatif import hypothetical_spec
from model_headers import LlamaShape, gguf_file, hf_repo
from range_http import FileServer, serve

GiB = 1024**3
LLAMA = PRESETS["llama-3.1-8b"]  # BF16, 32 layers, 8 KV heads of 128, 131,072 context
LLAMA_GGUF = replace(LLAMA, format="gguf", quantization="Q4_K_M")
L4 = gpu_named("l4").memory_bytes
COMMIT = "d" * 40


# --- the GPU table ----------------------------------------------------------------------------


def test_gpu_names_are_forgiving_and_unique() -> None:
    assert gpu_named("H100").key == gpu_named("h100-80gb").key == gpu_named("h100_sxm").key
    assert gpu_named("RTX 4090").key == "rtx-4090" and gpu_named("mi3").key == "mi300x"
    keys = [gpu.key for gpu in GPUS]
    assert len(keys) == len(set(keys))
    assert gpu_named("h200").reported_mib == 143_771  # nvidia-smi on an H200
    assert gpu_named("h100").memory_bytes == 81_559 * 1024**2
    for gpu in GPUS:  # the driver's figure is the vendor's, give or take 8 %
        assert 0.92 < gpu.memory_bytes / (gpu.stated_gb * 1e9) < 1.08, gpu.key


@pytest.mark.parametrize(("name", "message"), [("b200", "no GPU named"), ("a100", "ambiguous")])
def test_unknown_or_ambiguous_gpus_are_usage_errors_listing_the_table(
    name: str, message: str
) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        gpu_named(name)
    assert caught.value.exit_code == 2
    assert "a100-40gb" in (caught.value.hint or "") + caught.value.message


# --- the answers, each checked against the planner's own plan -----------------------------


def fits(
    info: ModelInfo, backend: BackendKind, kv: str, context: int, sequences: int, gpus: int,
    per_gpu: int,
) -> bool:
    """The planner's verdict (``planner.plan``, as `llmdeploy plan` gives it) for one spec."""
    spec = hypothetical_spec(
        info, backend=backend, device="gpu", context=context, sequences=sequences,
        kv_cache_dtype=None if kv == "auto" else kv,
        tensor_parallel_size=gpus if backend == "vllm" else 1,
    )
    target = gpu_target(spec, per_gpu) if backend == "vllm" else Target("gpu", per_gpu, gpus)
    report = plan(info, spec, target)
    return report.fits is True and report.starts is not False


def check_largest(info: ModelInfo, sizing: Sizing, per_gpu: int) -> None:
    step = sizing.context_step
    for answer in sizing.answers:
        kv = answer.kv_cache_dtype
        for cell in answer.by_gpus:
            if not cell.valid:
                continue
            args = (info, sizing.backend, kv)
            if cell.max_context is None:
                assert not fits(*args, step, 1, cell.gpus, per_gpu)
            else:
                assert cell.max_context % step == 0 or cell.max_context_is_full
                assert fits(*args, cell.max_context, 1, cell.gpus, per_gpu)
                if not cell.max_context_is_full:  # one more block does not fit
                    assert not fits(*args, cell.max_context + step, 1, cell.gpus, per_gpu)
            assert cell.max_sequences == 0 or fits(
                *args, sizing.context, cell.max_sequences, cell.gpus, per_gpu
            )
            assert not fits(*args, sizing.context, cell.max_sequences + 1, cell.gpus, per_gpu)
        if answer.gpus_needed is not None:
            assert fits(info, sizing.backend, kv, sizing.context, 1, answer.gpus_needed, per_gpu)
            fewer = [n for n in GPU_COUNTS if n < answer.gpus_needed]
            assert not any(fits(info, sizing.backend, kv, sizing.context, 1, n, per_gpu)
                           for n in fewer)


def test_vllm_on_an_l4_every_answer_is_the_largest_that_fits() -> None:
    sizing = size_model(LLAMA, "vllm", L4, gpus=2)
    assert [a.kv_cache_dtype for a in sizing.answers] == ["auto", "fp8"]
    assert sizing.context == 131_072 and sizing.context_step == 16
    auto, fp8 = sizing.answers
    assert (auto.kv_format, fp8.kv_format) == ("BF16", "FP8")
    assert auto.kv_bytes_per_token == 2 * fp8.kv_bytes_per_token == 32 * 8 * 128 * 2 * 2
    one, two = auto.by_gpus
    assert 0 < one.max_context < 131_072 and one.max_sequences == 0  # bf16 16 GB of weights
    assert two.max_context == 131_072 and two.max_context_is_full and two.max_sequences >= 1
    assert auto.gpus_needed == 2 and fp8.gpus_needed == 2
    assert fp8.by_gpus[0].max_context > 1.9 * one.max_context  # half the KV per token
    check_largest(LLAMA, sizing, L4)


def test_llamacpp_answers_per_cache_type_are_the_largest_that_fit() -> None:
    sizing = size_model(LLAMA_GGUF, "llamacpp", 12 * GiB, gpus=2, context=32_768)
    assert [a.kv_cache_dtype for a in sizing.answers] == list(KV_CACHE_DTYPES["llamacpp"])
    assert sizing.context_step == CELL_PAD and sizing.context_source == "--context"
    f16, q8, q4 = (a.by_gpus[0] for a in sizing.answers)
    assert f16.max_context is not None and q8.max_context is not None and q4.max_context is not None
    assert f16.max_context < q8.max_context < q4.max_context
    assert f16.max_sequences <= q8.max_sequences <= q4.max_sequences
    check_largest(LLAMA_GGUF, sizing, 12 * GiB)
    assert any("pooled" in note for note in sizing.notes)
    assert any("flash attention" in note for note in sizing.notes)


def test_the_answers_agree_with_a_plain_plan_of_the_same_deployment() -> None:
    """`plan --arch ... --context N --seqs 1 --gpu-memory` says the same as the answer."""
    cell = size_model(LLAMA, "vllm", L4, gpus=1, kv_cache_dtypes=("fp8",)).answers[0].by_gpus[0]
    assert cell.max_context is not None

    def planned(context: int) -> bool:
        request = PlanRequest(arch="llama-3.1-8b", backend="vllm", context=context, sequences=1,
                              kv_cache_dtype="fp8", gpu_memory_bytes=L4)
        report = plan_request(request).report
        return report.fits is True and report.starts is True

    assert planned(cell.max_context) and not planned(cell.max_context + 16)


def test_a_model_too_big_for_any_count_and_a_tp_vllm_refuses() -> None:
    huge = replace(LLAMA, parameters=2_000_000_000_000)  # 4 TB of BF16 weights
    answer = size_model(huge, "vllm", L4, gpus=2).answers[0]
    assert answer.gpus_needed is None
    assert all(c.max_context is None and c.max_sequences == 0 for c in answer.by_gpus)
    qwen = PRESETS["qwen2.5-7b"]  # 28 attention heads: 3 does not divide them
    cell = size_model(qwen, "vllm", L4, gpus=3).answers[0].by_gpus[1]
    assert not cell.valid and "28 attention heads" in cell.why_not


def test_bad_questions_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="no context length"):
        size_model(replace(LLAMA, context_length=None), "vllm", L4)
    from llmdeploy.planner.sizing import kv_cache_dtypes

    with pytest.raises(UsageError, match="vllm offers auto, fp8"):
        kv_cache_dtypes("vllm", "q8_0")
    assert kv_cache_dtypes("llamacpp", "Q8_0") == ("q8_0",)


# --- the command ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    shape = LlamaShape(layers=32, heads=32, kv_heads=8, hidden=4096, ffn=14336, vocab=32_000,
                       context=131_072)
    files = hf_repo(shape, shards=4)
    files["llama.Q4_K_M.gguf"] = gguf_file(tmp_path_factory.mktemp("g") / "l.gguf", shape)
    head = files["llama.Q4_K_M.gguf"].head
    files["cut.gguf"] = head[: len(head) // 3]
    return files


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, repo: dict[str, Any]) -> Iterator[FileServer]:
    with serve(FileServer(repos={"org/llama": {COMMIT: repo}})) as server:
        for name, value in (("HF_ENDPOINT", server.url), ("HF_HOME", str(tmp_path / "hf")),
                            ("NO_PROXY", "127.0.0.1,localhost")):
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        yield server


def invoke(*args: str) -> Any:
    import typer
    from typer.testing import CliRunner

    from llmdeploy.cli import plan_cmd

    app = typer.Typer()
    app.command()(plan_cmd.plan)
    return CliRunner().invoke(app, list(args))


def test_json_answers_with_bytes_read_for_a_header_only_plan(hub: FileServer) -> None:
    result = invoke("hf://org/llama", "--gpu", "l4", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["plan"] == "model hf://org/llama" and data["backend"] == "vllm"
    assert data["model"]["layers"] == 32 and data["model"]["context_length"] == 131_072
    assert data["gpu"]["key"] == "l4" and data["gpu"]["memory_bytes"] == L4
    read = data["read"]
    assert read["header_only"] and read["range_requests_honoured"]
    assert 0 < read["bytes_read"] < read["file_bytes"] / 1000  # 16 GB of shards, KiB read
    assert read["bytes_read"] <= hub.sent < read["file_bytes"] / 1000  # the server agrees
    auto = data["answers"][0]
    assert auto["kv_cache_dtype"] == "auto" and auto["gpus_needed"] == 2
    assert [g["gpus"] for g in auto["by_gpus"]] == [1, 2]
    assert auto["by_gpus"][1]["max_context"] == 131_072


def test_table_for_a_gguf_names_every_cache_type_and_what_two_gpus_buy(hub: FileServer) -> None:
    result = invoke("hf://org/llama/llama.Q4_K_M.gguf", "--gpu", "rtx-4090", "--context", "8192")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "GGUF header of hf://org/llama/llama.Q4_K_M.gguf" in out and "requests" in out
    assert "NVIDIA GeForce RTX 4090: 24 GB as stated, 23.99 GiB reported" in out
    for kv in ("f16", "q8_0", "q4_0"):
        assert f"{kv}: one GPU holds" in out
    assert "2 GPUs:" in out and "layer split" in out and "sequences at 8,192" in out


def test_gpu_memory_and_gpus_n(hub: FileServer) -> None:
    result = invoke("hf://org/llama", "--gpu-memory", "40GiB", "--gpus", "4", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["gpus"] == [1, 4] and data["gpu"] == {
        "memory_bytes": 40 * GiB, "source": "--gpu-memory"
    }


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (["--gpu", "nope"], UsageError, "no GPU named"),
        (["--gpu", "l4", "--gpu-memory", "24GiB"], UsageError, "not both"),
        (["--gpu", "l4", "--seqs", "4"], UsageError, "--seqs: not with MODEL_REF"),
        (["--gpu", "l4", "--kv-cache-dtype", "q4_0"], UsageError, "vllm offers"),
        (["--gpu", "l4", "--backend", "llamacpp"], UsageError, "llama.cpp serves GGUF"),
    ],
)
def test_bad_options(hub: FileServer, args: list[str], error: type, message: str) -> None:
    result = invoke("hf://org/llama", *args)
    assert isinstance(result.exception, error), result.output
    assert message in result.exception.message


def test_no_gpu_named_on_a_host_without_one(hub: FileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # no nvidia-smi
    result = invoke("hf://org/llama")
    assert isinstance(result.exception, UsageError) and "which GPU" in result.exception.message


def test_answer_question_takes_any_facts_reader() -> None:
    from llmdeploy.models.inspect.remote import ModelFacts

    seen: list[str] = []

    def facts(ref: str) -> ModelFacts:
        seen.append(ref)
        return ModelFacts(LLAMA_GGUF, "test")

    outcome = answer_question(ModelQuestion("ollama://llama3.1:8b", L4), facts_for=facts)
    assert seen == ["ollama://llama3.1:8b"] and outcome.sizing.backend == "ollama"
    assert outcome.to_json()["read"]["header_only"] is False
    with pytest.raises(UsageError, match="ollama:// models are served by"):
        answer_question(ModelQuestion("ollama://x", L4, backend="vllm"), facts_for=facts)


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmdeploy", "plan", *args], capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=60)


def test_cli_errors_exit_with_their_code_and_no_traceback(hub: FileServer) -> None:
    env = {k: os.environ[k] for k in ("HF_ENDPOINT", "HF_HOME", "NO_PROXY")}
    env["PYTHONPATH"] = str(Path(__file__).parents[2] / "src")
    cut = run("hf://org/llama/cut.gguf", "--gpu", "h100", env=env)
    assert cut.returncode == ModelError.exit_code, cut.stderr
    assert "truncated" in cut.stderr and "cut.gguf" in cut.stderr
    unknown = run("hf://org/llama", "--gpu", "b200", env=env)
    assert unknown.returncode == 2 and "h100" in unknown.stderr
    for result in (cut, unknown):
        assert "Traceback" not in result.stderr


def test_gpu_names_a_target_for_profile_plans_too() -> None:
    result = invoke("--arch", "llama-3.1-8b", "--backend", "vllm", "--context", "8192",
                    "--gpu", "h100", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["available_bytes"] == gpu_named("h100").memory_bytes
    assert isinstance(invoke("--arch", "llama-3.1-8b", "--gpus", "2").exception, LlmdeployError)
