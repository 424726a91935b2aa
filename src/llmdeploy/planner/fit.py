"""The memory plan: weights + KV cache + overhead against a target, a verdict, suggestions.

    weights   = the weight files' sizes, or parameters x bits per weight / 8
    KV cache  = 2 (K and V) x layers x KV heads x head dim x bytes per element x tokens,
                tokens = context x concurrent sequences (llama.cpp: ctx_size, shared by slots)
    overhead  = runtime allowance (+ CUDA graphs) + activations of one forward step
    total     = weights + KV cache + overhead            fits when total <= budget
    budget    = the target's memory (vLLM on a GPU: x gpu_memory_utilization)

vLLM sizes its KV cache itself: on a GPU it takes everything its budget leaves after weights
and activations (``kv_capacity_tokens`` is that figure, like vLLM's "GPU KV cache size"); on
the CPU it allocates ``VLLM_CPU_KVCACHE_SPACE`` GiB, and the total counts that allocation.
The verdict uses the worst case: every sequence at full context at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from llmdeploy.core.model_info import ModelInfo
from llmdeploy.core.sizes import format_gib
from llmdeploy.errors import LlmdeployError
from llmdeploy.planner import constants as c
from llmdeploy.planner import quant
from llmdeploy.planner.report import FitReport, Suggestion, SuggestionKind
from llmdeploy.planner.shape import ModelShape, WeightsEstimate, estimate_weights, shape_of
from llmdeploy.planner.spec import ServingSpec, Target

# the context knob and concurrency knob of each backend, as profile field paths
_CONTEXT_FIELD = {
    "llamacpp": "backend.ctx_size",
    "vllm": "backend.max_model_len",
    "ollama": "backend.num_ctx",
}
_SEQUENCES_FIELD = {
    "llamacpp": "backend.parallel",
    "vllm": "backend.max_num_seqs",
    "ollama": "backend.num_parallel",
}


def kv_bytes_per_token(shape: ModelShape, spec: ServingSpec) -> int:
    """KV cache bytes per token: layers x KV heads x head dim x (bytes per K + per V element).

    With tensor parallelism each GPU holds ``ceil(kv_heads / tp)`` heads and at least one, so
    KV heads are replicated when ``tp`` exceeds them (as vLLM does).
    """
    tp = max(spec.tensor_parallel_size, 1)
    heads = max(1, math.ceil(shape.kv_heads / tp)) * tp
    k = quant.kv_element_bytes(spec.kv_k_format)
    v = quant.kv_element_bytes(spec.kv_v_format)
    if k is None or v is None:
        raise LlmdeployError(
            f"unknown KV cache type {spec.kv_k_format if k is None else spec.kv_v_format!r}",
            hint="use f16, bf16, fp8, q8_0 or q4_0",
        )
    return round(shape.layers * heads * shape.head_dim * (k + v))


def overhead_bytes(shape: ModelShape, spec: ServingSpec, weights_bytes: int) -> dict[str, int]:
    """The overhead allowance, itemized: runtime, CUDA graphs and activations."""
    processes = max(spec.tensor_parallel_size, 1)
    runtime = c.RUNTIME_BYTES[(spec.backend, spec.device)] * processes
    graphs = c.CUDA_GRAPHS_BYTES * processes if spec.cuda_graphs else 0
    if shape.hidden_size:
        activations = spec.step_tokens * shape.hidden_size * c.ACTIVATION_BYTES_PER_TOKEN_PER_HIDDEN
        if shape.vocab_size:
            activations += spec.sequences * shape.vocab_size * c.LOGIT_BYTES
    else:
        activations = round(weights_bytes * c.ACTIVATION_FALLBACK_FRACTION)
    return {"runtime": runtime, "cuda_graphs": graphs, "activations": activations}


@dataclass
class _Figures:
    weights: WeightsEstimate
    weights_bytes: int  # on the target
    per_token: int
    kv_required: int
    kv_counted: int
    overhead: dict[str, int]
    total: int
    budget: int | None
    fits: bool | None
    starts: bool | None
    capacity_tokens: int | None
    notes: list[str] = field(default_factory=list)

    @property
    def overhead_total(self) -> int:
        return sum(self.overhead.values())

    @property
    def margin(self) -> int | None:
        return None if self.budget is None else self.budget - self.total


def _block_floor(kv_bytes: int, per_token: int, block: int) -> int:
    if kv_bytes <= 0 or per_token <= 0:
        return 0
    return kv_bytes // (per_token * block) * block


def _evaluate(shape: ModelShape, spec: ServingSpec, target: Target | None) -> _Figures:
    weights = estimate_weights(shape, spec.weights_format)
    per_token = kv_bytes_per_token(shape, spec)
    kv_required = per_token * spec.kv_tokens
    overhead = overhead_bytes(shape, spec, weights.bytes)
    notes: list[str] = []
    weights_on_target, kv_counted = weights.bytes, kv_required
    if spec.gpu_layers is not None and spec.device == "gpu" and spec.gpu_layers < shape.layers:
        share = max(spec.gpu_layers, 0) / shape.layers
        weights_on_target = round(weights.bytes * share)
        kv_counted = round(kv_required * share)
        notes.append(
            f"{spec.gpu_layers} of {shape.layers} layers on the GPU: "
            f"{format_gib(weights.bytes - weights_on_target + kv_required - kv_counted)} of "
            "weights and KV cache stay in host RAM"
        )
    fixed = weights_on_target + sum(overhead.values())
    capacity: int | None = None
    budget = target.total_bytes if target else None
    if spec.backend == "vllm" and spec.device == "cpu":
        kv_space = spec.cpu_kv_cache_bytes
        if kv_space is None and target is not None:
            seen = target.host_memory_bytes or target.total_bytes
            kv_space = int(seen * c.VLLM_CPU_KV_DEFAULT_FRACTION)
        if kv_space is not None:
            kv_counted = kv_space
            capacity = _block_floor(kv_space, per_token, c.VLLM_BLOCK_TOKENS["cpu"])
        total = fixed + kv_counted
        fits = starts = None
        if budget is not None and capacity is not None:
            in_memory = total <= budget
            fits = in_memory and capacity >= spec.kv_tokens
            starts = in_memory and capacity >= spec.context_per_sequence
    elif spec.backend == "vllm":
        utilization = spec.gpu_memory_utilization or c.VLLM_GPU_MEMORY_UTILIZATION
        total = fixed + kv_counted
        fits = starts = None
        if budget is not None:
            budget = int(budget * utilization)
            capacity = _block_floor(budget - fixed, per_token, c.VLLM_BLOCK_TOKENS["gpu"])
            fits = total <= budget
            starts = capacity >= spec.context_per_sequence
    else:
        total = fixed + kv_counted
        capacity = spec.kv_tokens
        fits = None if budget is None else total <= budget
        starts = fits
    return _Figures(
        weights=weights,
        weights_bytes=weights_on_target,
        per_token=per_token,
        kv_required=kv_required,
        kv_counted=kv_counted,
        overhead=overhead,
        total=total,
        budget=budget,
        fits=fits,
        starts=starts,
        capacity_tokens=capacity,
        notes=notes,
    )


def plan(info: ModelInfo, spec: ServingSpec, target: Target | None) -> FitReport:
    """Plan ``info`` served as ``spec`` on ``target`` (None: figures only, no verdict)."""
    shape = shape_of(info)
    figures = _evaluate(shape, spec, target)
    notes = list(spec.assumptions) + figures.notes + _notes(shape, spec, target, figures)
    suggestions: list[Suggestion] = []
    if figures.fits is False and target is not None:
        suggestions = _suggestions(shape, spec, target, notes)
    context = spec.context_per_sequence
    capacity = figures.capacity_tokens
    return FitReport(
        backend=spec.backend,
        device=spec.device,
        weights_bytes=figures.weights_bytes,
        weights_source=figures.weights.source,
        weights_format=figures.weights.format,
        kv_bytes_per_token=figures.per_token,
        kv_cache_tokens=spec.kv_tokens,
        kv_cache_required_bytes=figures.kv_required,
        kv_cache_bytes=figures.kv_counted,
        overhead_bytes=figures.overhead_total,
        overhead_detail=dict(figures.overhead),
        total_bytes=figures.total,
        available_bytes=target.total_bytes if target else None,
        budget_bytes=figures.budget,
        margin_bytes=figures.margin,
        fits=figures.fits,
        starts=figures.starts,
        context_tokens=context,
        sequences=spec.sequences,
        kv_capacity_tokens=capacity,
        max_concurrency=round(capacity / context, 2) if capacity is not None and context else None,
        target=target.description if target else "unknown",
        suggestions=tuple(suggestions),
        notes=tuple(notes),
    )


def _notes(
    shape: ModelShape, spec: ServingSpec, target: Target | None, figures: _Figures
) -> list[str]:
    notes = []
    if spec.backend == "vllm" and figures.capacity_tokens is not None:
        where = "GPU" if spec.device == "gpu" else "CPU"
        concurrency = figures.capacity_tokens / max(spec.context_per_sequence, 1)
        notes.append(
            f"vLLM's {where} KV cache would hold {figures.capacity_tokens:,} tokens: maximum "
            f"concurrency {concurrency:.2f}x at {spec.context_per_sequence:,} tokens per request"
        )
        if figures.starts is False:
            notes.append(
                "vLLM would refuse to start: one sequence of max_model_len does not fit "
                "its KV cache"
            )
        elif figures.fits is False and figures.budget is not None:
            notes.append(
                f"vLLM would start but run at most {int(concurrency)} full-length sequences at "
                f"once (max_num_seqs is {spec.sequences}); it queues or preempts the rest"
            )
    if spec.backend == "vllm" and spec.device == "cpu" and spec.cpu_kv_cache_bytes is None:
        notes.append(
            "VLLM_CPU_KVCACHE_SPACE unset (backend.cpu_kvcache_space_gib): vLLM takes half of "
            "the host RAM it sees for the KV cache, whatever a container's memory limit is"
        )
    fixed = figures.weights_bytes + figures.overhead_total
    if target is not None and figures.budget is not None and fixed > figures.budget:
        notes.append(
            f"the weights and overhead alone ({format_gib(figures.weights_bytes)} + "
            f"{format_gib(figures.overhead_total)}) exceed the budget of "
            f"{format_gib(figures.budget)}: no context or concurrency setting fits"
        )
    if spec.backend == "ollama" and spec.device == "gpu" and figures.fits is False:
        notes.append("Ollama would offload fewer layers to the GPU rather than fail (slower)")
    return notes


def _largest(lo: int, hi: int, ok: Callable[[int], bool]) -> int | None:
    """The largest v in [lo, hi] with ok(v), for ok true up to some point and false after."""
    if hi < lo or not ok(lo):
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _fits(shape: ModelShape, spec: ServingSpec, target: Target) -> bool:
    try:
        return _evaluate(shape, spec, target).fits is True
    except LlmdeployError:
        return False


def _suggestion(
    kind: SuggestionKind,
    summary: str,
    changes: dict[str, object],
    flags: tuple[str, ...],
    shape: ModelShape,
    spec: ServingSpec,
    target: Target,
) -> Suggestion:
    figures = _evaluate(shape, spec, target)
    return Suggestion(
        kind=kind,
        summary=summary,
        changes=changes,
        cli_flags=flags,
        total_bytes=figures.total,
        margin_bytes=figures.margin or 0,
        spec=spec,
        target=target,
    )


def _suggestions(
    shape: ModelShape, spec: ServingSpec, target: Target, notes: list[str]
) -> list[Suggestion]:
    found: list[Suggestion] = []
    for make in (_by_context, _by_sequences, _by_kv_dtype, _by_quantization, _by_tensor_parallel):
        suggestion = make(shape, spec, target, notes)
        if suggestion is not None:
            found.append(suggestion)
    if spec.backend == "vllm" and spec.device == "cpu":
        suggestion = _by_cpu_kv_space(shape, spec, target)
        if suggestion is not None:
            found.append(suggestion)
    return found


def _per_sequence_flag(spec: ServingSpec) -> tuple[str, ...]:
    return ("--context", str(spec.context_per_sequence))


def _by_context(
    shape: ModelShape, spec: ServingSpec, target: Target, notes: list[str]
) -> Suggestion | None:
    """The largest context that fits at the current concurrency."""
    low = spec.sequences if spec.shared_context else 1
    best = _largest(
        low,
        spec.context_tokens - 1,
        lambda v: _fits(shape, replace(spec, context_tokens=v), target),
    )
    if best is None:
        return None
    if best >= c.CONTEXT_ROUNDING:
        best = max(best // c.CONTEXT_ROUNDING * c.CONTEXT_ROUNDING, low)
    changed = replace(spec, context_tokens=best)
    name = _CONTEXT_FIELD[spec.backend]
    summary = f"{name.split('.')[-1]} {best} (was {spec.context_tokens})"
    if spec.shared_context:
        summary += f": {changed.context_per_sequence} tokens per slot"
    return _suggestion(
        "context", summary, {name: best}, _per_sequence_flag(changed), shape, changed, target
    )


def _by_sequences(
    shape: ModelShape, spec: ServingSpec, target: Target, notes: list[str]
) -> Suggestion | None:
    """The largest concurrency that fits at the current context per sequence."""
    per_seq = spec.context_per_sequence

    def at(p: int) -> ServingSpec:
        if spec.shared_context:
            return replace(spec, sequences=p, context_tokens=p * per_seq)
        return replace(spec, sequences=p)

    best = _largest(1, spec.sequences - 1, lambda p: _fits(shape, at(p), target))
    if best is None:
        return None
    changed = at(best)
    name = _SEQUENCES_FIELD[spec.backend]
    changes: dict[str, object] = {name: best}
    summary = f"{name.split('.')[-1]} {best} (was {spec.sequences})"
    if spec.shared_context:
        changes[_CONTEXT_FIELD[spec.backend]] = changed.context_tokens
        summary += f" with ctx_size {changed.context_tokens} ({per_seq} tokens per slot)"
    return _suggestion("sequences", summary, changes, ("--seqs", str(best)), shape, changed, target)


def _kv_candidate(spec: ServingSpec) -> tuple[str, dict[str, object], str] | None:
    """The 8-bit KV cache a backend offers: (format, profile changes, how to say it)."""
    if spec.backend == "vllm":
        if spec.device == "cpu":
            return None  # vLLM's CPU backend falls back to an unquantized cache
        return "FP8", {"backend.kv_cache_dtype": "fp8"}, "kv_cache_dtype fp8"
    if spec.backend == "ollama":
        changes: dict[str, object] = {
            "env.OLLAMA_KV_CACHE_TYPE": "q8_0",
            "env.OLLAMA_FLASH_ATTENTION": "1",
        }
        return "Q8_0", changes, "OLLAMA_KV_CACHE_TYPE=q8_0 (with OLLAMA_FLASH_ATTENTION=1)"
    return (
        "Q8_0",
        {},
        "a q8_0 KV cache: add --cache-type-k q8_0 --cache-type-v q8_0 --flash-attn on "
        "to backend.extra_args",
    )


def _by_kv_dtype(
    shape: ModelShape, spec: ServingSpec, target: Target, notes: list[str]
) -> Suggestion | None:
    """Whether an 8-bit KV cache (fp8 on vLLM, q8_0 on llama.cpp and Ollama) makes it fit."""
    candidate = _kv_candidate(spec)
    if candidate is None:
        return None
    kind, changes, words = candidate
    new_bytes = quant.kv_element_bytes(kind) or 0
    current = (quant.kv_element_bytes(spec.kv_k_format) or 0) + (
        quant.kv_element_bytes(spec.kv_v_format) or 0
    )
    if 2 * new_bytes >= current:
        return None
    changed = replace(spec, kv_k_format=kind, kv_v_format=kind)
    figures = _evaluate(shape, changed, target)
    if not figures.fits:
        over = -(figures.margin or 0)
        notes.append(f"{words} alone would not fit: still {format_gib(over)} over")
        return None
    return _suggestion(
        "kv_cache_dtype",
        words,
        changes,
        ("--kv-cache-dtype", kind.lower()),
        shape,
        changed,
        target,
    )


def _quant_ladder(spec: ServingSpec) -> tuple[str, ...]:
    if spec.backend in ("llamacpp", "ollama"):
        return quant.GGUF_LADDER
    if spec.device == "gpu":
        return ("FP8", "AWQ")
    return ()


def _by_quantization(
    shape: ModelShape, spec: ServingSpec, target: Target, notes: list[str]
) -> Suggestion | None:
    """The highest-quality smaller weight format that fits."""
    current = estimate_weights(shape, spec.weights_format).bits_per_weight
    if current is None:
        return None
    for candidate in _quant_ladder(spec):
        bits = quant.bits_per_weight(candidate)
        if bits is None or bits >= current - 0.01:
            continue
        changed = replace(spec, weights_format=candidate)
        if not _fits(shape, changed, target):
            continue
        weights = estimate_weights(shape, candidate).bytes
        changes: dict[str, object] = {}
        if spec.backend == "vllm":
            changes = {"backend.quantization": candidate.lower()}
            summary = (
                f"quantization fp8 (weights {format_gib(weights)})"
                if candidate == "FP8"
                else f"a 4-bit AWQ/GPTQ checkpoint in model.ref, quantization "
                f"{candidate.lower()} (weights {format_gib(weights)})"
            )
        else:
            summary = (
                f"a {candidate} GGUF of this model in model.ref (weights {format_gib(weights)})"
            )
        return _suggestion(
            "quantization", summary, changes, ("--quant", candidate), shape, changed, target
        )
    return None


def _by_tensor_parallel(
    shape: ModelShape, spec: ServingSpec, target: Target, notes: list[str]
) -> Suggestion | None:
    """vLLM on GPUs: the fewest GPUs of this size that fit (attention heads must divide)."""
    if spec.backend != "vllm" or spec.device != "gpu":
        return None
    for tp in (2, 4, 8):
        if tp <= spec.tensor_parallel_size:
            continue
        if shape.attention_heads and shape.attention_heads % tp:
            continue
        changed = replace(spec, tensor_parallel_size=tp)
        more = replace(target, devices=tp, description=f"{tp} x {format_gib(target.memory_bytes)}")
        if _fits(shape, changed, more):
            return _suggestion(
                "tensor_parallel",
                f"tensor_parallel_size {tp}: {tp} GPUs of {format_gib(target.memory_bytes)}",
                {"backend.tensor_parallel_size": tp},
                ("--tensor-parallel", str(tp)),
                shape,
                changed,
                more,
            )
    return None


def _by_cpu_kv_space(shape: ModelShape, spec: ServingSpec, target: Target) -> Suggestion | None:
    """vLLM on the CPU: the smallest VLLM_CPU_KVCACHE_SPACE (whole GiB) that holds the workload."""
    per_token = kv_bytes_per_token(shape, spec)
    block = c.VLLM_BLOCK_TOKENS["cpu"]
    gib = max(1, math.ceil(per_token * spec.kv_tokens / c.GiB))
    while _block_floor(gib * c.GiB, per_token, block) < spec.kv_tokens:
        gib += 1
    if spec.cpu_kv_cache_bytes == gib * c.GiB:
        return None
    changed = replace(spec, cpu_kv_cache_bytes=gib * c.GiB)
    if not _fits(shape, changed, target):
        return None
    return _suggestion(
        "cpu_kv_cache_space",
        f"cpu_kvcache_space_gib {gib} (VLLM_CPU_KVCACHE_SPACE={gib})",
        {"backend.cpu_kvcache_space_gib": gib},
        ("--cpu-kv-space", str(gib)),
        shape,
        changed,
        target,
    )
