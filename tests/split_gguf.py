"""Write real split GGUF models for tests, with gguf-py's writer (the one llama.cpp ships).

``write_split(path, parts)`` writes ``NAME-00001-of-0000N.gguf`` ... beside ``path``
(``NAME.gguf``), carrying ``split.no`` / ``split.count`` / ``split.tensors.count`` as
llama.cpp's gguf-split does: a 2-layer llama model whose 2 * parts tensors of 8 x 64 F32 are
spread two per part.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

TENSOR_ELEMENTS = 8 * 64


def write_split(path: Path, parts: int = 3, *, tensors: int | None = None) -> list[Path]:
    """The parts, first to last (``tensors``, default ``2 * parts - 1``, two per part);
    ``path`` itself is not written."""
    gguf = pytest.importorskip("gguf")
    np = pytest.importorskip("numpy")
    writer = gguf.GGUFWriter(str(path), "llama", split_max_tensors=2)
    _model(writer, "tiny split", 2048)
    for i in range(2 * parts - 1 if tensors is None else tensors):
        writer.add_tensor(f"blk.{i}.ffn.weight", np.full((8, 64), i, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    stem = path.name.removesuffix(".gguf")
    written = [path.with_name(f"{stem}-{i:05d}-of-{parts:05d}.gguf") for i in range(1, parts + 1)]
    assert all(p.is_file() for p in written), sorted(path.parent.iterdir())
    return written


def write_single(path: Path, *, name: str = "tiny single") -> Path:
    """One whole (unsplit) GGUF model, with no split keys."""
    gguf = pytest.importorskip("gguf")
    np = pytest.importorskip("numpy")
    writer = gguf.GGUFWriter(str(path), "llama")
    _model(writer, name, 2048)
    writer.add_tensor("blk.0.ffn.weight", np.ones((8, 64), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _model(writer: Any, name: str, context: int) -> None:
    writer.add_name(name)
    writer.add_block_count(2)
    writer.add_context_length(context)
    writer.add_embedding_length(64)
    writer.add_head_count(4)
    writer.add_head_count_kv(2)
    writer.add_file_type(0)  # ALL_F32
