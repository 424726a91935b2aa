"""The memory plan: the figures of a spec on a target, the verdict, notes and suggestions.

``figures.py`` holds the formulas; ``suggest.py`` searches the changes that make a plan fit.
"""

from __future__ import annotations

from llmdeploy.core.model_info import ModelInfo
from llmdeploy.core.sizes import format_gib
from llmdeploy.planner import constants as c
from llmdeploy.planner.figures import Figures, evaluate
from llmdeploy.planner.report import FitReport, Suggestion
from llmdeploy.planner.shape import ModelShape, shape_of
from llmdeploy.planner.spec import ServingSpec
from llmdeploy.planner.suggest import suggestions
from llmdeploy.planner.target import Target


def plan(info: ModelInfo, spec: ServingSpec, target: Target | None) -> FitReport:
    """Plan ``info`` served as ``spec`` on ``target`` (None: figures only, no verdict)."""
    shape = shape_of(info)
    figures = evaluate(shape, spec, target)
    notes = list(spec.assumptions) + figures.notes + _notes(shape, spec, target, figures)
    found: list[Suggestion] = []
    if figures.fits is False and target is not None:
        found = suggestions(shape, spec, target, notes)
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
        suggestions=tuple(found),
        notes=tuple(notes),
        kv_layout=shape.layout.summary(),
        kv_by_kind=dict(figures.kv_by_kind),
        kv_uniform=shape.layout.is_uniform_full,
    )


def _notes(
    shape: ModelShape, spec: ServingSpec, target: Target | None, figures: Figures
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
            "VLLM_CPU_KVCACHE_SPACE unset (backend.cpu_kvcache_space_gib): vLLM reserves "
            f"{c.VLLM_CPU_KV_DEFAULT_FRACTION:.0%} of the host RAM it sees (its "
            "--gpu-memory-utilization) and gives the KV cache what its worker does not hold, "
            "whatever a container's memory limit is; it refuses to start when that much RAM "
            "is not free"
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
