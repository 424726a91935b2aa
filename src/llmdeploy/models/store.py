"""The host-side model store: one directory per model, bind-mounted read-only into containers.

A local model is placed in the store by hard link when the store is on the same filesystem
(no copy at all), else copied once. Each entry records the source's size and mtime, so a
later ``up`` on an unchanged model only ``stat``s the source: nothing is copied or re-hashed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from llmdeploy.errors import ModelError
from llmdeploy.models.refs import ModelRef, local_path, parse_ref

MANIFEST = ".llmdeploy-model.json"
_HASH_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class StoredModel:
    ref: str
    directory: Path  # mounted read-only into the container
    filename: str  # the model file inside ``directory`` (or "" for a model directory)
    size_bytes: int
    sha256: str | None
    reused: bool  # True when nothing was copied or hashed this time

    @property
    def path(self) -> Path:
        return self.directory / self.filename if self.filename else self.directory


class ModelStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def entry_dir(self, ref: ModelRef, source: Path) -> Path:
        digest = hashlib.sha256(str(ref).encode()).hexdigest()[:10]
        slug = re.sub(r"[^a-z0-9._-]+", "-", source.stem.lower()).strip("-") or "model"
        return self.root / f"{slug}-{digest}"

    def locate(self, raw_ref: str) -> tuple[Path, str]:
        """Where ``ensure`` puts the model (directory, filename), without copying anything."""
        ref = parse_ref(raw_ref)
        source = local_path(ref)
        return self.entry_dir(ref, source), source.name

    def ensure(self, raw_ref: str) -> StoredModel:
        """Make the model available in the store and return where it is."""
        ref = parse_ref(raw_ref)
        source = local_path(ref)
        if source.is_dir():
            raise ModelError(
                f"{ref}: model directories are not supported by this backend yet; "
                "point at a single .gguf file"
            )
        entry = self.entry_dir(ref, source)
        stat = source.stat()
        manifest = _read_manifest(entry)
        target = entry / source.name
        if (
            manifest is not None
            and manifest.get("source") == str(source)
            and manifest.get("size_bytes") == stat.st_size
            and manifest.get("mtime_ns") == stat.st_mtime_ns
            and target.is_file()
            and target.stat().st_size == stat.st_size
        ):
            return StoredModel(
                ref=str(ref),
                directory=entry,
                filename=source.name,
                size_bytes=stat.st_size,
                sha256=str(manifest["sha256"]) if manifest.get("sha256") else None,
                reused=True,
            )
        return self._import(ref, source, entry, target)

    def _import(self, ref: ModelRef, source: Path, entry: Path, target: Path) -> StoredModel:
        try:
            entry.mkdir(parents=True, exist_ok=True)
            os.chmod(entry, 0o755)
            tmp = Path(tempfile.mkdtemp(prefix=".import-", dir=entry)) / source.name
            try:
                os.link(source, tmp)  # zero-copy when on the same filesystem
            except OSError:
                shutil.copyfile(source, tmp)
                os.chmod(tmp, 0o644)  # readable by the container's non-root user
            sha = _sha256(tmp)
            os.replace(tmp, target)
            shutil.rmtree(tmp.parent, ignore_errors=True)
            stat = source.stat()
            manifest = {
                "ref": str(ref),
                "source": str(source),
                "size_bytes": stat.st_size,
                "mtime_ns": stat.st_mtime_ns,
                "sha256": sha,
                "filename": source.name,
            }
            (entry / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        except OSError as exc:
            raise ModelError(
                f"could not place {source} in the model store {self.root}: {exc}",
                hint="set LLMDEPLOY_MODEL_STORE to a writable directory with enough space",
            ) from exc
        return StoredModel(
            ref=str(ref),
            directory=entry,
            filename=source.name,
            size_bytes=stat.st_size,
            sha256=sha,
            reused=False,
        )

    def list(self) -> list[dict[str, object]]:
        if not self.root.is_dir():
            return []
        entries = []
        for entry in sorted(self.root.iterdir()):
            manifest = _read_manifest(entry)
            if manifest is not None:
                entries.append({"directory": str(entry), **manifest})
        return entries


def _read_manifest(entry: Path) -> dict[str, object] | None:
    try:
        data = json.loads((entry / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
