"""Read a model's shape from its files: GGUF metadata, or config.json + safetensors headers.

``inspect_path(path)`` takes a ``.gguf`` file (any part of a split GGUF: the model is read
from its first part and every part found beside it, sizes and parameters summed over all), a
``.safetensors`` file, or a directory: a Hugging Face folder (``config.json``), or a folder
holding exactly one GGUF model (a store entry). Nothing heavier than the ``gguf``
package is imported; safetensors files are read only as far as their JSON header (no torch,
no weights loaded).

Parameter counts come from tensor shapes as stored. Formats that pack several values in one
stored element (GPTQ/AWQ int32 words, MXFP4 blocks in a Hugging Face folder) are undercounted
unless the folder's ``model.safetensors.index.json`` states ``total_parameters``; their file
sizes are exact.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import json
import math
import os
import struct
import tempfile
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llmdeploy.core.gguf_split import (
    SplitName,
    check_parts,
    local_parts,
    parse_split_name,
    part_names,
)
from llmdeploy.core.model_info import ModelInfo
from llmdeploy.errors import ModelError
from llmdeploy.models.sources.base import visible_files

_GGUF_MAGIC = b"GGUF"
_SAFETENSORS_HEADER_MAX = 100 * 1024 * 1024
_FIRST = SplitName("", 1, 1)  # what a plain (unsplit) GGUF name counts as
_GGUF_HINT = "gguf is a dependency of llmdeploy: reinstall llmdeploy"

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


def inspect_path(path: Path) -> ModelInfo:
    """The architecture facts of the model at ``path``; ModelError if it cannot be read."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"no such model file or directory: {path}")
    if path.is_dir():
        return _inspect_directory(path)
    if path.suffix.lower() == ".safetensors":
        return _inspect_safetensors_files(path.parent, {path.name: path}, config=None)
    if path.suffix.lower() == ".gguf" or _has_gguf_magic(path):
        return _inspect_gguf(path)
    raise ModelError(
        f"{path} is neither a GGUF file nor a Hugging Face model folder",
        hint="inspect a .gguf file, a .safetensors file or a folder holding config.json",
    )


def inspect_cached(path: Path) -> ModelInfo:
    """``inspect_path`` with the result kept in the model store's ``.cache/inspect/``, keyed
    by the path and the size and mtime of every file of the model (each part of a split).

    Reading a GGUF's metadata parses its whole vocabulary (seconds); ``up`` asks on every
    start, so an unchanged model is read once. Nothing is written beside the model: it may be
    the user's own file, or a read-only store entry.
    """
    path = Path(path)
    if not path.is_file():
        return inspect_path(path)
    try:
        key = {
            name: [st.st_size, st.st_mtime_ns]
            for name in part_names(path.name)
            for st in [path.with_name(name).stat()]
        }
    except OSError:
        return inspect_path(path)  # a part is missing: inspect says which
    cache = _cache_file(path)
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
        if data.get("key") == key and data.get("path") == str(path):
            return ModelInfo(**data["info"])
    except (OSError, ValueError, TypeError, KeyError):
        pass
    info = inspect_path(path)
    with contextlib.suppress(OSError):  # no writable store: no cache, same answer
        _write_json(cache, {"path": str(path), "key": key, "info": dataclasses.asdict(info)})
    return info


def _cache_file(path: Path) -> Path:
    from llmdeploy.paths import model_store_dir

    digest = hashlib.sha256(str(path.absolute()).encode()).hexdigest()[:32]
    return model_store_dir() / ".cache" / "inspect" / f"{digest}.json"


