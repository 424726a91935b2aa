"""What is served and how: a backend-neutral ``ServingSpec`` read from a profile.

``spec_from_profile`` reads the knobs each backend has for context, concurrency and cache
types, with the semantics of that backend:

- llama.cpp: ``ctx_size`` is the *total* KV cache, shared by the ``parallel`` slots (llama-server
  gives each slot ``n_ctx / n_parallel`` tokens: ``n_ctx_slot = n_ctx / params.n_parallel`` in
  its ``init()``; verified here: ``-c 2048 -np 2`` logs ``n_slots = 2, n_ctx_slot = 1024`` and a
  KV cache of 1024 cells x 2 seqs). Cache types from ``--cache-type-k/-v`` in ``extra_args``
  (default f16).
- vLLM: ``max_model_len`` per sequence x ``max_num_seqs`` is the worst case; the KV dtype is
  ``kv_cache_dtype`` or the model dtype (``auto``).
- Ollama: ``num_ctx`` per sequence x ``OLLAMA_NUM_PARALLEL`` (Ollama's FAQ: required memory
  scales by ``OLLAMA_NUM_PARALLEL * OLLAMA_CONTEXT_LENGTH``); cache type from
  ``OLLAMA_KV_CACHE_TYPE`` (f16, q8_0, q4_0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from llmdeploy.core.model_info import ModelInfo
from llmdeploy.errors import ModelError, ProfileError
from llmdeploy.planner import constants as c
from llmdeploy.planner import quant
from llmdeploy.profiles.backend_options import LlamaCppBackend, OllamaBackend, VllmBackend
from llmdeploy.profiles.schema import Profile

BackendKind = Literal["llamacpp", "vllm", "ollama"]
Device = Literal["cpu", "gpu"]


@dataclass(frozen=True)
class ServingSpec:
    """How a model is served, as far as memory goes."""

    backend: BackendKind
    device: Device
    context_tokens: int  # the backend's context knob: ctx_size, max_model_len or num_ctx
    sequences: int  # concurrent sequences: parallel, max_num_seqs or num_parallel
    shared_context: bool = False  # True when context_tokens is split across the sequences
    kv_k_format: str = "FP16"  # canonical cache types of keys and values
    kv_v_format: str = "FP16"
    weights_format: str | None = None  # held at run time; None = as the files store them
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float | None = None  # vLLM on a GPU; None = vLLM's default
    cpu_kv_cache_bytes: int | None = None  # vLLM on the CPU; None = vLLM's default
    gpu_layers: int | None = None  # layers offloaded to the GPU (llama.cpp, Ollama); None = all
    step_tokens: int = 512  # tokens in one forward step (activation size)
    cuda_graphs: bool = False  # vLLM captures CUDA graphs (no --enforce-eager)
    # llama.cpp's cache layout (planner.kv_llamacpp): one stream shared by the slots
    # (--kv-unified) or one per slot (the default with -np); full-size sliding-window caches
    # (--swa-full); flash attention (-fa; auto = on), without which V widths are padded
    kv_unified: bool = False
    swa_full: bool = False
    flash_attn: bool = True
    assumptions: tuple[str, ...] = ()  # defaults filled in, for the report

    @property
    def kv_tokens(self) -> int:
        """Tokens the KV cache must hold at once (context x sequences)."""
        if self.shared_context:
            return self.context_tokens
        return self.context_tokens * self.sequences

    @property
    def context_per_sequence(self) -> int:
        if self.shared_context:
            return self.context_tokens // max(self.sequences, 1)
        return self.context_tokens

    @property
    def shards_across_gpus(self) -> bool:
        """vLLM on GPUs splits the model over ``tensor_parallel_size`` GPUs; llama.cpp and
        Ollama (offloading layers) and vLLM on the CPU are planned against one device."""
        return self.backend == "vllm" and self.device == "gpu"

    @property
    def devices(self) -> int:
        """The devices whose memory the deployment uses: the GPUs it shards over, else 1."""
        return self.tensor_parallel_size if self.shards_across_gpus else 1


def device_of(profile: Profile) -> Device:
    return "cpu" if profile.accelerator == "cpu" else "gpu"


def spec_from_profile(profile: Profile, info: ModelInfo) -> ServingSpec:
    """The serving spec a profile describes (backend defaults filled in and listed)."""
    device = device_of(profile)
    backend = profile.backend
    if isinstance(backend, LlamaCppBackend):
        return _llamacpp(backend, device)
    if isinstance(backend, OllamaBackend):
        return _ollama(backend, device, profile.env)
    return _vllm(backend, device, profile.env, info)


def _llamacpp(backend: LlamaCppBackend, device: Device) -> ServingSpec:
    args = backend.extra_args
    k = _cache_type(args, ("-ctk", "--cache-type-k"))
    v = _cache_type(args, ("-ctv", "--cache-type-v"))
    step = _int_flag(args, ("-ub", "--ubatch-size")) or c.STEP_TOKENS_DEFAULT["llamacpp"]
    flash_attn = _flash_attn(args)
    if not flash_attn and not quant.is_float(v):
        raise ProfileError(
            f"backend.extra_args: a {v} V cache with flash attention off: llama.cpp refuses to "
            "start (\"quantized V cache requires flash_attn to be enabled\")",
            hint="drop '-fa off' (auto turns it on) or keep the V cache in f16",
        )
    return ServingSpec(
        backend="llamacpp",
        device=device,
        context_tokens=backend.ctx_size,
        sequences=backend.parallel,
        shared_context=True,
        kv_k_format=k,
        kv_v_format=v,
        gpu_layers=backend.gpu_layers if device == "gpu" else None,
        step_tokens=step,
        kv_unified=_switch(args, ("-kvu", "--kv-unified"), ("--no-kv-unified",), False),
        swa_full=_switch(args, ("--swa-full",), (), False),
        flash_attn=flash_attn,
    )


def _ollama(backend: OllamaBackend, device: Device, env: dict[str, str]) -> ServingSpec:
    assumptions = []
    sequences = backend.num_parallel
    if sequences is None:
        sequences = c.OLLAMA_NUM_PARALLEL
        assumptions.append(f"num_parallel unset: Ollama's default {sequences}")
    kv = quant.canonical(env.get("OLLAMA_KV_CACHE_TYPE")) or "FP16"
    if quant.kv_element_bytes(kv) is None:
        raise ProfileError(f"env.OLLAMA_KV_CACHE_TYPE: unknown cache type {kv!r} (f16, q8_0, q4_0)")
    num_batch = backend.parameters.get("num_batch")
    num_gpu = backend.parameters.get("num_gpu")
    return ServingSpec(
        backend="ollama",
        device=device,
        context_tokens=backend.num_ctx,
        sequences=sequences,
        kv_k_format=kv,
        kv_v_format=kv,
        gpu_layers=int(num_gpu) if num_gpu is not None and device == "gpu" else None,
        step_tokens=int(num_batch) if num_batch is not None else c.STEP_TOKENS_DEFAULT["ollama"],
        assumptions=tuple(assumptions),
    )


def _vllm(
    backend: VllmBackend, device: Device, env: dict[str, str], info: ModelInfo
) -> ServingSpec:
    assumptions: list[str] = []
    context = backend.max_model_len
    if context is None:
        if not info.context_length:
            raise ModelError(
                "backend.max_model_len is unset and the model's context length is unknown",
                hint="set backend.max_model_len in the profile (or pass --context)",
            )
        context = info.context_length
        assumptions.append(f"max_model_len unset: vLLM uses the model's context length {context}")
    sequences = backend.max_num_seqs
    if sequences is None:
        world = backend.tensor_parallel_size if device == "cpu" else 1
        sequences = c.VLLM_MAX_NUM_SEQS[device] * world
        assumptions.append(f"max_num_seqs unset: vLLM's default on the {device.upper()} "
                           f"{sequences}")
    compute = vllm_compute_dtype(backend.dtype, info)
    weights = vllm_weights_format(backend.quantization, compute, info)
    assumptions.extend(dequantized_note(info, weights))
    kv = compute
    if backend.kv_cache_dtype and backend.kv_cache_dtype.startswith("fp8"):
        if device == "cpu":
            assumptions.append("vLLM's CPU backend does not quantize the KV cache: fp8 -> auto")
        else:
            kv = "FP8"
    elif backend.kv_cache_dtype == "bfloat16":
        kv = "BF16"
    cpu_kv: int | None = None
    if device == "cpu":
        if backend.cpu_kvcache_space_gib is not None:
            cpu_kv = backend.cpu_kvcache_space_gib * c.GiB
        elif env.get("VLLM_CPU_KVCACHE_SPACE", "").strip().isdigit():
            cpu_kv = int(env["VLLM_CPU_KVCACHE_SPACE"]) * c.GiB
    step = _int_flag(backend.extra_args, ("--max-num-batched-tokens",))
    return ServingSpec(
        backend="vllm",
        device=device,
        context_tokens=context,
        sequences=sequences,
        kv_k_format=kv,
        kv_v_format=kv,
        weights_format=weights,
        tensor_parallel_size=backend.tensor_parallel_size,
        gpu_memory_utilization=backend.gpu_memory_utilization,
        cpu_kv_cache_bytes=cpu_kv,
        step_tokens=step or c.STEP_TOKENS_DEFAULT["vllm"],
        cuda_graphs=device == "gpu" and not backend.enforce_eager,
        assumptions=tuple(assumptions),
    )


def vllm_compute_dtype(dtype: str | None, info: ModelInfo) -> str:
    """The dtype vLLM computes (and by default caches KV) in.

    ``--dtype auto`` uses FP16 for FP32 and FP16 checkpoints and BF16 for BF16 ones (vLLM's
    engine arguments); a GGUF converted for vLLM's CPU backend is BF16 (the converter's default).
    """
    explicit = quant.canonical(dtype) if dtype and dtype != "auto" else None
    if explicit in quant.FLOAT_FORMATS:
        return explicit
    model = quant.canonical(info.torch_dtype) or quant.canonical(info.quantization)
    if model == "BF16":
        return "BF16"
    if model in ("FP16", "FP32"):
        return "FP16"
    return "BF16"


def vllm_weights_format(method: str | None, compute: str, info: ModelInfo) -> str | None:
    """The format vLLM holds the weights in, when it differs from the files (None = as stored)."""
    if method:
        known = quant.canonical(method)
        return known if quant.bits_per_weight(known) is not None else None
    stored = quant.canonical(info.quantization) or quant.canonical(info.torch_dtype)
    if stored is None or quant.is_float(stored) or quant.is_gguf_quant(stored):
        return compute  # unquantized (or dequantized from GGUF): held in the compute dtype
    return None  # a pre-quantized checkpoint (AWQ, GPTQ, FP8, MXFP4) is held as stored


def dequantized_note(info: ModelInfo, weights: str | None) -> tuple[str, ...]:
    stored = quant.canonical(info.quantization)
    if quant.is_gguf_quant(stored) and weights is not None:
        return (f"vLLM serves GGUF weights dequantized ({stored} -> {weights}, model.convert: hf)",)
    return ()


def _flag_value(args: Sequence[str], names: tuple[str, ...]) -> str | None:
    """The value of the last ``NAME VALUE`` or ``NAME=VALUE`` among ``args``."""
    found = None
    for index, arg in enumerate(args):
        flag, eq, value = arg.partition("=")
        if flag in names:
            if eq:
                found = value
            elif index + 1 < len(args):
                found = args[index + 1]
    return found


def _switch(
    args: Sequence[str], on: tuple[str, ...], off: tuple[str, ...], default: bool
) -> bool:
    """A value-less llama-server switch: the last of ``on`` / ``off`` among ``args`` wins."""
    value = default
    for arg in args:
        if arg in on:
            value = True
        elif arg in off:
            value = False
    return value


def _flash_attn(args: Sequence[str]) -> bool:
    """llama-server's ``-fa on|off|auto`` (a bare ``-fa`` in older releases: on); ``auto``
    (the default) turns flash attention on where the device supports it (the CPU does)."""
    names = ("-fa", "--flash-attn")
    value: str | None = "auto"
    for index, arg in enumerate(args):
        flag, eq, inline = arg.partition("=")
        if flag == "--no-flash-attn":
            value = "off"
        elif flag in names:
            following = args[index + 1] if index + 1 < len(args) else None
            if eq:
                value = inline
            elif following is not None and not following.startswith("-"):
                value = following
            else:
                value = "on"
    return (value or "auto").lower() not in ("off", "0", "false", "disabled")


def _int_flag(args: Sequence[str], names: tuple[str, ...]) -> int | None:
    value = _flag_value(args, names)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise ProfileError(f"backend.extra_args: {names[-1]} {value!r} is not a number") from exc


def _cache_type(args: Sequence[str], names: tuple[str, ...]) -> str:
    value = _flag_value(args, names)
    if value is None:
        return "FP16"  # llama.cpp's default cache type (f16)
    kind = quant.canonical(value)
    if kind is None or quant.kv_element_bytes(kind) is None:
        raise ProfileError(
            f"backend.extra_args: {names[-1]} {value!r} is not a cache type the planner knows "
            "(f32, f16, bf16, q8_0, q5_1, q5_0, q4_1, q4_0, iq4_nl)"
        )
    return kind
