"""Changes that make a deployment fit, each re-planned with the change applied.

Searched in this order (``docs/planner.md`` has the table): the largest context, the largest
concurrency, an 8-bit KV cache, a smaller weight format, more GPUs (vLLM), and for vLLM on the
CPU the smallest ``VLLM_CPU_KVCACHE_SPACE`` that holds the workload.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from llmdeploy.core.sizes import format_gib
from llmdeploy.errors import LlmdeployError
from llmdeploy.planner import constants as c
from llmdeploy.planner import quant
from llmdeploy.planner.figures import evaluate
from llmdeploy.planner.kv_cache import kv_cache, kv_capacity_tokens
from llmdeploy.planner.report import Suggestion, SuggestionKind
from llmdeploy.planner.shape import ModelShape, estimate_weights
from llmdeploy.planner.spec import ServingSpec
from llmdeploy.planner.target import Target, gpu_target

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
# vLLM's tensor_parallel_size values tried, fewest GPUs first
_TENSOR_PARALLEL_SIZES = (2, 4, 8)


def suggestions(
    shape: ModelShape, spec: ServingSpec, target: Target, notes: list[str]
) -> list[Suggestion]:
    """The changes that make ``spec`` fit ``target``; appends to ``notes`` what fell short."""
    return list(_Search(shape, spec, target, notes).run())


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


@dataclass
class _Search:
    shape: ModelShape
    spec: ServingSpec  # the spec that does not fit
    target: Target
    notes: list[str]

    def run(self) -> Iterator[Suggestion]:
        for search in (
            self._context,
            self._sequences,
            self._kv_cache_dtype,
            self._quantization,
            self._tensor_parallel,
            self._cpu_kv_space,
        ):
            found = search()
            if found is not None:
                yield found

    def _fits(self, spec: ServingSpec, target: Target | None = None) -> bool:
        try:
            return evaluate(self.shape, spec, target or self.target).fits is True
        except LlmdeployError:
            return False

    def _priced(
        self,
        kind: SuggestionKind,
        summary: str,
        changes: dict[str, object],
        flags: tuple[str, ...],
        spec: ServingSpec,
        target: Target | None = None,
    ) -> Suggestion:
        """The suggestion with its re-planned total and margin."""
        target = target or self.target
        figures = evaluate(self.shape, spec, target)
        return Suggestion(
            kind, summary, changes, flags, figures.total, figures.margin or 0, spec, target
        )

    def _context(self) -> Suggestion | None:
        """The largest context that fits at the current concurrency."""
        spec = self.spec
        low = spec.sequences if spec.shared_context else 1
        best = _largest(
            low, spec.context_tokens - 1, lambda v: self._fits(replace(spec, context_tokens=v))
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
        flags = ("--context", str(changed.context_per_sequence))
        return self._priced("context", summary, {name: best}, flags, changed)

    def _sequences(self) -> Suggestion | None:
        """The largest concurrency that fits at the current context per sequence."""
        spec = self.spec
        per_seq = spec.context_per_sequence

        def at(p: int) -> ServingSpec:
            if spec.shared_context:
                return replace(spec, sequences=p, context_tokens=p * per_seq)
            return replace(spec, sequences=p)

        best = _largest(1, spec.sequences - 1, lambda p: self._fits(at(p)))
        if best is None:
            return None
        changed = at(best)
        name = _SEQUENCES_FIELD[spec.backend]
        changes: dict[str, object] = {name: best}
        summary = f"{name.split('.')[-1]} {best} (was {spec.sequences})"
        if spec.shared_context:
            changes[_CONTEXT_FIELD[spec.backend]] = changed.context_tokens
            summary += f" with ctx_size {changed.context_tokens} ({per_seq} tokens per slot)"
        return self._priced("sequences", summary, changes, ("--seqs", str(best)), changed)

    def _kv_cache_dtype(self) -> Suggestion | None:
        """Whether an 8-bit KV cache (fp8 on vLLM, q8_0 on llama.cpp and Ollama) makes it fit."""
        spec = self.spec
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
        figures = evaluate(self.shape, changed, self.target)
        if not figures.fits:
            over = -(figures.margin or 0)
            self.notes.append(f"{words} alone would not fit: still {format_gib(over)} over")
            return None
        flags = ("--kv-cache-dtype", kind.lower())
        return self._priced("kv_cache_dtype", words, changes, flags, changed)

    def _quantization(self) -> Suggestion | None:
        """The highest-quality smaller weight format that fits."""
        spec = self.spec
        current = estimate_weights(self.shape, spec.weights_format).bits_per_weight
        if current is None:
            return None
        for candidate in _quant_ladder(spec):
            bits = quant.bits_per_weight(candidate)
            if bits is None or bits >= current - 0.01:
                continue
            changed = replace(spec, weights_format=candidate)
            if not self._fits(changed):
                continue
            weights = format_gib(estimate_weights(self.shape, candidate).bytes)
            changes: dict[str, object] = {}
            if spec.backend != "vllm":
                summary = f"a {candidate} GGUF of this model in model.ref (weights {weights})"
            elif candidate == "FP8":
                changes = {"backend.quantization": "fp8"}
                summary = f"quantization fp8 (weights {weights})"
            else:
                changes = {"backend.quantization": candidate.lower()}
                summary = (
                    f"a 4-bit AWQ/GPTQ checkpoint in model.ref, quantization "
                    f"{candidate.lower()} (weights {weights})"
                )
            return self._priced("quantization", summary, changes, ("--quant", candidate), changed)
        return None

    def _tensor_parallel(self) -> Suggestion | None:
        """vLLM on GPUs: the fewest GPUs of this size that fit (attention heads must divide)."""
        spec, heads = self.spec, self.shape.attention_heads
        if not spec.shards_across_gpus:
            return None
        per_gpu = self.target.memory_bytes
        for tp in _TENSOR_PARALLEL_SIZES:
            if tp <= spec.tensor_parallel_size or (heads and heads % tp):
                continue
            changed = replace(spec, tensor_parallel_size=tp)
            more = gpu_target(changed, per_gpu)
            if self._fits(changed, more):
                summary = f"tensor_parallel_size {tp}: {tp} GPUs of {format_gib(per_gpu)}"
                # one replica needs as many GPUs as tensor parallelism shards over
                changes: dict[str, object] = {"backend.tensor_parallel_size": tp, "gpus": tp}
                flags = ("--tensor-parallel", str(tp))
                return self._priced("tensor_parallel", summary, changes, flags, changed, more)
        return None

    def _cpu_kv_space(self) -> Suggestion | None:
        """vLLM on the CPU: the smallest VLLM_CPU_KVCACHE_SPACE (whole GiB) that holds the
        workload."""
        spec = self.spec
        if spec.backend != "vllm" or spec.device != "cpu":
            return None
        layout = self.shape.layout
        gib = max(1, math.ceil(kv_cache(layout, spec).bytes / c.GiB))
        while kv_capacity_tokens(layout, spec, gib * c.GiB) < spec.kv_tokens:
            gib += 1
        if spec.cpu_kv_cache_bytes == gib * c.GiB:
            return None
        changed = replace(spec, cpu_kv_cache_bytes=gib * c.GiB)
        if not self._fits(changed):
            return None
        summary = f"cpu_kvcache_space_gib {gib} (VLLM_CPU_KVCACHE_SPACE={gib})"
        changes: dict[str, object] = {"backend.cpu_kvcache_space_gib": gib}
        flags = ("--cpu-kv-space", str(gib))
        return self._priced("cpu_kv_cache_space", summary, changes, flags, changed)


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


def _quant_ladder(spec: ServingSpec) -> tuple[str, ...]:
    if spec.backend in ("llamacpp", "ollama"):
        return quant.GGUF_LADDER
    if spec.device == "gpu":
        return ("FP8", "AWQ")
    return ()
