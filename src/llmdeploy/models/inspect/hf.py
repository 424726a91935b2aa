"""Read a Hugging Face model's shape: ``config.json`` and the JSON headers of its
``.safetensors`` files (no torch, no weights loaded).

Parameter counts come from tensor shapes as stored. Formats that pack several values in one
stored element (GPTQ/AWQ int32 words, MXFP4 blocks) are undercounted unless the folder's
``model.safetensors.index.json`` states ``total_parameters``; their file sizes are exact.
"""

from __future__ import annotations

import json
import math
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from llmdeploy.core.model_info import ModelInfo
from llmdeploy.core.sizes import MIB
from llmdeploy.errors import ModelError
from llmdeploy.models.inspect.config_layout import layout_from_config
from llmdeploy.models.inspect.values import as_int, dominant_type

_SAFETENSORS_HEADER_MAX = 100 * MIB
_DTYPE_NAMES = {"bfloat16": "BF16", "float16": "F16", "float32": "F32", "half": "F16"}
# config.json keys, first found wins (GPT-2 style configs use the short names).
_LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
_HEAD_KEYS = ("num_attention_heads", "n_head", "num_heads")
_KV_KEYS = ("num_key_value_heads", "n_head_kv", "num_kv_heads")
_HIDDEN_KEYS = ("hidden_size", "n_embd", "d_model")
_CONTEXT_KEYS = (
    "max_position_embeddings",
    "n_positions",
    "max_seq_len",
    "seq_length",
    "max_sequence_length",
)


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{path} does not hold a JSON object")
    return data


def safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a .safetensors file (8-byte little-endian length, then JSON)."""
    try:
        with path.open("rb") as handle:

            def read(start: int, length: int) -> bytes:
                handle.seek(start)
                return handle.read(length)

            return header_from_reader(read, str(path))
    except OSError as exc:
        raise ModelError(f"{path} is not a readable safetensors file: {exc}") from exc


def header_from_reader(read: Callable[[int, int], bytes], label: str) -> dict[str, Any]:
    """A safetensors header read through ``read(start, length)`` (a local file, or HTTP Range
    requests): the 8-byte little-endian length N, then N bytes of JSON (the format's
    specification, huggingface/safetensors README). ModelError naming ``label`` for a file
    too short, an implausible length or a header that is not a JSON object."""
    prefix = read(0, 8)
    if len(prefix) != 8:
        raise ModelError(f"{label} is too short to be a safetensors file")
    (length,) = struct.unpack("<Q", prefix)
    if length > _SAFETENSORS_HEADER_MAX:
        raise ModelError(f"{label}: implausible safetensors header length {length}")
    raw = read(8, length)
    if len(raw) != length:
        raise ModelError(
            f"{label} is truncated: its safetensors header has {length} bytes, "
            f"the file ends after {len(raw)}"
        )
    try:
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{label} is not a readable safetensors file: {exc}") from exc
    if not isinstance(header, dict):
        raise ModelError(f"{label}: the safetensors header is not a JSON object")
    return header


def _first(config: Mapping[str, Any], keys: tuple[str, ...]) -> int | None:
    for name in keys:
        value = as_int(config.get(name))
        if value is not None:
            return value
    return None


def _hf_quantization(config: Mapping[str, Any], dtype: str | None, counts: Counter[str]) -> str:
    qc = config.get("quantization_config")
    if isinstance(qc, Mapping):
        method = str(qc.get("quant_method", "")).lower()
        bits = as_int(qc.get("bits") or qc.get("w_bit"))
        if method == "mxfp4":
            return "MXFP4"
        if method == "fp8":
            return "FP8"
        if method in ("gptq", "awq", "autoround", "auto-round") and bits:
            return f"{method.upper().replace('-', '')}-INT{bits}"
        if method == "bitsandbytes":
            if qc.get("load_in_4bit"):
                return f"BNB-{str(qc.get('bnb_4bit_quant_type', 'nf4')).upper()}"
            return "BNB-INT8"
        if method == "compressed-tensors":
            for group in (qc.get("config_groups") or {}).values():
                weights = group.get("weights") if isinstance(group, Mapping) else None
                if isinstance(weights, Mapping) and weights.get("num_bits"):
                    kind = "FP" if weights.get("type") == "float" else "INT"
                    return f"{kind}{weights['num_bits']}"
        if method:
            return method.upper()
    if dtype and dtype in _DTYPE_NAMES:
        return _DTYPE_NAMES[dtype]
    return dominant_type(counts) or "unknown"


def inspect_safetensors(
    directory: Path,
    weights: Mapping[str, Path],
    *,
    config: dict[str, Any] | None,
    all_files: Mapping[str, Path] | None = None,
) -> ModelInfo:
    stated: int | None = None
    index = (all_files or {}).get("model.safetensors.index.json")
    if index is not None:
        stated = stated_parameters(read_json(index))
    files = all_files if all_files is not None else weights
    has_template: bool | None = None
    if all_files is not None:
        tokenizer_config = all_files.get("tokenizer_config.json")
        has_template = "chat_template.jinja" in all_files or (
            tokenizer_config is not None and bool(read_json(tokenizer_config).get("chat_template"))
        )
    return info_from_headers(
        directory.name,
        [safetensors_header(path) for path in weights.values()],
        config=config,
        file_sizes={name: p.stat().st_size for name, p in files.items()},
        stated_parameters=stated,
        has_chat_template=has_template,
    )


def stated_parameters(index: Mapping[str, Any]) -> int | None:
    """``metadata.total_parameters`` of a ``model.safetensors.index.json``, when stated."""
    metadata = index.get("metadata")
    stated = metadata.get("total_parameters") if isinstance(metadata, Mapping) else None
    return stated if isinstance(stated, int) and stated > 0 else None


def info_from_headers(
    name: str,
    headers: Iterable[Mapping[str, Any]],
    *,
    config: dict[str, Any] | None,
    file_sizes: dict[str, int],
    stated_parameters: int | None = None,
    has_chat_template: bool | None = None,
    weights_present: bool | None = None,
) -> ModelInfo:
    """A Hugging Face model's ``ModelInfo`` from its config.json and the safetensors headers
    of its weight files, however they were read (local files, or HTTP Range requests:
    ``models.inspect.remote``). ``stated_parameters`` (the index's ``total_parameters``) wins
    over the count. ``weights_present`` (default: any header given): whether the model has
    weight files, without which the quantization is left unknown (``.bin`` weights have no
    header to read, but config.json still names their dtype)."""
    counts: Counter[str] = Counter()
    weights = bool(weights_present)
    for header in headers:
        weights = weights_present is not False
        for tensor_name, tensor in header.items():
            if tensor_name == "__metadata__" or not isinstance(tensor, Mapping):
                continue
            shape = tensor.get("shape") or []
            counts[str(tensor.get("dtype", "?"))] += math.prod(int(d) for d in shape)
    parameters = stated_parameters or sum(counts.values()) or None
    config = config or {}
    # multimodal configs keep the language model's numbers in text_config
    text = config.get("text_config")
    numbers: Mapping[str, Any] = (
        text if isinstance(text, Mapping) and _first(config, _LAYER_KEYS) is None else config
    )
    layers = _first(numbers, _LAYER_KEYS)
    heads = _first(numbers, _HEAD_KEYS)
    kv_heads = _first(numbers, _KV_KEYS)
    if kv_heads is None and numbers.get("multi_query"):
        kv_heads = 1
    kv_heads = kv_heads or heads
    hidden = _first(numbers, _HIDDEN_KEYS)
    head_dim = as_int(numbers.get("head_dim"))
    if head_dim is None and hidden and heads:
        head_dim = hidden // heads
    dtype = numbers.get("torch_dtype") or numbers.get("dtype") or config.get("torch_dtype")
    dtype = str(dtype) if dtype else None
    architectures = config.get("architectures")
    architecture = (
        str(architectures[0])
        if isinstance(architectures, list) and architectures
        else (str(config["model_type"]) if config.get("model_type") else None)
    )
    return ModelInfo(
        format="safetensors",
        architecture=architecture,
        parameters=parameters,
        layers=layers,
        attention_heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        hidden_size=hidden,
        context_length=_first(numbers, _CONTEXT_KEYS),
        vocab_size=_first(numbers, ("vocab_size",)) or _first(config, ("vocab_size",)),
        quantization=_hf_quantization({**numbers, **config}, dtype, counts) if weights else None,
        torch_dtype=dtype,
        file_sizes=dict(file_sizes),
        name=name,
        tensor_types=dict(counts.most_common()),
        has_chat_template=has_chat_template,
        attention=layout_from_config(numbers),
    )
