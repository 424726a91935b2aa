"""Before buying a GPU: for a model on GPUs of one size, the largest context and concurrency
that fit with each KV cache type, and how many GPUs it takes.

``size_model(info, backend, per_gpu_bytes, ...)`` answers, for every KV cache type the backend
offers (vLLM: ``auto`` = the model's dtype, ``fp8``; llama.cpp and Ollama: ``f16``, ``q8_0``,
``q4_0``) and for 1 and N GPUs:

- ``max_context``: the largest context one sequence can have (vLLM's ``max_model_len``,
  llama.cpp's ``ctx_size`` with one slot), up to the model's own context length;
- ``max_sequences``: the most sequences that fit at once at the model's full context (or the
  given one): vLLM's ``max_num_seqs``, llama.cpp's ``parallel`` with ``ctx_size`` = that many
  contexts;
- ``gpus_needed``: the fewest GPUs (1, 2, 4, 8) that hold one sequence at that context.

Every answer is found by planning candidate specs with the planner's own ``evaluate`` (the
model's per-layer layout, each server's KV rules, the overhead allowances) and searching for
the largest that fits, so it is exactly as right as ``llmdeploy plan``. "Fits" is the plan's
verdict (``fits``, and for vLLM also ``starts``: its KV cache holds one ``max_model_len``).

Contexts are whole multiples of what the server allocates in: vLLM's block (16 tokens on
CUDA, ``constants.VLLM_BLOCK_TOKENS``), and 256 tokens for llama.cpp, which pads ``n_ctx``
to a multiple of 256 (``cparams.n_ctx = GGML_PAD(cparams.n_ctx, 256)`` in
``src/llama-context.cpp``; Ollama runs llama.cpp). So ``max_context + step`` does not fit.

More GPUs: vLLM shards the model over ``tensor_parallel_size`` GPUs (which must divide the
attention heads, as vLLM requires); llama.cpp and Ollama split the layers across GPUs
(``--split-mode layer``), planned here as the GPUs' memory pooled: an approximation that
leaves out each further GPU's own CUDA context and compute buffers (a note says so).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from llmdeploy.core.model_info import ModelInfo
from llmdeploy.core.sizes import format_gib
from llmdeploy.errors import LlmdeployError, UsageError
from llmdeploy.planner import constants as c
from llmdeploy.planner.figures import evaluate
from llmdeploy.planner.kv_llamacpp import CELL_PAD
from llmdeploy.planner.shape import ModelShape, shape_of
from llmdeploy.planner.spec import BackendKind, ServingSpec
from llmdeploy.planner.target import Target, gpu_target
from llmdeploy.planner.whatif import hypothetical_spec, known_weights_format

# the KV cache types each backend offers, as its own flag spells them
KV_CACHE_DTYPES: dict[BackendKind, tuple[str, ...]] = {
    "vllm": ("auto", "fp8"),  # --kv-cache-dtype
    "llamacpp": ("f16", "q8_0", "q4_0"),  # --cache-type-k / --cache-type-v
    "ollama": ("f16", "q8_0", "q4_0"),  # OLLAMA_KV_CACHE_TYPE
}
_NAMES = {"llamacpp": "llama.cpp", "ollama": "Ollama", "vllm": "vLLM"}
GPU_COUNTS = (1, 2, 4, 8)  # the GPU counts searched for gpus_needed
SEARCH_LIMIT_TOKENS = 1 << 24  # when the model states no context length
SEARCH_LIMIT_SEQUENCES = 1 << 20


@dataclass(frozen=True)
class GpuCountAnswer:
    """What fits on ``gpus`` GPUs with one KV cache type (None: not even the smallest)."""

    gpus: int
    weights_bytes: int
    budget_bytes: int  # what the server may use over all GPUs (vLLM: x utilization)
    max_context: int | None  # one sequence
    max_context_is_full: bool  # max_context is the model's whole context length
    max_sequences: int  # at the sizing's context; 0: not even one
    valid: bool = True  # False: vLLM cannot shard over this many GPUs
    why_not: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "gpus": self.gpus,
            "valid": self.valid,
            "why_not": self.why_not or None,
            "weights_bytes": self.weights_bytes,
            "budget_bytes": self.budget_bytes,
            "max_context": self.max_context,
            "max_context_is_full": self.max_context_is_full,
            "max_sequences": self.max_sequences,
        }


@dataclass(frozen=True)
class KvAnswer:
    """The answers for one KV cache type."""

    kv_cache_dtype: str  # as the backend's flag spells it: auto, fp8, f16, q8_0, q4_0
    kv_format: str  # canonical: BF16, FP8, Q8_0, ...
    kv_bytes_per_token: int  # one sequence, all layers (over all GPUs)
    by_gpus: tuple[GpuCountAnswer, ...]
    gpus_needed: int | None  # fewest GPUs for one sequence at the context; None: > 8

    def to_json(self) -> dict[str, Any]:
        return {
            "kv_cache_dtype": self.kv_cache_dtype,
            "kv_format": self.kv_format,
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "gpus_needed": self.gpus_needed,
            "by_gpus": [answer.to_json() for answer in self.by_gpus],
        }


@dataclass(frozen=True)
class Sizing:
    """Every answer for one model, backend and GPU size."""

    backend: BackendKind
    per_gpu_bytes: int
    gpus: tuple[int, ...]  # the GPU counts answered: 1 and N
    context: int  # tokens per sequence that max_sequences and gpus_needed are for
    context_source: str  # "the model's context length" or "--context"
    model_context: int | None
    context_step: int
    answers: tuple[KvAnswer, ...]
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "per_gpu_bytes": self.per_gpu_bytes,
            "gpus": list(self.gpus),
            "context": self.context,
            "context_source": self.context_source,
            "model_context": self.model_context,
            "context_step": self.context_step,
            "answers": [answer.to_json() for answer in self.answers],
            "notes": list(self.notes),
        }


def size_model(
    info: ModelInfo,
    backend: BackendKind,
    per_gpu_bytes: int,
    *,
    gpus: int = 2,
    context: int | None = None,
    kv_cache_dtypes: tuple[str, ...] | None = None,
    weights_format: str | None = None,
) -> Sizing:
    """Answer the questions (module docstring) for ``info`` served by ``backend`` on GPUs of
    ``per_gpu_bytes`` each, comparing one GPU with ``gpus``. ``context``: tokens per sequence
    for ``max_sequences`` (default: the model's context length). ``kv_cache_dtypes``: the
    types to answer for (default: all the backend offers). ``weights_format``: the weights
    held in another format (``--quant``). Raises ModelError when the model cannot be sized,
    UsageError for a bad option value."""
    if per_gpu_bytes <= 0 or gpus < 1:
        raise UsageError("--gpu-memory and --gpus must be positive")
    shape = shape_of(info)
    model_context = info.context_length
    if context is None and model_context is None:
        raise UsageError(
            "the model states no context length: pass --context (tokens per sequence)",
            hint="e.g. --context 8192",
        )
    wanted = context or model_context or 0
    step = c.VLLM_BLOCK_TOKENS["gpu"] if backend == "vllm" else CELL_PAD
    counts = (1, gpus) if gpus > 1 else (1,)
    search = _Search(info, shape, backend, per_gpu_bytes, step, model_context, weights_format)
    answers = []
    for dtype in kv_cache_dtypes or KV_CACHE_DTYPES[backend]:
        answers.append(search.answer(dtype, counts, wanted))
    notes = list(search.notes)
    if backend != "vllm" and gpus > 1:
        notes.append(
            f"{gpus} GPUs with {_NAMES[backend]}: layers split across them (--split-mode layer), "
            "planned as their memory pooled; each further GPU also holds a CUDA context and "
            "compute buffers this leaves out"
        )
    if backend in ("llamacpp", "ollama") and any(a.kv_format != "FP16" for a in answers):
        notes.append(
            "a quantized KV cache (q8_0, q4_0) needs flash attention: llama.cpp "
            "--flash-attn on, Ollama OLLAMA_FLASH_ATTENTION=1"
        )
    return Sizing(
        backend=backend,
        per_gpu_bytes=per_gpu_bytes,
        gpus=counts,
        context=wanted,
        context_source="--context" if context is not None else "the model's context length",
        model_context=model_context,
        context_step=step,
        answers=tuple(answers),
        notes=tuple(dict.fromkeys(notes)),
    )


@dataclass
class _Search:
    info: ModelInfo
    shape: ModelShape
    backend: BackendKind
    per_gpu: int
    step: int
    model_context: int | None
    weights_format: str | None
    notes: list[str] = field(default_factory=list)

    def spec(self, kv: str, context: int, sequences: int, gpus: int) -> ServingSpec:
        spec = hypothetical_spec(
            self.info,
            backend=self.backend,
            device="gpu",
            context=context,
            sequences=sequences,
            kv_cache_dtype=None if kv == "auto" else kv,
            tensor_parallel_size=gpus if self.backend == "vllm" else 1,
        )
        if self.weights_format is not None:
            spec = replace(spec, weights_format=known_weights_format(self.weights_format))
        return spec

    def target(self, spec: ServingSpec, gpus: int) -> Target:
        if spec.shards_across_gpus:
            return gpu_target(spec, self.per_gpu)
        label = f"{gpus} x {format_gib(self.per_gpu)} GPU" + (" (layers split)" if gpus > 1 else "")
        return Target("gpu", self.per_gpu, gpus, description=label)

    def fits(self, kv: str, context: int, sequences: int, gpus: int) -> bool:
        spec = self.spec(kv, context, sequences, gpus)
        try:
            figures = evaluate(self.shape, spec, self.target(spec, gpus))
        except LlmdeployError:
            return False
        return figures.fits is True and figures.starts is not False

    def answer(self, kv: str, counts: tuple[int, ...], context: int) -> KvAnswer:
        one = self.spec(kv, self.step, 1, 1)
        per_token = evaluate(self.shape, one, None).per_token
        by_gpus = tuple(self.for_gpus(kv, gpus, context) for gpus in counts)
        needed = next(
            (
                gpus
                for gpus in sorted({*GPU_COUNTS, *counts})
                if self.shardable(gpus) is None and self.fits(kv, context, 1, gpus)
            ),
            None,
        )
        return KvAnswer(kv, one.kv_k_format, per_token, by_gpus, needed)

    def shardable(self, gpus: int) -> str | None:
        """Why vLLM cannot use ``gpus`` GPUs for this model (None: it can)."""
        heads = self.shape.attention_heads
        if self.backend == "vllm" and gpus > 1 and heads and heads % gpus:
            return f"vLLM's tensor_parallel_size must divide the {heads} attention heads"
        return None

    def for_gpus(self, kv: str, gpus: int, context: int) -> GpuCountAnswer:
        spec = self.spec(kv, self.step, 1, gpus)
        figures = evaluate(self.shape, spec, self.target(spec, gpus))
        budget = figures.budget or 0
        why = self.shardable(gpus)
        if why is not None:
            return GpuCountAnswer(gpus, figures.weights_bytes, budget, None, False, 0, False, why)
        cap = self.model_context
        max_context: int | None
        if cap is not None and self.fits(kv, cap, 1, gpus):
            max_context, full = cap, True
        else:
            limit = (cap - 1) // self.step if cap is not None else SEARCH_LIMIT_TOKENS // self.step
            blocks = _largest(limit, lambda k: self.fits(kv, k * self.step, 1, gpus))
            max_context, full = (blocks * self.step if blocks else None), False
        sequences = _largest(SEARCH_LIMIT_SEQUENCES, lambda s: self.fits(kv, context, s, gpus))
        return GpuCountAnswer(gpus, figures.weights_bytes, budget, max_context, full, sequences)


def _largest(limit: int, ok: Callable[[int], bool]) -> int:
    """The largest n in [1, limit] with ok(n), for ok true up to some n and false after;
    0 when ok(1) is false. Doubles, then bisects: O(log n) evaluations."""
    if limit < 1 or not ok(1):
        return 0
    low, high = 1, 2
    while high <= limit and ok(high):
        low, high = high, high * 2
    high = min(high, limit + 1)  # ok(high) is false, or high is past the limit
    while high - low > 1:
        mid = (low + high) // 2
        if ok(mid):
            low = mid
        else:
            high = mid
    return low


def kv_cache_dtypes(backend: BackendKind, given: str | None) -> tuple[str, ...]:
    """The KV cache types to answer for: ``given`` (``--kv-cache-dtype``) when the backend
    offers it, else all it offers. UsageError naming the offered ones."""
    offered = KV_CACHE_DTYPES[backend]
    if given is None:
        return offered
    value = given.strip().lower()
    if value not in offered:
        raise UsageError(
            f"--kv-cache-dtype {given!r}: {backend} offers {', '.join(offered)}",
            hint="leave it out to compare them all",
        )
    return (value,)
