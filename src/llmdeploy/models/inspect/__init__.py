"""Read a model's shape from its files: GGUF metadata (``gguf``), or config.json + safetensors
headers (``hf``).

``inspect_path(path)`` takes a ``.gguf`` file (any part of a split GGUF: the model is read
from its first part and every part found beside it, sizes and parameters summed over all), a
``.safetensors`` file, or a directory: a Hugging Face folder (``config.json``), or a folder
holding exactly one GGUF model (a store entry). Nothing heavier than the ``gguf``
package is imported; safetensors files are read only as far as their JSON header (no torch,
no weights loaded). ``inspect_cached`` keeps results in the model store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from pathlib import Path

from llmdeploy.core.gguf_split import SplitName, parse_split_name, part_names
from llmdeploy.core.model_info import ModelInfo
from llmdeploy.errors import ModelError
from llmdeploy.fileops import read_json_object, write_json_atomic
from llmdeploy.models.inspect.gguf import has_magic, inspect_gguf
from llmdeploy.models.inspect.hf import inspect_safetensors, read_json
from llmdeploy.models.sources.base import visible_files

__all__ = ["inspect_cached", "inspect_path"]

_FIRST = SplitName("", 1, 1)  # what a plain (unsplit) GGUF name counts as


def inspect_path(path: Path) -> ModelInfo:
    """The architecture facts of the model at ``path``; ModelError if it cannot be read."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"no such model file or directory: {path}")
    if path.is_dir():
        return _inspect_directory(path)
    if path.suffix.lower() == ".safetensors":
        return inspect_safetensors(path.parent, {path.name: path}, config=None)
    if path.suffix.lower() == ".gguf" or has_magic(path):
        return inspect_gguf(path)
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
    data = read_json_object(cache)
    if (
        data is not None
        and data.get("key") == key
        and data.get("path") == str(path)
        and data.get("version") == CACHE_VERSION
    ):
        with contextlib.suppress(TypeError, KeyError, ValueError, AttributeError):
            return ModelInfo.from_dict(data["info"])
    info = inspect_path(path)
    with contextlib.suppress(OSError):  # no writable store: no cache, same answer
        cache.parent.mkdir(parents=True, exist_ok=True)
        record = {"path": str(path), "key": key, "version": CACHE_VERSION,
                  "info": dataclasses.asdict(info)}
        write_json_atomic(cache, record)
    return info


# what an inspection records: a cache written by an older llmdeploy (fewer facts) is redone
CACHE_VERSION = 2


def _cache_file(path: Path) -> Path:
    from llmdeploy.models.store.records import INSPECT_CACHE_DIR
    from llmdeploy.paths import model_store_dir

    digest = hashlib.sha256(str(path.absolute()).encode()).hexdigest()[:32]
    return model_store_dir() / INSPECT_CACHE_DIR / f"{digest}.json"


def _inspect_directory(directory: Path) -> ModelInfo:
    files = visible_files(directory)
    if "config.json" in files:
        config = read_json(files["config.json"])
        weights = {k: v for k, v in files.items() if k.endswith(".safetensors")}
        return inspect_safetensors(directory, weights, config=config, all_files=files)
    ggufs = sorted(k for k in files if k.lower().endswith(".gguf"))
    firsts = [g for g in ggufs if (parse_split_name(g) or _FIRST).index == 1]
    if len(firsts) == 1:
        return inspect_gguf(files[firsts[0]], relative_to=directory)
    if firsts:
        raise ModelError(
            f"{directory} holds several GGUF models: {', '.join(firsts[:8])}",
            hint="inspect one of the files",
        )
    raise ModelError(
        f"{directory} holds no model: neither config.json nor a .gguf file",
        hint="a Hugging Face folder needs config.json and *.safetensors",
    )