def _write_json(target: Path, data: Mapping[str, Any]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".inspect-", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _has_gguf_magic(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(4) == _GGUF_MAGIC
    except OSError:
        return False


def _inspect_directory(directory: Path) -> ModelInfo:
    files = visible_files(directory)
    if "config.json" in files:
        config = _read_json(files["config.json"])
        weights = {k: v for k, v in files.items() if k.endswith(".safetensors")}
        return _inspect_safetensors_files(directory, weights, config=config, all_files=files)
    ggufs = sorted(k for k in files if k.lower().endswith(".gguf"))
    firsts = [g for g in ggufs if (parse_split_name(g) or _FIRST).index == 1]
    if len(firsts) == 1:
        return _inspect_gguf(files[firsts[0]], relative_to=directory)
    if firsts:
        raise ModelError(
            f"{directory} holds several GGUF models: {', '.join(firsts[:8])}",
            hint="inspect one of the files",
        )
    raise ModelError(
        f"{directory} holds no model: neither config.json nor a .gguf file",
        hint="a Hugging Face folder needs config.json and *.safetensors",
    )


# --- GGUF -------------------------------------------------------------------------------


def _import_gguf() -> Any:
    try:
        return importlib.import_module("gguf")
    except ImportError as exc:
        raise ModelError("reading GGUF metadata needs the gguf package", hint=_GGUF_HINT) from exc


def _open_gguf(gguf: Any, path: Path) -> Any:
    try:
        return gguf.GGUFReader(str(path))
    except (ValueError, OSError, KeyError, IndexError, struct.error) as exc:
        raise ModelError(
            f"{path} is not a readable GGUF file: {exc}",
            hint="check that the download is complete (llmdeploy models pull again)",
        ) from exc


def _field(reader: Any, key: str) -> Any:
    """The value of a metadata key (str, int, float, or a list for arrays), or None."""
    field = reader.fields.get(key)
    if field is None:
        return None
    contents = getattr(field, "contents", None)
    if callable(contents):  # gguf >= 0.11
        return contents()
    parts = [field.parts[i] for i in field.data]  # older gguf: decode by hand
    if len(field.types) == 1 and field.types[0].name == "STRING":
        return bytes(parts[0]).decode("utf-8", errors="replace")
    if field.types[0].name == "ARRAY":
        if field.types[-1].name == "STRING":
            return [bytes(p).decode("utf-8", errors="replace") for p in parts]
        return [p.tolist()[0] for p in parts]
    return parts[0].tolist()[0]


def _int(value: Any) -> int | None:
    if isinstance(value, list):  # per-layer values (some architectures): the largest
        ints = [v for v in value if isinstance(v, int | float)]
        return int(max(ints)) if ints else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _split_parts(path: Path) -> list[Path]:
    """``path``, or every part of the split GGUF it is the first part of; ModelError naming
    missing parts, or parts whose ``split.*`` metadata disagrees with their names."""
    parts = local_parts(path, str(path))
    check_parts(parts)
    return parts


def _tensor_counts(reader: Any) -> Counter[str]:
    counts: Counter[str] = Counter()
    for tensor in reader.tensors:
        counts[str(tensor.tensor_type.name)] += int(tensor.n_elements)
    return counts


def _gguf_quantization(gguf: Any, file_type: int | None, counts: Counter[str]) -> str | None:
    if file_type is not None:
        try:
            name = str(gguf.LlamaFileType(file_type).name)
        except (ValueError, AttributeError):
            name = "GUESSED"
        if name != "GUESSED":
            name = name.removeprefix("MOSTLY_").removeprefix("ALL_")
            return "MXFP4" if name.startswith("MXFP4") else name
    # no (or an unknown) general.file_type: the type holding most weights; F32 (norms) last
    weights = Counter({k: v for k, v in counts.items() if k != "F32"}) or counts
    return weights.most_common(1)[0][0] if weights else None


def _inspect_gguf(path: Path, relative_to: Path | None = None) -> ModelInfo:
    split = parse_split_name(path.name)
    if split is not None and split.index != 1:  # the model's metadata is in the first part
        path = path.with_name(split.first)
    parts = _split_parts(path)
    gguf = _import_gguf()
    reader = _open_gguf(gguf, path)
    arch = _field(reader, "general.architecture")
    arch = arch if isinstance(arch, str) else None

    def key(name: str) -> Any:
        return _field(reader, f"{arch}.{name}") if arch else None

    counts = _tensor_counts(reader)
    for part in parts:
        if part != path:
            counts.update(_tensor_counts(_open_gguf(gguf, part)))
    layers = _int(key("block_count"))
    heads = _int(key("attention.head_count"))
    kv_heads = _int(key("attention.head_count_kv")) or heads
    hidden = _int(key("embedding_length"))
    head_dim = _int(key("attention.key_length"))
    if head_dim is None and hidden and heads:
        head_dim = hidden // heads
    vocab = _int(key("vocab_size"))
    if vocab is None and "tokenizer.ggml.tokens" in reader.fields:
        vocab = len(reader.fields["tokenizer.ggml.tokens"].data)
    name = _field(reader, "general.name")
    base = relative_to or path.parent
    return ModelInfo(
        format="gguf",
        architecture=arch,
        parameters=sum(counts.values()) or None,
        layers=layers,
        attention_heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        hidden_size=hidden,
        context_length=_int(key("context_length")),
        vocab_size=vocab,
        quantization=_gguf_quantization(gguf, _int(_field(reader, "general.file_type")), counts),
        file_sizes={p.relative_to(base).as_posix(): p.stat().st_size for p in parts},
        name=name if isinstance(name, str) else None,
        tensor_types=dict(counts.most_common()),
        has_chat_template="tokenizer.chat_template" in reader.fields,
    )


# --- Hugging Face folders ---------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
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
            prefix = handle.read(8)
            if len(prefix) != 8:
                raise ModelError(f"{path} is too short to be a safetensors file")
            (length,) = struct.unpack("<Q", prefix)
            if length > _SAFETENSORS_HEADER_MAX:
                raise ModelError(f"{path}: implausible safetensors header length {length}")
            header = json.loads(handle.read(length))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path} is not a readable safetensors file: {exc}") from exc
    if not isinstance(header, dict):
        raise ModelError(f"{path}: the safetensors header is not a JSON object")
    return header


def _first(config: Mapping[str, Any], keys: tuple[str, ...]) -> int | None:
    for name in keys:
        value = _int(config.get(name))
        if value is not None:
            return value
    return None


def _hf_quantization(config: Mapping[str, Any], dtype: str | None, counts: Counter[str]) -> str:
    qc = config.get("quantization_config")
    if isinstance(qc, Mapping):
        method = str(qc.get("quant_method", "")).lower()
        bits = _int(qc.get("bits") or qc.get("w_bit"))
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
    weights = Counter({k: v for k, v in counts.items() if k != "F32"}) or counts
    return weights.most_common(1)[0][0] if weights else "unknown"


def _inspect_safetensors_files(
    directory: Path,
    weights: Mapping[str, Path],
    *,
    config: dict[str, Any] | None,
    all_files: Mapping[str, Path] | None = None,
) -> ModelInfo:
    counts: Counter[str] = Counter()
    for path in weights.values():
        for name, tensor in safetensors_header(path).items():
            if name == "__metadata__" or not isinstance(tensor, Mapping):
                continue
            shape = tensor.get("shape") or []
            counts[str(tensor.get("dtype", "?"))] += math.prod(int(d) for d in shape)
    parameters = sum(counts.values()) or None
    index = (all_files or {}).get("model.safetensors.index.json")
    if index is not None:
        stated = _read_json(index).get("metadata", {}).get("total_parameters")
        if isinstance(stated, int) and stated > 0:
            parameters = stated
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
    head_dim = _int(numbers.get("head_dim"))
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
    files = all_files if all_files is not None else weights
    has_template: bool | None = None
    if all_files is not None:
        tokenizer_config = all_files.get("tokenizer_config.json")
        has_template = "chat_template.jinja" in all_files or (
            tokenizer_config is not None and bool(_read_json(tokenizer_config).get("chat_template"))
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
        file_sizes={name: p.stat().st_size for name, p in files.items()},
        name=directory.name,
        tensor_types=dict(counts.most_common()),
        has_chat_template=has_template,
    )
