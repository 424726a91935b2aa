"""Per-backend options of a profile: a discriminated union on ``backend.kind``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from llmdeploy.profiles.modelfile_syntax import (
    STRING_FORMS,
    TEXT_FORMS,
    UnquotableError,
    quote_value,
)


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def reject_managed(value: tuple[str, ...], managed: dict[str, str]) -> tuple[str, ...]:
    """Refuse extra args that repeat a flag llmdeploy renders from a profile field."""
    for arg in value:
        flag = arg.split("=", 1)[0]
        if flag in managed:
            raise ValueError(
                f"{flag} is set from the profile; use the profile field "
                f"{managed[flag]!r} instead of extra_args"
            )
    return value


# llama-server flags llmdeploy renders itself, and the profile field that sets each.
LLAMACPP_MANAGED_FLAGS = {
    "-m": "model.ref",
    "--model": "model.ref",
    "--host": "server.host",
    "--port": "server.port",
    "-c": "backend.ctx_size",
    "--ctx-size": "backend.ctx_size",
    "-np": "backend.parallel",
    "--parallel": "backend.parallel",
    "-t": "backend.threads",
    "--threads": "backend.threads",
    "-ngl": "backend.gpu_layers",
    "--n-gpu-layers": "backend.gpu_layers",
    "--gpu-layers": "backend.gpu_layers",
    "--metrics": "backend.metrics",
    "-a": "model.name",
    "--alias": "model.name",
    "--api-key": "secret_env (LLAMA_API_KEY)",
}


class LlamaCppBackend(StrictModel):
    """llama.cpp's ``llama-server``: GGUF models, CPU first, OpenAI-compatible API."""

    kind: Literal["llamacpp"]
    ctx_size: int = Field(default=4096, gt=0, description="Context size in tokens (-c)")
    parallel: int = Field(default=1, gt=0, description="Parallel decoding slots (-np)")
    threads: int | None = Field(default=None, gt=0, description="CPU threads (-t); None = auto")
    gpu_layers: int | None = Field(
        default=None, ge=0, description="Layers offloaded to the GPU (-ngl); default all on GPU"
    )
    metrics: bool = Field(default=True, description="Expose Prometheus /metrics (--metrics)")
    extra_args: tuple[str, ...] = Field(
        default=(), description="Extra llama-server flags appended verbatim"
    )

    @field_validator("extra_args")
    @classmethod
    def _no_managed_flags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return reject_managed(value, LLAMACPP_MANAGED_FLAGS)


# vLLM flags llmdeploy renders itself, and the profile field that sets each.
VLLM_MANAGED_FLAGS = {
    "--model": "model.ref",
    "--served-model-name": "model.name",
    "--host": "server.host",
    "--port": "server.port",
    "--max-model-len": "backend.max_model_len",
    "--max-num-seqs": "backend.max_num_seqs",
    "--gpu-memory-utilization": "backend.gpu_memory_utilization",
    "--tensor-parallel-size": "backend.tensor_parallel_size",
    "-tp": "backend.tensor_parallel_size",
    "--dtype": "backend.dtype",
    "--quantization": "backend.quantization",
    "-q": "backend.quantization",
    "--kv-cache-dtype": "backend.kv_cache_dtype",
    "--enforce-eager": "backend.enforce_eager",
    "--api-key": "backend.api_key_env",
}


class VllmBackend(StrictModel):
    """vLLM's OpenAI-compatible server: PagedAttention, continuous batching, multi-GPU."""

    kind: Literal["vllm"]
    max_model_len: int | None = Field(default=None, gt=0, description="--max-model-len")
    max_num_seqs: int | None = Field(default=None, gt=0, description="--max-num-seqs")
    gpu_memory_utilization: float | None = Field(
        default=None, gt=0, le=1, description="--gpu-memory-utilization (fraction of GPU memory)"
    )
    tensor_parallel_size: int = Field(default=1, gt=0, description="--tensor-parallel-size")
    dtype: Literal["auto", "bfloat16", "float16", "float32", "half", "float"] | None = None
    quantization: str | None = Field(default=None, description="--quantization, e.g. awq, fp8")
    kv_cache_dtype: Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2", "bfloat16"] | None = None
    enforce_eager: bool = Field(default=False, description="--enforce-eager (no CUDA graphs)")
    api_key_env: str | None = Field(
        default=None,
        description="Host environment variable holding the API key; passed to the container "
        "as VLLM_API_KEY by name, never rendered",
    )
    cpu_kvcache_space_gib: int | None = Field(
        default=None, gt=0, description="VLLM_CPU_KVCACHE_SPACE for accelerator: cpu"
    )
    extra_args: tuple[str, ...] = Field(default=(), description="More vLLM flags")

    @field_validator("extra_args")
    @classmethod
    def _no_managed_flags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return reject_managed(value, VLLM_MANAGED_FLAGS)


