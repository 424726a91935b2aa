"""The host-side model store: one directory per model, bind-mounted read-only into containers.

Layout (``$LLMDEPLOY_MODEL_STORE``, default ``~/.cache/llmdeploy/models``)::

    <slug>-<sha256(ref)[:10]>/          one entry per reference
        model.gguf | config.json, *.safetensors, tokenizer files ...
        .llmdeploy-model.json           manifest, written last: the entry is complete
        .llmdeploy-pending.json         only while a download is unfinished (names the ref)
        .cache/huggingface/             huggingface_hub's per-file download state (hf://)
    ollama-<name>-<tag>-<digest>/       empty placeholder for ollama:// (Ollama pulls itself)
    _data/                              per-deployment state of backends (not models)

Where each reference goes:

- ``file://`` / ``pkg://``: placed by hard link when the store is on the same filesystem (no
  copy at all), else copied once; a directory (a Hugging Face folder) file by file. The
  manifest records each source file's size and mtime, so a later ``up`` on an unchanged model
  only ``stat``s the source: nothing is copied or re-hashed.
- ``hf://``, ``https://``: downloaded by ``models.sources``; a complete entry (manifest present,
  every listed file with its recorded size) is reused without any network access, so
  ``HF_HUB_OFFLINE=1`` works for everything already pulled. ``refresh=True`` checks again.
- ``ollama://``: not stored; an empty per-reference directory is returned so that a plan's
  read-only model mount still has a source.
"""

from __future__ import annotations

import builtins
import datetime as dt
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from llmdeploy.errors import ModelError
from llmdeploy.fileops import link_or_copy
from llmdeploy.models.refs import ModelRef, local_path, parse_ref
from llmdeploy.models.sources.base import (
    MANIFEST,
    PENDING,
    FileRecord,
    Progress,
    files_complete,
    read_manifest,
    sha256_file,
    visible_files,
    write_manifest,
)

if TYPE_CHECKING:
    import httpx

    from llmdeploy.models.sources.hf import HubSettings

_WEIGHT_SUFFIXES = (".safetensors", ".gguf", ".bin", ".pt", ".pth")
_CONVERSION_MANIFEST = "llmdeploy-conversion.json"  # models.convert_gguf's derived folders
_RESERVED = ("_data",)


@dataclass(frozen=True)
class StoredModel:
    ref: str
    directory: Path  # mounted read-only into the container
    filename: str  # the model file inside ``directory`` (or "" for a model directory)
    size_bytes: int
    sha256: str | None
    reused: bool  # True when nothing was copied, downloaded or hashed this time
    revision: str | None = None  # hf://: the commit the files were fetched at
    notes: tuple[str, ...] = ()  # things the user should know (e.g. an unverified download)

    @property
    def path(self) -> Path:
        return self.directory / self.filename if self.filename else self.directory

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "directory": str(self.directory),
            "filename": self.filename,
            "path": str(self.path),
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "revision": self.revision,
            "reused": self.reused,
            "notes": list(self.notes),
        }


