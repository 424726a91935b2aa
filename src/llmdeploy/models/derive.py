"""Models derived from stored ones: a GGUF dequantized into a Hugging Face folder for vLLM.

The derived folder lives in the store beside its source; ``convert_gguf_to_hf`` skips the work
when a complete conversion of the same source file and dtype is already there.
"""

from __future__ import annotations

from pathlib import Path

from llmdeploy.errors import ModelError
from llmdeploy.models.store import StoredModel


def converted_dir(stored: StoredModel, dtype: str) -> Path:
    return stored.directory.parent / f"{stored.directory.name}-hf-{dtype}"


def ensure_hf_folder(stored: StoredModel, *, dtype: str = "bfloat16") -> StoredModel:
    """A Hugging Face folder made from the stored GGUF (converted once, then reused)."""
    if not stored.filename.lower().endswith(".gguf"):
        raise ModelError(
            f"model.convert: hf needs a .gguf model, and {stored.ref} is not one",
            hint="drop model.convert for models that already are Hugging Face folders",
        )
    from llmdeploy.models.convert_gguf import convert_gguf_to_hf, is_complete_conversion

    out_dir = converted_dir(stored, dtype)
    reused = is_complete_conversion(stored.path, out_dir, dtype=dtype)
    convert_gguf_to_hf(stored.path, out_dir, dtype=dtype)
    size = sum(p.stat().st_size for p in out_dir.iterdir() if p.is_file())
    return StoredModel(
        ref=stored.ref,
        directory=out_dir,
        filename="",
        size_bytes=size,
        sha256=None,
        reused=reused,
    )