# Ollama's model parameters (api.Options in Ollama 0.32) and the JSON type of each: what a
# Modelfile PARAMETER line or /api/create's "parameters" may set. Ollama rejects other names.
OLLAMA_PARAMETER_TYPES: dict[str, type] = {
    "num_ctx": int,
    "num_batch": int,
    "num_gpu": int,
    "main_gpu": int,
    "use_mmap": bool,
    "num_thread": int,
    "draft_num_predict": int,
    "num_keep": int,
    "seed": int,
    "num_predict": int,
    "top_k": int,
    "top_p": float,
    "min_p": float,
    "typical_p": float,
    "repeat_last_n": int,
    "temperature": float,
    "repeat_penalty": float,
    "presence_penalty": float,
    "frequency_penalty": float,
    "stop": list,
}
# Parameters with a dedicated profile field.
OLLAMA_MANAGED_PARAMETERS = {
    "num_ctx": "backend.num_ctx",
    "temperature": "backend.temperature",
    "stop": "backend.stop",
}


class OllamaBackend(StrictModel):
    """Ollama: GGUF models, Modelfiles, the easy local path."""

    kind: Literal["ollama"]
    num_ctx: int = Field(
        default=4096,
        gt=0,
        description="Context length (PARAMETER num_ctx and OLLAMA_CONTEXT_LENGTH); set it: "
        "Ollama silently truncates prompts at its default otherwise",
    )
    num_parallel: int | None = Field(default=None, gt=0, description="OLLAMA_NUM_PARALLEL")
    keep_alive: str = Field(default="5m", description="OLLAMA_KEEP_ALIVE, e.g. 5m, 1h, -1")
    temperature: float | None = Field(default=None, ge=0)
    stop: tuple[str, ...] = ()
    template: str | None = Field(default=None, description="Modelfile TEMPLATE")
    system: str | None = Field(default=None, description="Modelfile SYSTEM")
    parameters: dict[str, str | int | float] = Field(
        default_factory=dict, description="More Modelfile PARAMETER lines"
    )

    @field_validator("stop")
    @classmethod
    def _stop_not_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not item for item in value):
            raise ValueError("an empty stop sequence would stop every reply at once")
        for item in value:
            _writable(item, "PARAMETER stop", STRING_FORMS)
        return value

    @field_validator("template", "system")
    @classmethod
    def _writable_text(cls, value: str | None) -> str | None:
        if value is not None:
            _writable(value, "TEMPLATE/SYSTEM", TEXT_FORMS)
        return value

    @field_validator("parameters")
    @classmethod
    def _known_parameters(cls, value: dict[str, str | int | float]) -> dict[str, str | int | float]:
        for name, item in value.items():
            if name in OLLAMA_MANAGED_PARAMETERS:
                raise ValueError(
                    f"{name} is set from the profile; use the profile field "
                    f"{OLLAMA_MANAGED_PARAMETERS[name]!r} instead of parameters"
                )
            kind = OLLAMA_PARAMETER_TYPES.get(name)
            if kind is None:
                known = ", ".join(
                    sorted(set(OLLAMA_PARAMETER_TYPES) - set(OLLAMA_MANAGED_PARAMETERS))
                )
                raise ValueError(f"unknown Ollama parameter {name!r}; known: {known}")
            if not _parameter_fits(kind, item):
                raise ValueError(f"parameter {name} must be {kind.__name__}, not {item!r}")
            if isinstance(item, str):
                _writable(item, f"PARAMETER {name}", STRING_FORMS)
        return value


def _writable(value: str, field: str, forms: tuple[str, ...]) -> None:
    """Refuse Ollama text that no Modelfile form carries (see profiles.modelfile_syntax)."""
    try:
        quote_value(value, field=field, forms=forms)
    except UnquotableError as exc:
        raise ValueError(f"{exc.reason}; {exc.hint}") from None


def _parameter_fits(kind: type, value: str | int | float) -> bool:
    """Whether Ollama would accept ``value`` for a parameter of ``kind`` (strconv rules)."""
    text = str(value).strip()
    if kind is bool:
        return isinstance(value, bool) or text in _GO_BOOLS
    if kind is int:
        try:
            int(text)
        except ValueError:
            return False
        return not isinstance(value, float)
    try:
        float(text)
    except ValueError:
        return False
    return True


# strconv.ParseBool's accepted spellings
_GO_BOOLS = {"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"}


BackendSpec = Annotated[LlamaCppBackend | VllmBackend | OllamaBackend, Field(discriminator="kind")]
