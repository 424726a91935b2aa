"""Which weight format a model reference names, and which backends can serve it."""

from __future__ import annotations

from llmdeploy.core.gguf_split import MERGE_HINT, parse_split_name
from llmdeploy.core.model_info import ModelFormat
from llmdeploy.core.model_ref import ModelRef, parse_ref

#: Top-level files of a Hugging Face repository snapshot (what the store and the Kubernetes
#: weights fetcher download for hf://org/repo): weights, config, tokenizer and chat template.
HF_SNAPSHOT_PATTERNS = (
    "*.safetensors",
    "*.safetensors.index.json",
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "*.tiktoken",
    "chat_template.jinja",
    "chat_template.json",
    "preprocessor_config.json",
)


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
            "with `llmdeploy models convert`) for vLLM"
        )
    if backend == "vllm" and fmt == "ollama":
        return "ollama:// models are served by backend.kind: ollama; use hf://org/repo for vLLM"
    if backend == "ollama" and fmt == "safetensors":
        return (
            "Ollama imports GGUF files here; use a .gguf reference or ollama://name:tag, "
            "or backend.kind: vllm for a safetensors model"
        )
    return None


def split_backend_problem(
    backend: str, ref: ModelRef | str, *, convert: str | None = None
) -> str | None:
    """Why ``backend`` cannot serve the split GGUF ``ref`` names, or None (also when ``ref``
    names no split GGUF). Only llama.cpp loads split files, from the first part.

    Ollama 0.32 imports one GGUF file per model (ollama/ollama#5245, open); vLLM's GGUF
    loader is refused above for every GGUF here, and ``model.convert: hf`` reads one GGUF
    file through transformers, which has no split support. The fix for both is
    ``llama-gguf-split --merge``.
    """
    split = parse_split_name(parse_ref(ref).filename)
    if split is None:
        return None
    if split.index != 1:
        return (
            f"model.ref names part {split.index} of {split.count} of a split GGUF model; a "
            f"split model is loaded from its first part: name {split.first} (the other parts "
            "come with it)"
        )
    merge = MERGE_HINT.format(first=split.first, merged=f"{split.prefix}.gguf")
    what = f"model.ref names a GGUF split in {split.count} parts ({split.first} ...)"
    if backend == "ollama":
        return (
            f"{what}, and Ollama imports a model from one GGUF file: it cannot import split "
            f"files (ollama/ollama#5245); {merge}, then point model.ref at the merged file; "
            "or use backend.kind: llamacpp, which loads split files as they are"
        )
    if convert == "hf":
        return (
            f"{what}, and model.convert: hf reads one GGUF file (transformers cannot load "
            f"split GGUF files); {merge}, then point model.ref at the merged file; or use "
            "backend.kind: llamacpp, which loads split files as they are"
        )
    if backend == "vllm":
        return (
            f"{what}; vLLM loads single-file GGUF models only; {merge}, or use "
            "backend.kind: llamacpp, which loads split files as they are"
        )
    return None
