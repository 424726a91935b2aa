"""Placing models that are already on this host: file:// and pkg:// files (every part of a split
GGUF), Hugging Face folders, and the empty placeholders of ollama:// references.

Each file is placed by hard link when the store is on the same filesystem (no copy at all),
else copied once, under a temporary name, hashed, then renamed into place (so a hard-linked
source is never modified). The manifest records each source file's size, mtime and inode, so a
later ``up`` on an unchanged model only ``stat``s the source: nothing is copied or re-hashed.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

from llmdeploy.core.gguf_split import check_parts, local_parts, require_first_part
from llmdeploy.core.model_ref import ModelRef
from llmdeploy.errors import ModelError
from llmdeploy.fileops import link_or_copy, sha256_file
from llmdeploy.models.sources.base import visible_files
from llmdeploy.models.store import records
from llmdeploy.models.store.ownership import claim, entry_lock, foreign, replace_dir, store_error
from llmdeploy.models.store.records import Manifest, PendingMarker, StoredFile, StoredModel

_WEIGHT_SUFFIXES = (".safetensors", ".gguf", ".bin", ".pt", ".pth")


def ensure_file(root: Path, ref: ModelRef, source: Path, entry: Path) -> StoredModel:
    """A GGUF file, or every part of a split GGUF named by its first part."""
    require_first_part(source.name, str(ref))
    sources = local_parts(source, str(ref))
    stats = {path.name: path.stat() for path in sources}
    manifest = records.read_manifest(entry)
    if manifest is not None and _unchanged(manifest, ref, source, entry, stats):
        return StoredModel.from_manifest(entry, manifest, reused=True)
    check_parts(sources)  # before anything is written: llama.cpp must be able to load them
    return _import(root, ref, source, sources, entry)


def _import(
    root: Path, ref: ModelRef, source: Path, sources: list[Path], entry: Path
) -> StoredModel:
    """Place ``sources`` in ``entry``: each changed file linked (or copied) under a temporary
    name, hashed, then renamed into place; unchanged ones are kept as they are. The manifest
    is written last."""
    try:
        claim(entry, ref)
        entry.mkdir(parents=True, exist_ok=True)
        os.chmod(entry, 0o755)
        with entry_lock(root, entry):
            claim(entry, ref)
            old = records.read_manifest(entry)
            old_files = old.files if old is not None and old.source == str(source) else None
            old_files = old_files or {}
            records.write_pending(entry, PendingMarker(ref=str(ref), scheme=ref.scheme))
            (entry / records.MANIFEST).unlink(missing_ok=True)  # incomplete until written again
            placed: dict[str, StoredFile] = {}
            for path in sources:
                kept = old_files.get(path.name)
                if kept is not None and _same_file(kept, path.stat(), entry / path.name):
                    placed[path.name] = kept
                    continue
                placed[path.name] = _place(path, entry)
            for name in old_files:  # files an earlier import made that are no longer wanted
                if name not in placed and _safe_name(name):
                    (entry / name).unlink(missing_ok=True)
            first = placed[source.name]
            manifest = Manifest(
                ref=str(ref),
                scheme=ref.scheme,
                source=str(source),
                size_bytes=sum(r.size for r in placed.values()),
                mtime_ns=first.mtime_ns,
                sha256=first.sha256,
                filename=source.name,
                files=placed,
                stored_at=records.now(),
            )
            records.write_manifest(entry, manifest)
            (entry / records.PENDING).unlink(missing_ok=True)
    except OSError as exc:
        raise store_error(root, source, exc) from exc
    return StoredModel.from_manifest(entry, manifest, reused=False)


def ensure_dir(root: Path, ref: ModelRef, source: Path, entry: Path) -> StoredModel:
    """A folder model (config.json + safetensors): every visible file, linked or copied."""
    files = visible_files(source)
    if not any(name.endswith(_WEIGHT_SUFFIXES) for name in files):
        raise ModelError(
            f"{ref}: the directory {source} holds no model weights",
            hint="a Hugging Face folder holds config.json and *.safetensors files",
        )
    stats = {name: path.stat() for name, path in files.items()}
    size = sum(s.st_size for s in stats.values())
    manifest = records.read_manifest(entry)
    recorded = manifest.files if manifest is not None else None
    if (
        manifest is not None
        and manifest.source == str(source)
        and recorded is not None
        and set(recorded) == set(stats)
        and all(
            recorded[name].size == st.st_size and recorded[name].mtime_ns == st.st_mtime_ns
            for name, st in stats.items()
        )
        and records.files_complete(entry, recorded)
    ):
        return StoredModel(str(ref), entry, "", size, None, reused=True)
    claim(entry, ref)
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".import-", dir=root))
        placed: dict[str, StoredFile] = {}
        for name, path in files.items():
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            link_or_copy(path, target)
            placed[name] = StoredFile(
                size=stats[name].st_size,
                mtime_ns=stats[name].st_mtime_ns,
                sha256=sha256_file(target),
            )
        records.write_manifest(
            tmp,
            Manifest(
                ref=str(ref),
                scheme=ref.scheme,
                source=str(source),
                size_bytes=size,
                filename="",
                files=placed,
                stored_at=records.now(),
            ),
        )
        for directory in [tmp, *(p for p in tmp.rglob("*") if p.is_dir())]:
            os.chmod(directory, 0o755)
        replace_dir(tmp, entry)
    except OSError as exc:
        raise store_error(root, source, exc) from exc
    return StoredModel(str(ref), entry, "", size, None, reused=False)


def ensure_placeholder(root: Path, ref: ModelRef, entry: Path) -> StoredModel:
    """The empty directory an ollama:// reference mounts (the Ollama server pulls the model);
    its manifest marks it as llmdeploy's, so ``models rm`` may remove it by name too."""
    if entry.is_symlink():
        raise foreign(entry, "a symbolic link")
    existed = entry.is_dir()
    try:
        entry.mkdir(parents=True, exist_ok=True)
        os.chmod(entry, 0o755)
        if records.read_manifest(entry) is None:
            records.write_manifest(
                entry, Manifest(ref=str(ref), placeholder=True, files={}, stored_at=records.now())
            )
    except OSError as exc:
        raise store_error(root, entry, exc) from exc
    return StoredModel(str(ref), entry, "", 0, None, reused=existed)


