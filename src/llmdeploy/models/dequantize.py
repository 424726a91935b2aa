"""The torch side of the GGUF -> Hugging Face conversion: dequantize with transformers, write
the folder's files, and generate a few tokens from the result.

``save_pretrained`` cannot be used on the model itself: transformers refuses to serialize a
model loaded through its GGUF quantizer ("quantized with QuantizationMethod.GGUF and is not
serializable"), so the weights and config are written here directly; the tokenizer's own
``save_pretrained`` works and keeps the chat template.

torch, transformers, accelerate, safetensors and gguf are optional dependencies, imported only
when a conversion (or a verification) actually runs; a missing one is a ModelError naming
what to install. Nothing here prints: what the user should know is returned.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llmdeploy.errors import ModelError
from llmdeploy.fileops import write_json_atomic

INSTALL_HINT = (
    "install the converter's dependencies (CPU torch; pin it, a plain `torch` pulls CUDA): "
    "pip install torch==2.13.0 transformers accelerate safetensors gguf "
    "(the vLLM CPU venv already has all but accelerate and gguf)"
)
LIBRARIES = ("torch", "transformers", "safetensors", "gguf")  # recorded in the manifest

_GENERATION_DROP = frozenset(
    {"transformers_version", "output_attentions", "output_hidden_states", "use_cache"}
)
# Loader arguments that transformers 5 writes into tokenizer_config.json; they describe how
# the GGUF was opened here, not the tokenizer.
_TOKENIZER_DROP = ("is_local", "local_files_only", "gguf_file", "name_or_path")


def import_backends() -> tuple[Any, Any, Any]:
    """torch, transformers and safetensors.torch, or a ModelError saying what to install."""
    # import_module keeps these optional packages out of static analysis (no stubs needed)
    try:
        torch = importlib.import_module("torch")
        transformers = importlib.import_module("transformers")
        safetensors_torch = importlib.import_module("safetensors.torch")
        importlib.import_module("accelerate")  # transformers needs both for gguf_file=
        importlib.import_module("gguf")
    except ImportError as exc:
        raise ModelError(
            f"converting GGUF needs optional packages that are missing: {exc}",
            hint=INSTALL_HINT,
        ) from exc
    return torch, transformers, safetensors_torch


def library_versions() -> dict[str, str]:
    """The installed version of each library the conversion uses ("absent" when missing)."""
    from importlib import metadata

    versions: dict[str, str] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def clean_config(config: Mapping[str, Any], dtype: str) -> dict[str, Any]:
    """The GGUF-derived config as a plain, unquantized Hugging Face config."""
    cleaned = dict(config)
    for key in ("quantization_config", "_name_or_path", "torch_dtype", "transformers_version"):
        cleaned.pop(key, None)
    cleaned["dtype"] = dtype
    return cleaned


def _clean_tokenizer_config(path: Path, config: Mapping[str, Any]) -> None:
    if not path.is_file():
        return
    data = json.loads(path.read_text(encoding="utf-8"))
    for key in _TOKENIZER_DROP:
        data.pop(key, None)
    context = config.get("max_position_embeddings")
    if isinstance(context, int) and data.get("model_max_length", 0) > context:
        data["model_max_length"] = context
    write_json_atomic(path, data)


def map_load_error(exc: Exception, gguf_path: Path) -> ModelError:
    """A user-facing ModelError for an exception raised while transformers reads a GGUF."""
    text = str(exc)
    lowered = text.lower()
    if isinstance(exc, ImportError) or "pip install" in lowered:
        return ModelError(f"cannot load {gguf_path.name}: {text}", hint=INSTALL_HINT)
    if "not supported" in lowered or "architecture" in lowered:
        return ModelError(
            f"transformers cannot dequantize {gguf_path.name}: {text}",
            hint="transformers reads only some GGUF architectures (llama, mistral, qwen2, "
            "gemma, phi3, ...); use the original Hugging Face safetensors for vLLM instead, "
            "or serve the GGUF with llama.cpp",
        )
    if isinstance(exc, MemoryError):
        return ModelError(
            f"out of memory dequantizing {gguf_path.name}",
            hint="dequantized weights need about 2 bytes per parameter (bfloat16) plus the "
            "float32 copy made while loading",
        )
    return ModelError(
        f"cannot convert {gguf_path.name}: {type(exc).__name__}: {text}",
        hint="check that the file is a complete GGUF (gguf-dump FILE) and that transformers "
        "supports its architecture",
    )


def convert_into(tmp: Path, gguf_path: Path, dtype: str) -> dict[str, Any]:
    """Write the Hugging Face folder into ``tmp``; return the model facts for the manifest
    (architecture, layers, heads, KV heads, head_dim, context, parameters,
    has_chat_template)."""
    torch, transformers, safetensors_torch = import_backends()
    torch_dtype = getattr(torch, dtype)
    src_dir, name = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(src_dir, gguf_file=name)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            src_dir, gguf_file=name, dtype=torch_dtype
        )
    except Exception as exc:  # transformers raises ValueError/OSError/KeyError/... here
        raise map_load_error(exc, gguf_path) from exc

    config = model.config
    tied = bool(getattr(config, "tie_word_embeddings", False))
    tensors: dict[str, Any] = {}
    for key, value in model.state_dict().items():
        if tied and key == "lm_head.weight":
            continue  # shares storage with embed_tokens; HF checkpoints leave it out
        tensors[key] = value.detach().to(torch_dtype).contiguous().clone()
    safetensors_torch.save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})

    config_dict = clean_config(config.to_dict(), dtype)
    if not config_dict.get("architectures"):
        config_dict["architectures"] = [type(model).__name__]
    write_json_atomic(tmp / "config.json", config_dict)

    generation = {
        key: value
        for key, value in model.generation_config.to_dict().items()
        if value is not None and not key.startswith("_") and key not in _GENERATION_DROP
    }
    write_json_atomic(tmp / "generation_config.json", generation)

    tokenizer.save_pretrained(str(tmp))
    _clean_tokenizer_config(tmp / "tokenizer_config.json", config_dict)

    head_dim = config_dict.get("head_dim") or (
        config_dict["hidden_size"] // config_dict["num_attention_heads"]
    )
    return {
        "architecture": config_dict["architectures"][0],
        "model_type": config_dict.get("model_type"),
        "num_hidden_layers": config_dict.get("num_hidden_layers"),
        "num_attention_heads": config_dict.get("num_attention_heads"),
        "num_key_value_heads": config_dict.get(
            "num_key_value_heads", config_dict.get("num_attention_heads")
        ),
        "head_dim": head_dim,
        "max_position_embeddings": config_dict.get("max_position_embeddings"),
        "parameters": sum(int(t.numel()) for t in tensors.values()),
        "has_chat_template": bool(getattr(tokenizer, "chat_template", None)),
    }


def verify_conversion(
    out_dir: Path,
    *,
    prompt: str = "What is the capital of France?",
    max_new_tokens: int = 16,
) -> str:
    """Greedy-generate a few tokens from the converted folder with transformers on the CPU.

    Returns the generated text; raises ModelError when loading fails or nothing comes out.
    """
    torch, transformers, _ = import_backends()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(out_dir))
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(out_dir), dtype=torch.bfloat16
        )
        if getattr(tokenizer, "chat_template", None):
            encoded = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}],
                add_generation_prompt=True,
                return_tensors="pt",
                return_dict=True,
            )
            input_ids = encoded["input_ids"]
        else:
            input_ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
        with torch.inference_mode():
            output = model.generate(input_ids, max_new_tokens=max_new_tokens, do_sample=False)
        text = str(tokenizer.decode(output[0][input_ids.shape[1] :], skip_special_tokens=True))
    except Exception as exc:
        raise ModelError(
            f"the converted model in {out_dir} does not load or generate: {exc}",
            hint="convert again with --force; check the transformers version",
        ) from exc
    if not text.strip():
        raise ModelError(
            f"the converted model in {out_dir} generated no text",
            hint="convert again with --force",
        )
    return text
