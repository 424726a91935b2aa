"""Which weight format a model reference names, and which backends can serve it."""

from __future__ import annotations

from llmdeploy.models.info import ModelFormat
from llmdeploy.models.refs import ModelRef, parse_ref


def format_of_ref(ref: ModelRef | str) -> ModelFormat:
    """The format the reference alone names (no I/O): validation happens before any."""
    ref = parse_ref(ref)
    if ref.scheme == "ollama":
        return "ollama"
    name = ref.filename.lower()
    if name.endswith(".gguf"):
        return "gguf"
    if name.endswith(".safetensors") or ref.names_folder:
        return "safetensors"  # a repository snapshot, or a folder holding a Hugging Face model
    return "unknown"


def compatibility_problem(backend: str, accelerator: str, fmt: ModelFormat) -> str | None:
    """Why ``backend`` cannot serve ``fmt`` (a message saying what to use instead), or None."""
    if backend == "llamacpp" and fmt in ("safetensors", "ollama"):
        what = "a Hugging Face safetensors model" if fmt == "safetensors" else "an ollama:// model"
        instead = "backend.kind: vllm" if fmt == "safetensors" else "backend.kind: ollama"
        return (
            f"llama.cpp serves GGUF files, and model.ref names {what}; use {instead}, "
            "or point model.ref at a .gguf file"
        )
    if backend == "vllm" and fmt == "gguf":
        return (
            f"vLLM on {accelerator} does not load GGUF files here; use backend.kind: llamacpp "
            "or ollama for GGUF, or a safetensors model (hf://org/repo, or a folder converted "
            "with `python -m llmdeploy.models.convert_gguf`) for vLLM"
        )
    if backend == "vllm" and fmt == "ollama":
        return "ollama:// models are served by backend.kind: ollama; use hf://org/repo for vLLM"
    if backend == "ollama" and fmt == "safetensors":
        return (
            "Ollama imports GGUF files here; use a .gguf reference or ollama://name:tag, "
            "or backend.kind: vllm for a safetensors model"
        )
    return None
