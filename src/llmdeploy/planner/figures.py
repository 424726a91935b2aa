"""The memory figures: weights + KV cache + overhead against a target, and the verdict.

    weights   = the weight files' sizes, or parameters x bits per weight / 8
    KV cache  = per layer, by the server's rules (``planner.kv_cache``): for a full-attention
                layer K + V widths x bytes per element x tokens, tokens = context x concurrent
                sequences (llama.cpp: ctx_size, shared by slots); sliding-window layers
                capped at the window, MLA one latent, recurrent layers a state per sequence
    overhead  = runtime allowance (+ CUDA graphs) + activations of one forward step
    total     = weights + KV cache + overhead            fits when total <= budget
    budget    = the target's memory (vLLM on a GPU: x gpu_memory_utilization)

vLLM sizes its KV cache itself: on a GPU it takes everything its budget leaves after weights
and activations (``capacity_tokens`` is that figure, like vLLM's "GPU KV cache size"); on
the CPU it allocates ``VLLM_CPU_KVCACHE_SPACE`` GiB, and the total counts that allocation.
The verdict uses the worst case: every sequence at full context at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llmdeploy.core.sizes import format_gib
from llmdeploy.planner import constants as c
from llmdeploy.planner.kv_cache import kv_cache, kv_capacity_tokens
from llmdeploy.planner.shape import ModelShape, WeightsEstimate, estimate_weights
from llmdeploy.planner.spec import ServingSpec
from llmdeploy.planner.target import Target


def kv_bytes_per_token(shape: ModelShape, spec: ServingSpec) -> int:
    """KV cache bytes one more token of context costs, by the spec's server's rules
    (``planner.kv_cache``: full-attention and MLA layers; with tensor parallelism over all
    GPUs, KV heads replicated when ``tp`` exceeds them, as vLLM does)."""
    return kv_cache(shape.layout, spec).per_token


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


@dataclass(frozen=True)
class Figures:
    """One evaluation of a spec on a target, in bytes (``FitReport`` is built from it)."""

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
    kv_by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def overhead_total(self) -> int:
        return sum(self.overhead.values())

    @property
    def margin(self) -> int | None:
        return None if self.budget is None else self.budget - self.total


def evaluate(shape: ModelShape, spec: ServingSpec, target: Target | None) -> Figures:
    """The figures and verdict of ``spec`` on ``target`` (None: figures only)."""
    weights = estimate_weights(shape, spec.weights_format)
    cache = kv_cache(shape.layout, spec)
    per_token = cache.per_token
    kv_required = cache.bytes
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
        # per worker: VLLM_CPU_KVCACHE_SPACE, else the worker's reservation (utilization x
        # the memory it sees) less what the worker itself holds (weights and runtime)
        workers = max(spec.tensor_parallel_size, 1)
        kv_space = spec.cpu_kv_cache_bytes
        if kv_space is None and target is not None:
            seen = target.host_memory_bytes or target.total_bytes
            utilization = spec.gpu_memory_utilization or c.VLLM_CPU_KV_DEFAULT_FRACTION
            kv_space = max(int(seen * utilization) - fixed // workers, 0)
        if kv_space is not None:
            kv_counted = kv_space * workers
            capacity = kv_capacity_tokens(shape.layout, spec, kv_space)
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
            capacity = kv_capacity_tokens(shape.layout, spec, budget - fixed)
            fits = total <= budget
            starts = capacity >= spec.context_per_sequence
    else:
        total = fixed + kv_counted
        capacity = spec.kv_tokens
        fits = None if budget is None else total <= budget
        starts = fits
    return Figures(
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
        kv_by_kind=dict(cache.by_kind),
    )
