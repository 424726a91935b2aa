"""What every model source shares: the progress seam, file hashing, store-entry manifests."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

MANIFEST = ".llmdeploy-model.json"  # written last into an entry: its presence means complete
PENDING = ".llmdeploy-pending.json"  # written before a download starts: names the ref
_HASH_CHUNK = 8 * 1024 * 1024


class Progress(Protocol):
    """Where a download reports its progress; the CLI supplies a Rich bar, tests a recorder.

    ``start`` may be called again when a transfer restarts from the beginning (the server
    ignored a resume request); ``advance`` may be called from a worker thread.
    """

    def start(self, total_bytes: int | None, description: str) -> None: ...

    def advance(self, n: int) -> None: ...

    def finish(self) -> None: ...


class NullProgress:
    """A Progress that shows nothing."""

    def start(self, total_bytes: int | None, description: str) -> None:
        pass

    def advance(self, n: int) -> None:
        pass

    def finish(self) -> None:
        pass


@dataclass(frozen=True)
class FileRecord:
    """One file of a stored model, as the manifest records it."""

    size: int
    sha256: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"size": self.size}
        if self.sha256:
            data["sha256"] = self.sha256
        return data


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(entry: Path, name: str = MANIFEST) -> dict[str, Any] | None:
    """The JSON object in ``entry/name``, or None when absent or unreadable."""
    try:
        data = json.loads((entry / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_manifest(entry: Path, data: Mapping[str, Any], name: str = MANIFEST) -> None:
    """Write ``entry/name`` atomically (a reader never sees half a manifest)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=entry)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, entry / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def visible_files(directory: Path) -> dict[str, Path]:
    """Regular files under ``directory`` by relative POSIX path, hidden names left out.

    Hidden files and folders (``.cache/`` of huggingface_hub, ``.git/``, llmdeploy's own
    manifests, partial downloads named ``.*``) are not part of a model. Symbolic links are
    followed, so a Hugging Face cache snapshot (a folder of links to blobs) lists its files.
    """
    found: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(directory, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        base = Path(dirpath)
        for name in sorted(filenames):
            if name.startswith(".") or name.endswith(".part") or name.endswith(".part.json"):
                continue
            path = base / name
            if path.is_file():
                found[path.relative_to(directory).as_posix()] = path
    return found


def files_complete(entry: Path, files: object) -> bool:
    """True when every file a manifest lists exists in ``entry`` with its recorded size."""
    if not isinstance(files, Mapping) or not files:
        return False
    for name, meta in files.items():
        if not isinstance(name, str) or not isinstance(meta, Mapping):
            return False
        path = entry / name
        if ".." in Path(name).parts or not path.is_file():
            return False
        if path.stat().st_size != meta.get("size"):
            return False
    return True


def directory_bytes(directory: Path) -> int:
    """Bytes of every regular file under ``directory``, hidden ones included (downloads in
    progress live in hidden folders); used to measure a download from outside."""
    total = 0
    for dirpath, _dirnames, filenames in os.walk(directory):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue  # moved or removed while we looked
    return total
