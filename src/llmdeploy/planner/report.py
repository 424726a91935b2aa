"""The planner's typed results: a ``FitReport`` with its figures, verdict and suggestions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from llmdeploy.planner.spec import ServingSpec
from llmdeploy.planner.target import Target

SuggestionKind = Literal[
    "context",
    "sequences",
    "kv_cache_dtype",
    "quantization",
    "tensor_parallel",
    "cpu_kv_cache_space",
]


@dataclass(frozen=True)
class Suggestion:
    """One change that makes the deployment fit, re-planned with the change applied."""

    kind: SuggestionKind
    summary: str  # for people: "max_model_len 3072 (was 8192)"
    changes: Mapping[str, object]  # profile field path -> value ({} when no single field)
    cli_flags: tuple[str, ...]  # the same change as `llmdeploy plan` flags
    total_bytes: int  # the re-planned total
    margin_bytes: int  # the re-planned margin (>= 0)
    spec: ServingSpec = field(repr=False, compare=False)  # the changed spec, to re-plan
    target: Target = field(repr=False, compare=False)  # the target it was planned against

    def profile_patch(self) -> dict[str, Any]:
        """``changes`` as a nested mapping to merge into a profile document."""
        patch: dict[str, Any] = {}
        for path, value in self.changes.items():
            node = patch
            *parents, leaf = path.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        return patch

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "summary": self.summary,
            "changes": dict(self.changes),
            "cli_flags": list(self.cli_flags),
            "total_bytes": self.total_bytes,
            "margin_bytes": self.margin_bytes,
        }


@dataclass(frozen=True)
class FitReport:
    """Whether a model, served as ``spec``, fits its memory target, and by how much."""

    backend: str
    device: str
    weights_bytes: int  # weights in the target's memory
    weights_source: str  # how the weights figure was obtained
    weights_format: str | None
    kv_bytes_per_token: int
    kv_cache_tokens: int  # tokens the workload keeps at once: context x sequences
    kv_cache_required_bytes: int  # the workload's cache, per layer by the server's rules
    kv_cache_bytes: int  # counted in the total (vLLM on the CPU: the space it allocates)
    overhead_bytes: int
    overhead_detail: Mapping[str, int]  # runtime, cuda_graphs, activations
    total_bytes: int
    available_bytes: int | None  # the target: GPU memory x GPUs, or the container's/host's RAM
    budget_bytes: int | None  # what the backend lets itself use (vLLM: x gpu_memory_utilization)
    margin_bytes: int | None  # budget - total
    fits: bool | None  # the worst case fits; None when the target is unknown
    starts: bool | None  # the server can start: one full-context sequence fits (vLLM: less
    #                      than ``fits`` demands; llama.cpp and Ollama allocate it all up front)
    context_tokens: int  # per sequence
    sequences: int
    kv_capacity_tokens: int | None  # tokens the KV cache the backend allocates holds
    max_concurrency: float | None  # kv_capacity_tokens / context_tokens (vLLM's figure)
    target: str  # the target, in words
    suggestions: tuple[Suggestion, ...] = ()
    notes: tuple[str, ...] = ()
    kv_layout: str = ""  # the model's cache per layer, in words (core.attention summary)
    kv_by_kind: Mapping[str, int] = field(default_factory=dict)  # required bytes per layer kind
    kv_uniform: bool = True  # every layer full attention alike: bytes = per token x tokens

    def to_json(self) -> dict[str, Any]:
        return {
            "fits": self.fits,
            "starts": self.starts,
            "backend": self.backend,
            "device": self.device,
            "target": self.target,
            "weights_bytes": self.weights_bytes,
            "weights_source": self.weights_source,
            "weights_format": self.weights_format,
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "kv_cache_tokens": self.kv_cache_tokens,
            "kv_cache_required_bytes": self.kv_cache_required_bytes,
            "kv_cache_bytes": self.kv_cache_bytes,
            "kv_layout": self.kv_layout,
            "kv_cache_by_layer_kind_bytes": dict(self.kv_by_kind),
            "overhead_bytes": self.overhead_bytes,
            "overhead_detail": dict(self.overhead_detail),
            "total_bytes": self.total_bytes,
            "available_bytes": self.available_bytes,
            "budget_bytes": self.budget_bytes,
            "margin_bytes": self.margin_bytes,
            "context_tokens": self.context_tokens,
            "sequences": self.sequences,
            "kv_capacity_tokens": self.kv_capacity_tokens,
            "max_concurrency": self.max_concurrency,
            "suggestions": [s.to_json() for s in self.suggestions],
            "notes": list(self.notes),
        }