def _unchanged(
    manifest: Manifest,
    ref: ModelRef,
    source: Path,
    entry: Path,
    stats: Mapping[str, os.stat_result],
) -> bool:
    """True when the entry holds exactly ``stats``' files as they were imported: each source
    with its recorded size, mtime (and inode), each stored file there with that size."""
    files = manifest.files
    if (
        manifest.ref != str(ref)
        or manifest.source != str(source)
        or files is None
        or set(files) != set(stats)
    ):
        return False
    for name, st in stats.items():
        record = files[name]
        if record.mtime_ns is None and len(files) == 1:  # manifests before split support
            record = record.model_copy(update={"mtime_ns": manifest.mtime_ns})
        if not _same_file(record, st, entry / name):
            return False
    return True


def _same_file(record: StoredFile, st: os.stat_result, stored: Path) -> bool:
    """The source described by ``st`` is the one ``record`` was made from, and ``stored``
    (its copy or link in the entry) is still there with that size."""
    if (
        record.size != st.st_size
        or record.mtime_ns != st.st_mtime_ns
        or (record.inode is not None and record.inode != st.st_ino)
        or not record.sha256
    ):
        return False
    try:
        placed = os.lstat(stored)
    except OSError:
        return False
    return stat.S_ISREG(placed.st_mode) and placed.st_size == st.st_size


def _place(source: Path, entry: Path) -> StoredFile:
    """Link (or copy) ``source`` into ``entry`` under a temporary name, hash it, rename it
    into place; return its manifest record."""
    st = source.stat()
    tmp_dir = Path(tempfile.mkdtemp(prefix=".import-", dir=entry))
    try:
        tmp = tmp_dir / source.name
        link_or_copy(source, tmp)
        sha = sha256_file(tmp)
        os.replace(tmp, entry / source.name)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return StoredFile(size=st.st_size, mtime_ns=st.st_mtime_ns, inode=st.st_ino, sha256=sha)


def _safe_name(name: str) -> bool:
    parts = Path(name).parts
    return bool(parts) and ".." not in parts and not Path(name).is_absolute()