class ModelStore:
    def __init__(self, root: Path, *, http_client: httpx.Client | None = None) -> None:
        self.root = root
        self._http_client = http_client  # seam for https:// downloads (tests)

    # --- where things go -------------------------------------------------------------------

    def entry_dir(self, ref: ModelRef, source: Path | None = None) -> Path:
        """The entry directory of ``ref`` (depends on the reference only)."""
        digest = hashlib.sha256(str(ref).encode()).hexdigest()[:10]
        if ref.scheme == "ollama":
            stem = f"ollama-{ref.location.replace(':', '-')}"
        elif ref.scheme == "hf" and not ref.path:
            stem = (ref.repo or "model").split("/")[-1]
        else:
            stem = (source.stem if source is not None else "") or PurePosixPath(
                ref.filename or ref.location
            ).stem
        slug = re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-") or "model"
        return self.root / f"{slug}-{digest}"

    def locate(self, raw_ref: str) -> tuple[Path, str]:
        """Where ``ensure`` puts the model (directory, filename), without fetching anything.

        For remote references the filename is the one the reference names ("" for a
        repository snapshot); local references must exist.
        """
        ref = parse_ref(raw_ref)
        if ref.scheme in ("file", "pkg"):
            source = local_path(ref)
            return self.entry_dir(ref, source), "" if source.is_dir() else source.name
        entry = self.entry_dir(ref)
        manifest = read_manifest(entry)
        if manifest is not None and isinstance(manifest.get("filename"), str):
            return entry, str(manifest["filename"])
        return entry, ref.filename

    def stored(self, raw_ref: str) -> StoredModel | None:
        """The complete stored copy of an hf:// or https:// reference, or None; never fetches.
        (file:// and pkg:// models are read where they are; ollama:// ones are never stored.)"""
        ref = parse_ref(raw_ref)
        if not ref.is_remote:
            return None
        return self._complete_remote(ref, self.entry_dir(ref))

    # --- ensure ----------------------------------------------------------------------------

    def ensure(
        self, raw_ref: str, progress: Progress | None = None, *, refresh: bool = False
    ) -> StoredModel:
        """Make the model available in the store and return where it is.

        ``progress`` receives download progress (remote references only); ``refresh`` makes
        an hf:// or https:// reference check the source again instead of reusing a complete
        entry.
        """
        ref = parse_ref(raw_ref)
        if ref.scheme in ("file", "pkg"):
            source = local_path(ref)
            if source.is_dir():
                return self._ensure_local_dir(ref, source)
            return self._ensure_local_file(ref, source)
        if ref.scheme == "ollama":
            return self._ensure_placeholder(ref)
        return self._ensure_remote(ref, progress, refresh=refresh)

    def _ensure_local_file(self, ref: ModelRef, source: Path) -> StoredModel:
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
            link_or_copy(source, tmp)
            sha = _sha256(tmp)
            os.replace(tmp, target)
            shutil.rmtree(tmp.parent, ignore_errors=True)
            stat = source.stat()
            manifest = {
                "ref": str(ref),
                "scheme": ref.scheme,
                "source": str(source),
                "size_bytes": stat.st_size,
                "mtime_ns": stat.st_mtime_ns,
                "sha256": sha,
                "filename": source.name,
                "files": {source.name: FileRecord(stat.st_size, sha).to_json()},
                "stored_at": _now(),
            }
            write_manifest(entry, manifest)
        except OSError as exc:
            raise _store_error(self.root, source, exc) from exc
        return StoredModel(
            ref=str(ref),
            directory=entry,
            filename=source.name,
            size_bytes=stat.st_size,
            sha256=sha,
            reused=False,
        )

    def _ensure_local_dir(self, ref: ModelRef, source: Path) -> StoredModel:
        """A folder model (config.json + safetensors): every visible file, linked or copied."""
        entry = self.entry_dir(ref, source)
        files = visible_files(source)
        if not any(name.endswith(_WEIGHT_SUFFIXES) for name in files):
            raise ModelError(
                f"{ref}: the directory {source} holds no model weights",
                hint="a Hugging Face folder holds config.json and *.safetensors files",
            )
        stats = {name: path.stat() for name, path in files.items()}
        manifest = _read_manifest(entry)
        recorded = manifest.get("files") if manifest is not None else None
        size = sum(s.st_size for s in stats.values())
        if (
            manifest is not None
            and manifest.get("source") == str(source)
            and isinstance(recorded, Mapping)
            and set(recorded) == set(stats)
            and all(
                isinstance(recorded[name], Mapping)
                and recorded[name].get("size") == st.st_size
                and recorded[name].get("mtime_ns") == st.st_mtime_ns
                for name, st in stats.items()
            )
            and files_complete(entry, recorded)
        ):
            return StoredModel(str(ref), entry, "", size, None, reused=True)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".import-", dir=self.root))
            records: dict[str, Any] = {}
            for name, path in files.items():
                target = tmp / name
                target.parent.mkdir(parents=True, exist_ok=True)
                link_or_copy(path, target)
                records[name] = {
                    "size": stats[name].st_size,
                    "mtime_ns": stats[name].st_mtime_ns,
                    "sha256": _sha256(target),
                }
            write_manifest(
                tmp,
                {
                    "ref": str(ref),
                    "scheme": ref.scheme,
                    "source": str(source),
                    "size_bytes": size,
                    "filename": "",
                    "files": records,
                    "stored_at": _now(),
                },
            )
            for directory in [tmp, *(p for p in tmp.rglob("*") if p.is_dir())]:
                os.chmod(directory, 0o755)
            _replace_dir(tmp, entry)
        except OSError as exc:
            raise _store_error(self.root, source, exc) from exc
        return StoredModel(str(ref), entry, "", size, None, reused=False)

    def _ensure_placeholder(self, ref: ModelRef) -> StoredModel:
        entry = self.entry_dir(ref)
        existed = entry.is_dir()
        try:
            entry.mkdir(parents=True, exist_ok=True)
            os.chmod(entry, 0o755)
        except OSError as exc:
            raise _store_error(self.root, entry, exc) from exc
        return StoredModel(str(ref), entry, "", 0, None, reused=existed)

    def _ensure_remote(
        self, ref: ModelRef, progress: Progress | None, *, refresh: bool
    ) -> StoredModel:
        entry = self.entry_dir(ref)
        stored = self._complete_remote(ref, entry)
        if stored is not None and not refresh:
            return stored
        settings: HubSettings | None = None
        if ref.scheme == "hf":
            from llmdeploy.models.sources import hf

            settings = hf.HubSettings.from_env()
            if settings.offline and stored is not None:
                note = "HF_HUB_OFFLINE is set: used the stored copy without checking for updates"
                return _with_note(stored, note)
            hf.require_online(ref, settings)  # before anything is written
        try:
            entry.mkdir(parents=True, exist_ok=True)
            os.chmod(entry, 0o755)
        except OSError as exc:
            raise _store_error(self.root, entry, exc) from exc
        with _entry_lock(self.root, entry):
            if not refresh:  # another process may have finished it while we waited
                done = self._complete_remote(ref, entry)
                if done is not None:
                    return done
            write_manifest(entry, {"ref": str(ref), "scheme": ref.scheme}, name=PENDING)
            try:
                if settings is not None:
                    manifest, notes = self._fetch_hf(ref, entry, settings, progress)
                else:
                    manifest, notes = self._fetch_https(ref, entry, progress)
                write_manifest(entry, manifest)
            except OSError as exc:
                raise _store_error(self.root, entry, exc) from exc
            (entry / PENDING).unlink(missing_ok=True)
        return _stored_from_manifest(ref, entry, manifest, reused=False, notes=notes)

    def _fetch_hf(
        self, ref: ModelRef, entry: Path, settings: HubSettings, progress: Progress | None
    ) -> tuple[dict[str, Any], tuple[str, ...]]:
        from llmdeploy.models.sources import hf

        result = hf.fetch(ref, entry, settings=settings, progress=progress)
        if not result.filename:
            _prune(entry, keep=set(result.files))  # files a refreshed snapshot no longer has
        single = result.files.get(result.filename) if result.filename else None
        manifest = {
            "ref": str(ref),
            "scheme": "hf",
            "repo": ref.repo,
            "revision": ref.revision,
            "commit": result.commit,
            "endpoint": settings.endpoint,
            "filename": result.filename,
            "files": {name: rec.to_json() for name, rec in result.files.items()},
            "size_bytes": sum(rec.size for rec in result.files.values()),
            "sha256": single.sha256 if single is not None else None,
            "stored_at": _now(),
        }
        return manifest, ()

    def _fetch_https(
        self, ref: ModelRef, entry: Path, progress: Progress | None
    ) -> tuple[dict[str, Any], tuple[str, ...]]:
        from llmdeploy.models.sources import https

        url = ref.url or ref.location
        done = https.download(
            url,
            entry / ref.filename,
            sha256=ref.sha256,
            progress=progress,
            client=self._http_client,
        )
        notes: tuple[str, ...] = ()
        if ref.sha256 is None:
            notes = (
                f"{https.display_url(url)} was not verified (no #sha256= in the reference); "
                f"its sha256 is {done.sha256}: add #sha256={done.sha256} to pin it",
            )
        manifest = {
            "ref": str(ref),
            "scheme": "https",
            "url": https.display_url(url),
            "verified": ref.sha256 is not None,
            "filename": ref.filename,
            "files": {ref.filename: FileRecord(done.size, done.sha256).to_json()},
            "size_bytes": done.size,
            "sha256": done.sha256,
            "stored_at": _now(),
        }
        return manifest, notes

    def _complete_remote(self, ref: ModelRef, entry: Path) -> StoredModel | None:
        manifest = _read_manifest(entry)
        if (
            manifest is None
            or manifest.get("ref") != str(ref)
            or not files_complete(entry, manifest.get("files"))
        ):
            return None
        return _stored_from_manifest(ref, entry, manifest, reused=True)

    # --- list / remove ---------------------------------------------------------------------

    def list(self) -> list[dict[str, object]]:
        """Every entry: its manifest plus ``directory`` and ``complete``; unfinished downloads
        (a pending marker, no manifest) are listed with ``complete: False``."""
        if not self.root.is_dir():
            return []
        entries: list[dict[str, object]] = []
        for entry in sorted(self.root.iterdir()):
            if not entry.is_dir() or entry.name.startswith("."):
                continue
            manifest = _read_manifest(entry)
            if manifest is not None:
                complete = files_complete(entry, manifest.get("files")) or (
                    "files" not in manifest and (entry / str(manifest.get("filename"))).is_file()
                )
                entries.append({"directory": str(entry), **manifest, "complete": complete})
                continue
            pending = read_manifest(entry, PENDING)
            if pending is not None:
                entries.append({"directory": str(entry), **pending, "complete": False})
        return entries

    def remove(self, ref_or_dir: str) -> builtins.list[Path]:
        """Delete a model's entry (by reference, entry directory or entry name) and the folders
        derived from it (``-hf-<dtype>`` conversions); return what was removed.

        A file:// model placed by hard link keeps its source: only the store's link goes.
        """
        if "://" in ref_or_dir:
            ref = parse_ref(ref_or_dir)
            entry = self.entry_dir(ref, _source_if_exists(ref))
            if not entry.is_dir():
                raise ModelError(
                    f"{ref} is not in the model store {self.root}",
                    hint="see what is there: llmdeploy models list",
                )
        else:
            entry = self._entry_by_path(ref_or_dir)
        removed: builtins.list[Path] = []
        derived = sorted(
            p
            for p in self.root.glob(f"{glob_escape(entry.name)}-hf-*")
            if p.is_dir() and (p / _CONVERSION_MANIFEST).is_file()
        )
        for path in [entry, *derived]:
            try:
                shutil.rmtree(path)
            except OSError as exc:
                raise ModelError(f"cannot remove {path}: {exc}") from exc
            removed.append(path)
        return removed

    def _entry_by_path(self, text: str) -> Path:
        candidate = Path(text).expanduser()
        if not candidate.is_absolute() and not candidate.exists():
            candidate = self.root / text
        candidate = candidate.absolute()
        root = self.root.absolute()
        if candidate.parent != root or candidate.name in _RESERVED:
            raise ModelError(
                f"{text} is not an entry of the model store {self.root}",
                hint="pass a model reference or a directory that `llmdeploy models list` shows",
            )
        known = (candidate / MANIFEST).is_file() or (candidate / PENDING).is_file()
        if not candidate.is_dir() or not known:
            raise ModelError(
                f"{candidate} is not a model in the store",
                hint="see what is there: llmdeploy models list",
            )
        return candidate


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def _source_if_exists(ref: ModelRef) -> Path | None:
    if ref.scheme not in ("file", "pkg"):
        return None
    try:
        return local_path(ref)
    except ModelError:
        return None  # the source is gone; its entry name follows from the reference alone


