"""What-ifs: a spec for a model without a profile, and a spec with changed knobs.

``context`` is always tokens per *sequence* here, whatever the backend's own knob means
(llama.cpp's ``ctx_size`` is the total its slots share).
"""

from __future__ import annotations

from dataclasses import replace

from llmdeploy.core.model_info import ModelInfo
from llmdeploy.errors import UsageError
from llmdeploy.planner import constants as c
from llmdeploy.planner import quant
from llmdeploy.planner.spec import (
    BackendKind,
    Device,
    ServingSpec,
    dequantized_note,
    vllm_compute_dtype,
    vllm_weights_format,
)


def known_weights_format(name: str) -> str:
    """The canonical spelling of a ``--quant`` value; UsageError when the planner does not
    know its bits per weight."""
    known = quant.canonical(name)
    if known is None or quant.bits_per_weight(known) is None:
        raise UsageError(
            f"--quant: unknown format {name!r}", hint="known: " + ", ".join(quant.WEIGHT_BITS)
        )
    return known


def hypothetical_spec(
    info: ModelInfo,
    *,
    backend: BackendKind,
    device: Device,
    context: int,
    sequences: int,
    kv_cache_dtype: str | None = None,
    tensor_parallel_size: int = 1,
    cpu_kv_cache_bytes: int | None = None,
) -> ServingSpec:
    """A spec for a model that has no profile: ``context`` tokens per sequence x ``sequences``,
    on the backend's defaults (llama.cpp: ``ctx_size = context x sequences``)."""
    if context <= 0 or sequences <= 0:
        raise UsageError("--context and --seqs must be positive")
    if backend == "llamacpp":
        spec = ServingSpec(
            "llamacpp",
            device,
            context * sequences,
            sequences,
            shared_context=True,
            step_tokens=c.STEP_TOKENS_DEFAULT["llamacpp"],
        )
    elif backend == "ollama":
        spec = ServingSpec(
            "ollama", device, context, sequences, step_tokens=c.STEP_TOKENS_DEFAULT["ollama"]
        )
    else:
        compute = vllm_compute_dtype(None, info)
        weights = vllm_weights_format(None, compute, info)
        spec = ServingSpec(
            "vllm",
            device,
            context,
            sequences,
            kv_k_format=compute,
            kv_v_format=compute,
            weights_format=weights,
            assumptions=dequantized_note(info, weights),
            tensor_parallel_size=tensor_parallel_size,
            cpu_kv_cache_bytes=cpu_kv_cache_bytes,
            step_tokens=c.STEP_TOKENS_DEFAULT["vllm"],
            cuda_graphs=device == "gpu",
        )
    return with_overrides(spec, kv_cache_dtype=kv_cache_dtype)


def with_overrides(
    spec: ServingSpec,
    *,
    context: int | None = None,
    sequences: int | None = None,
    weights_format: str | None = None,
    kv_cache_dtype: str | None = None,
    tensor_parallel_size: int | None = None,
    cpu_kv_cache_bytes: int | None = None,
) -> ServingSpec:
    """``spec`` with what-if changes: ``context`` is tokens per sequence on every backend."""
    per_seq = context if context is not None else spec.context_per_sequence
    seqs = sequences if sequences is not None else spec.sequences
    if per_seq <= 0 or seqs <= 0:
        raise UsageError("--context and --seqs must be positive")
    changes: dict[str, object] = {}
    if context is not None or sequences is not None:
        changes["sequences"] = seqs
        changes["context_tokens"] = per_seq * seqs if spec.shared_context else per_seq
    if weights_format is not None:
        changes["weights_format"] = known_weights_format(weights_format)
    if kv_cache_dtype is not None:
        kv = quant.canonical(kv_cache_dtype)
        if kv is None or quant.kv_element_bytes(kv) is None:
            raise UsageError(
                f"--kv-cache-dtype: unknown KV cache type {kv_cache_dtype!r}; known: "
                + ", ".join(k.lower() for k in quant.KV_ELEMENT_BYTES)
            )
        changes["kv_k_format"] = kv
        changes["kv_v_format"] = kv
    if tensor_parallel_size is not None:
        changes["tensor_parallel_size"] = tensor_parallel_size
    if cpu_kv_cache_bytes is not None:
        changes["cpu_kv_cache_bytes"] = cpu_kv_cache_bytes
    return replace(spec, **changes)  # type: ignore[arg-type]
