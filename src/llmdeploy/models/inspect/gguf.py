"""Read a GGUF model's shape from its metadata with the ``gguf`` package (``GGUFReader``).

A split GGUF is read from its first part (which holds the metadata), with the tensors of
every part counted; parts that are missing or disagree with their names are refused.
"""

from __future__ import annotations

import importlib
import struct
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmdeploy.core.gguf_split import check_parts, local_parts, parse_split_name
from llmdeploy.core.model_info import ModelInfo
from llmdeploy.errors import ModelError
from llmdeploy.models.inspect.gguf_layout import layout_from_gguf
from llmdeploy.models.inspect.values import as_int, dominant_type

MAGIC = b"GGUF"
_GGUF_HINT = "gguf is a dependency of llmdeploy: reinstall llmdeploy"


def has_magic(path: Path) -> bool:
    """True when ``path`` starts with the GGUF magic bytes."""
    try:
        with path.open("rb") as handle:
            return handle.read(4) == MAGIC
    except OSError:
        return False


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
    # no (or an unknown) general.file_type: the type holding most weights
    return dominant_type(counts)


def inspect_gguf(path: Path, relative_to: Path | None = None) -> ModelInfo:
    """A GGUF model from any of its parts (the metadata is read from the first); sizes and
    parameters summed over every part. ``relative_to``: what ``file_sizes`` names are
    relative to (default: the file's folder)."""
    split = parse_split_name(path.name)
    if split is not None and split.index != 1:  # the model's metadata is in the first part
        path = path.with_name(split.first)
    parts = _split_parts(path)
    gguf = _import_gguf()
    reader = _open_gguf(gguf, path)
    counts = _tensor_counts(reader)
    for part in parts:
        if part != path:
            counts.update(_tensor_counts(_open_gguf(gguf, part)))
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    base = relative_to or path.parent
    return info_from_metadata(
        lambda key: _field(reader, key),
        counts=counts,
        file_sizes={p.relative_to(base).as_posix(): p.stat().st_size for p in parts},
        vocab_tokens=len(tokens.data) if tokens is not None else None,
        has_chat_template="tokenizer.chat_template" in reader.fields,
    )


def info_from_metadata(
    field: Callable[[str], Any],
    *,
    counts: Counter[str],
    file_sizes: dict[str, int],
    vocab_tokens: int | None,
    has_chat_template: bool,
) -> ModelInfo:
    """A GGUF model's ``ModelInfo`` from its metadata, however it was read (``GGUFReader`` on
    a local file, or a header fetched by HTTP Range requests: ``models.inspect.gguf_header``).

    ``field(key)``: the value of a metadata key (None when absent); ``counts``: parameters by
    tensor type over every part; ``vocab_tokens``: the length of ``tokenizer.ggml.tokens``.
    """
    gguf = _import_gguf()
    arch = field("general.architecture")
    arch = arch if isinstance(arch, str) else None

    def key(name: str) -> Any:
        return field(f"{arch}.{name}") if arch else None

    layers = as_int(key("block_count"))
    heads = as_int(key("attention.head_count"))
    kv_heads = as_int(key("attention.head_count_kv")) or heads
    hidden = as_int(key("embedding_length"))
    head_dim = as_int(key("attention.key_length"))
    if head_dim is None and hidden and heads:
        head_dim = hidden // heads
    vocab = as_int(key("vocab_size"))
    if vocab is None:
        vocab = vocab_tokens
    name = field("general.name")
    return ModelInfo(
        format="gguf",
        architecture=arch,
        parameters=sum(counts.values()) or None,
        layers=layers,
        attention_heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        hidden_size=hidden,
        context_length=as_int(key("context_length")),
        vocab_size=vocab,
        quantization=_gguf_quantization(gguf, as_int(field("general.file_type")), counts),
        file_sizes=dict(file_sizes),
        name=name if isinstance(name, str) else None,
        tensor_types=dict(counts.most_common()),
        has_chat_template=has_chat_template,
        attention=layout_from_gguf(arch, key),
    )


# --- Hugging Face folders ---------------------------------------------------------------
