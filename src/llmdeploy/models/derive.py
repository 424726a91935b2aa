"""Models derived from stored ones: a GGUF dequantized into a Hugging Face folder for vLLM.

The derived folder lives in the store beside its source entry, named ``<entry>-hf-<dtype>``;
``convert_gguf_to_hf`` skips the work when a complete conversion of the same source file and
dtype is already there. ``models rm`` of the entry removes its derived folders too.
"""

from __future__ import annotations

from pathlib import Path

from llmdeploy.errors import ModelError
from llmdeploy.models.convert_gguf import DEFAULT_DTYPE, MANIFEST_NAME, convert_gguf_to_hf
from llmdeploy.models.store import StoredModel
from llmdeploy.models.store.ownership import glob_escape


def converted_dir(entry: Path, dtype: str = DEFAULT_DTYPE) -> Path:
    """Where the ``dtype`` conversion of the store entry ``entry`` goes (nothing is read)."""
    return entry.parent / f"{entry.name}-hf-{dtype}"


def derived_dirs(entry: Path) -> list[Path]:
    """The conversions made from ``entry`` (real folders carrying a conversion manifest)."""
    return sorted(
        p
        for p in entry.parent.glob(f"{glob_escape(entry.name)}-hf-*")
        if not p.is_symlink() and p.is_dir() and (p / MANIFEST_NAME).is_file()
    )


def ensure_hf_folder(stored: StoredModel, *, dtype: str = DEFAULT_DTYPE) -> StoredModel:
    """A Hugging Face folder made from the stored GGUF (converted once, then reused); the
    notes of the source and of the conversion are carried over."""
    if not stored.filename.lower().endswith(".gguf"):
        raise ModelError(
            f"model.convert: hf needs a .gguf model, and {stored.ref} is not one",
            hint="drop model.convert for models that already are Hugging Face folders",
        )
    out_dir = converted_dir(stored.directory, dtype)
    conversion = convert_gguf_to_hf(stored.path, out_dir, dtype=dtype)
    out_dir = conversion.directory
    size = sum(p.stat().st_size for p in out_dir.iterdir() if p.is_file())
    return StoredModel(
        ref=stored.ref,
        directory=out_dir,
        filename="",
        size_bytes=size,
        sha256=None,
        reused=conversion.reused,
        notes=(*stored.notes, *conversion.notes),
    )
