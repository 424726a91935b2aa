"""What every model source shares: the progress seam, the record of a fetched file, and which
files of a folder make up a model."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


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
    """One file a source fetched: its size in bytes and, when known, its sha256 (hex)."""

    size: int
    sha256: str | None = None


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
