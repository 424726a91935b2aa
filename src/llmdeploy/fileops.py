"""File operations shared by the model store, its sources and image build contexts: placing a
file (hard link, else copy), hashing one, and reading and writing small JSON state files."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from pydantic import BaseModel

    _Model = TypeVar("_Model", bound=BaseModel)

_HASH_CHUNK = 8 * 1024 * 1024


class _Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link ``source`` at ``target`` (zero copy on the same filesystem), else copy it."""
    try:
        os.link(source.resolve(), target)
    except OSError:
        shutil.copyfile(source, target)
        os.chmod(target, 0o644)  # readable by a container's non-root user


def hash_into(path: Path, digest: _Digest) -> None:
    """Feed the bytes of ``path`` to ``digest`` in chunks (any size, in bounded memory)."""
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)


def sha256_file(path: Path) -> str:
    """The sha256 of ``path`` as 64 lowercase hex digits; OSError when it cannot be read."""
    digest = hashlib.sha256()
    hash_into(path, digest)
    return digest.hexdigest()


def read_json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when it is absent, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_json_model(path: Path, model: type[_Model]) -> _Model | None:
    """``path`` parsed as the pydantic ``model``, or None when it is absent, unreadable or not
    of that shape (a reader that cannot trust the file treats it as missing)."""
    from pydantic import ValidationError

    data = read_json_object(path)
    if data is None:
        return None
    try:
        return model.model_validate(data)
    except ValidationError:
        return None


def files_have_sizes(directory: Path, sizes: Mapping[str, int]) -> bool:
    """True when ``sizes`` names at least one file, and each is a regular file under
    ``directory`` (a relative path without ``..``) of that many bytes."""
    if not sizes:
        return False
    for name, size in sizes.items():
        path = directory / name
        if ".." in Path(name).parts or Path(name).is_absolute() or not path.is_file():
            return False
        if path.stat().st_size != size:
            return False
    return True


def write_json_atomic(path: Path, data: Mapping[str, Any], *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` as indented JSON with sorted keys, atomically: it is written
    to a temporary file beside ``path`` and renamed, so a reader never sees half of it and a
    link at ``path`` is replaced, never written through. ``mode``: the file's permissions."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