def _stored_from_manifest(
    ref: ModelRef,
    entry: Path,
    manifest: Mapping[str, Any],
    *,
    reused: bool,
    notes: tuple[str, ...] = (),
) -> StoredModel:
    size = manifest.get("size_bytes")
    sha = manifest.get("sha256")
    commit = manifest.get("commit")
    return StoredModel(
        ref=str(ref),
        directory=entry,
        filename=str(manifest.get("filename") or ""),
        size_bytes=size if isinstance(size, int) else 0,
        sha256=sha if isinstance(sha, str) else None,
        reused=reused,
        revision=commit if isinstance(commit, str) else None,
        notes=notes,
    )


def _with_note(stored: StoredModel, note: str) -> StoredModel:
    return StoredModel(
        stored.ref,
        stored.directory,
        stored.filename,
        stored.size_bytes,
        stored.sha256,
        stored.reused,
        stored.revision,
        (*stored.notes, note),
    )


def _prune(entry: Path, keep: set[str]) -> None:
    for name, path in visible_files(entry).items():
        if name not in keep:
            path.unlink()


def _replace_dir(new: Path, entry: Path) -> None:
    """Put ``new`` at ``entry``, moving an older entry aside first (a folder cannot be
    replaced by rename while it has contents)."""
    old: Path | None = None
    if entry.exists():
        old = Path(tempfile.mkdtemp(prefix=".old-", dir=entry.parent)) / entry.name
        os.replace(entry, old)
    os.replace(new, entry)
    if old is not None:
        shutil.rmtree(old.parent, ignore_errors=True)


@contextmanager
def _entry_lock(root: Path, entry: Path) -> Iterator[None]:
    """One download per entry at a time, across processes (two `up`s of the same model)."""
    locks = root / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with (locks / f"{entry.name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _store_error(root: Path, what: Path, exc: OSError) -> ModelError:
    return ModelError(
        f"could not place {what} in the model store {root}: {exc}",
        hint="set LLMDEPLOY_MODEL_STORE to a writable directory with enough space",
    )


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def _read_manifest(entry: Path) -> dict[str, Any] | None:
    return read_manifest(entry)


def _sha256(path: Path) -> str:
    return sha256_file(path)
