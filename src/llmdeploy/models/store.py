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
  manifest records each source file's size, mtime and inode, so a later ``up`` on an unchanged
  model only ``stat``s the source: nothing is copied or re-hashed.
- ``hf://``, ``https://``: downloaded by ``models.sources``; a complete entry (manifest present,
  every listed file with its recorded size) is reused without any network access, so
  ``HF_HUB_OFFLINE=1`` works for everything already pulled. ``refresh=True`` checks again.
- ``ollama://``: not stored; an empty per-reference directory is returned so that a plan's
  read-only model mount still has a source.

A split GGUF (``NAME-00001-of-0000N.gguf``, see ``models.gguf_split``) is one model of N files:
the reference names the first part, and every part is placed in the entry under its own name
(llama.cpp loads the others from the first one's directory), recorded in the manifest and
checked on reuse. A missing part is refused before anything is written, naming it; so is a
reference to part 2..N, and parts whose ``split.*`` metadata disagrees with their names.

Ownership: the store writes only into entries it made (a manifest or pending marker naming
the same reference, or a new empty directory), never through a symbolic link, and only by
placing a finished file under a temporary name and renaming it (so a hard-linked source is
never modified). ``remove`` deletes only entries that carry llmdeploy's manifest (or pending
marker), are real directories directly inside the store, and are not being written by another
process; it renames the entry aside first, so a half-removed entry never looks complete.
"""

from __future__ import annotations

import builtins
import datetime as dt
import fcntl
import hashlib
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from llmdeploy.core.gguf_split import check_parts, local_parts, part_names, require_first_part
from llmdeploy.core.model_ref import ModelRef, local_path, parse_ref
from llmdeploy.errors import ModelError
from llmdeploy.fileops import link_or_copy
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
# hidden names llmdeploy itself leaves in an entry (temporary folders, download state)
_OWN_HIDDEN = (".import-", ".cache", ".llmdeploy-")


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
    files: tuple[str, ...] = ()  # the model's files in ``directory`` (every part of a split)

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
            "files": list(self.files),
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

    def locate(self, raw_ref: ModelRef | str) -> tuple[Path, str]:
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

    def stored(self, raw_ref: ModelRef | str) -> StoredModel | None:
        """The complete stored copy of an hf:// or https:// reference, or None; never fetches.
        (file:// and pkg:// models are read where they are; ollama:// ones are never stored.)"""
        ref = parse_ref(raw_ref)
        if not ref.is_remote:
            return None
        return self._complete_remote(ref, self.entry_dir(ref))

    # --- ensure ----------------------------------------------------------------------------

    def ensure(
        self, raw_ref: ModelRef | str, progress: Progress | None = None, *, refresh: bool = False
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
        """A GGUF file, or every part of a split GGUF named by its first part."""
        require_first_part(source.name, str(ref))
        sources = local_parts(source, str(ref))
        entry = self.entry_dir(ref, source)
        stats = {path.name: path.stat() for path in sources}
        manifest = _read_manifest(entry)
        if manifest is not None and _local_unchanged(manifest, ref, source, entry, stats):
            return _stored_from_manifest(ref, entry, manifest, reused=True)
        check_parts(sources)  # before anything is written: llama.cpp must be able to load them
        return self._import(ref, source, sources, entry)

    def _import(
        self, ref: ModelRef, source: Path, sources: builtins.list[Path], entry: Path
    ) -> StoredModel:
        """Place ``sources`` in ``entry``: each changed file linked (or copied) under a
        temporary name, hashed, then renamed into place; unchanged ones are kept as they are.
        The manifest is written last."""
        try:
            self._claim(entry, ref)
            entry.mkdir(parents=True, exist_ok=True)
            os.chmod(entry, 0o755)
            with _entry_lock(self.root, entry):
                self._claim(entry, ref)
                old = _read_manifest(entry) or {}
                old_files = old.get("files")
                if not isinstance(old_files, Mapping) or old.get("source") != str(source):
                    old_files = {}
                write_manifest(entry, {"ref": str(ref), "scheme": ref.scheme}, name=PENDING)
                (entry / MANIFEST).unlink(missing_ok=True)  # incomplete until written again
                records: dict[str, dict[str, Any]] = {}
                for path in sources:
                    st = path.stat()
                    kept = old_files.get(path.name)
                    if isinstance(kept, Mapping) and _same_file(kept, st, entry / path.name):
                        records[path.name] = dict(kept)
                        continue
                    records[path.name] = _place(path, entry)
                for name in old_files:  # files an earlier import made that are no longer wanted
                    if name not in records and _safe_name(name):
                        (entry / name).unlink(missing_ok=True)
                first = records[source.name]
                manifest = {
                    "ref": str(ref),
                    "scheme": ref.scheme,
                    "source": str(source),
                    "size_bytes": sum(int(r["size"]) for r in records.values()),
                    "mtime_ns": first["mtime_ns"],
                    "sha256": first["sha256"],
                    "filename": source.name,
                    "files": records,
                    "stored_at": _now(),
                }
                write_manifest(entry, manifest)
                (entry / PENDING).unlink(missing_ok=True)
        except OSError as exc:
            raise _store_error(self.root, source, exc) from exc
        return _stored_from_manifest(ref, entry, manifest, reused=False)

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
        self._claim(entry, ref)
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
        if entry.is_symlink():
            raise _foreign(entry, "a symbolic link")
        existed = entry.is_dir()
        try:
            entry.mkdir(parents=True, exist_ok=True)
            os.chmod(entry, 0o755)
            if _read_manifest(entry) is None:
                # marks the folder as llmdeploy's, so `models rm` may remove it by name too
                write_manifest(
                    entry,
                    {"ref": str(ref), "placeholder": True, "files": {}, "stored_at": _now()},
                )
        except OSError as exc:
            raise _store_error(self.root, entry, exc) from exc
        return StoredModel(str(ref), entry, "", 0, None, reused=existed)

    def _ensure_remote(
        self, ref: ModelRef, progress: Progress | None, *, refresh: bool
    ) -> StoredModel:
        require_first_part(ref.filename, str(ref))
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
        self._claim(entry, ref)
        try:
            entry.mkdir(parents=True, exist_ok=True)
            os.chmod(entry, 0o755)
        except OSError as exc:
            raise _store_error(self.root, entry, exc) from exc
        with _entry_lock(self.root, entry):
            self._claim(entry, ref)
            if not refresh:  # another process may have finished it while we waited
                done = self._complete_remote(ref, entry)
                if done is not None:
                    return done
            pending = read_manifest(entry, PENDING) or {}
            finished = pending.get("finished") if not refresh else None
            try:
                write_manifest(entry, {"ref": str(ref), "scheme": ref.scheme}, name=PENDING)
                old = _read_manifest(entry)
                if settings is not None:
                    manifest, notes = self._fetch_hf(ref, entry, settings, progress, old)
                else:
                    manifest, notes = self._fetch_https(
                        ref, entry, progress, finished if isinstance(finished, Mapping) else {}
                    )
                write_manifest(entry, manifest)
            except OSError as exc:
                raise _store_error(self.root, entry, exc) from exc
            (entry / PENDING).unlink(missing_ok=True)
        return _stored_from_manifest(ref, entry, manifest, reused=False, notes=notes)

    def _fetch_hf(
        self,
        ref: ModelRef,
        entry: Path,
        settings: HubSettings,
        progress: Progress | None,
        old: Mapping[str, Any] | None,
    ) -> tuple[dict[str, Any], tuple[str, ...]]:
        from llmdeploy.models.sources import hf

        result = hf.fetch(ref, entry, settings=settings, progress=progress)
        if result.filename:
            check_parts([entry / name for name in part_names(result.filename)])
        else:  # files an earlier snapshot of this entry had and the refreshed one has not
            listed = old.get("files") if old is not None and old.get("ref") == str(ref) else None
            _prune(entry, listed if isinstance(listed, Mapping) else {}, keep=set(result.files))
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
        self,
        ref: ModelRef,
        entry: Path,
        progress: Progress | None,
        finished: Mapping[str, Any],
    ) -> tuple[dict[str, Any], tuple[str, ...]]:
        """Download the file (every part of a split GGUF, from URLs beside the first one's);
        ``finished`` lists parts an interrupted run completed, which are not fetched again."""
        from llmdeploy.models.sources import https

        url = ref.url or ref.location
        names = part_names(ref.filename)
        urls = {name: https.sibling_url(url, name) for name in names[1:]}
        urls[names[0]] = url
        if len(names) > 1:  # refuse before downloading anything when a part is not there
            missing = [n for n in names[1:] if not https.probe(urls[n], client=self._http_client)]
            if missing:
                raise ModelError(
                    f"{ref}: {names[0]} is the first of {len(names)} parts of a split GGUF "
                    f"model, and {len(missing)} of them are not found beside it: "
                    + ", ".join(https.display_url(urls[n]) for n in missing),
                    hint="every part must be published next to the first one; or download "
                    "the parts into one folder and use file:// with the first part",
                )
        records: dict[str, FileRecord] = {}
        done: dict[str, Any] = {}
        for name in names:
            dest = entry / name
            before = finished.get(name)
            if (
                isinstance(before, Mapping)
                and before.get("url") == https.display_url(urls[name])
                and dest.is_file()
                and dest.stat().st_size == before.get("size")
                and isinstance(before.get("sha256"), str)
            ):
                records[name] = FileRecord(int(before["size"]), str(before["sha256"]))
            else:
                got = https.download(
                    urls[name],
                    dest,
                    sha256=ref.sha256 if name == names[0] else None,
                    progress=progress,
                    client=self._http_client,
                )
                records[name] = FileRecord(got.size, got.sha256)
            done[name] = {**records[name].to_json(), "url": https.display_url(urls[name])}
            write_manifest(
                entry, {"ref": str(ref), "scheme": "https", "finished": done}, name=PENDING
            )
        check_parts([entry / name for name in names])
        first = records[names[0]]
        notes = _https_notes(ref, names, first.sha256 or "", https.display_url(url))
        manifest: dict[str, Any] = {
            "ref": str(ref),
            "scheme": "https",
            "url": https.display_url(url),
            "verified": ref.sha256 is not None,
            "verified_files": [names[0]] if ref.sha256 is not None else [],
            "filename": names[0],
            "files": {name: rec.to_json() for name, rec in records.items()},
            "size_bytes": sum(rec.size for rec in records.values()),
            "sha256": first.sha256,
            "stored_at": _now(),
        }
        if len(names) > 1:
            manifest["urls"] = {name: https.display_url(urls[name]) for name in names}
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
            if entry.is_symlink() or not entry.is_dir() or entry.name.startswith("."):
                continue
            manifest = _read_manifest(entry)
            if manifest is not None:
                complete = manifest.get("placeholder") is True or files_complete(
                    entry, manifest.get("files")
                ) or (
                    "files" not in manifest and (entry / str(manifest.get("filename"))).is_file()
                )
                entries.append({"directory": str(entry), **manifest, "complete": complete})
                continue
            pending = read_manifest(entry, PENDING)
            if pending is not None:
                entries.append({"directory": str(entry), **pending, "complete": False})
        return entries

    def remove(
        self, ref_or_dir: str, guard: Callable[[builtins.list[Path]], None] | None = None
    ) -> builtins.list[Path]:
        """Delete a model's entry (by reference, entry directory or entry name) and the folders
        derived from it (``-hf-<dtype>`` conversions); return what was removed.

        Only what llmdeploy made goes: a real directory directly inside the store carrying its
        manifest (or pending marker) for that reference. Anything else is refused with
        ModelError, as is an entry another process is downloading into. A file:// model placed
        by hard link keeps its source: only the store's link goes. ``guard`` is called with the
        folders about to go, before anything is deleted, and may refuse by raising (the CLI
        refuses folders a running deployment mounts).
        """
        if "://" in ref_or_dir:
            ref = parse_ref(ref_or_dir)
            entry = self.entry_dir(ref, _source_if_exists(ref))
            if not entry.exists() and not entry.is_symlink():
                raise ModelError(
                    f"{ref} is not in the model store {self.root}",
                    hint="see what is there: llmdeploy models list",
                )
            if ref.scheme == "ollama":
                if guard is not None:
                    guard([entry])
                return [self._remove_placeholder(entry)]
            self._check_owned(entry, str(ref))
        else:
            entry = self._entry_by_path(ref_or_dir)
            self._check_owned(entry, None)
        derived = sorted(
            p
            for p in self.root.glob(f"{glob_escape(entry.name)}-hf-*")
            if not p.is_symlink() and p.is_dir() and (p / _CONVERSION_MANIFEST).is_file()
        )
        if guard is not None:
            guard([entry, *derived])
        removed: builtins.list[Path] = []
        with _entry_lock(self.root, entry, wait=False):
            for path in [entry, *derived]:
                _delete_entry(self.root, path)
                removed.append(path)
        return removed

    def _remove_placeholder(self, entry: Path) -> Path:
        """An ollama:// placeholder: an empty directory llmdeploy made (holding at most its
        manifest); never anything more."""
        if entry.is_symlink() or not entry.is_dir():
            raise _foreign(entry, "not a directory")
        try:
            manifest = entry / MANIFEST
            if manifest.is_file() and not manifest.is_symlink():
                others = [p for p in entry.iterdir() if p.name != MANIFEST]
                if not others:
                    manifest.unlink()
            entry.rmdir()
        except OSError as exc:
            raise ModelError(
                f"{entry} is not empty: llmdeploy leaves ollama:// placeholders empty, so "
                "what is in it was put there by something else; it was left alone",
                hint="look inside and remove it by hand if it is yours to delete",
            ) from exc
        return entry

    def _check_owned(self, entry: Path, ref: str | None) -> None:
        """Refuse ``entry`` unless llmdeploy made it (and for ``ref``, when given)."""
        if entry.is_symlink():
            raise _foreign(entry, "a symbolic link")
        if not entry.is_dir():
            raise _foreign(entry, "not a directory")
        if entry.parent.resolve() != self.root.resolve():
            raise _foreign(entry, "outside the model store")
        marker = _read_manifest(entry) or read_manifest(entry, PENDING)
        if marker is None:
            raise _foreign(entry, "without llmdeploy's manifest")
        if ref is not None and marker.get("ref") != ref:
            raise ModelError(
                f"{entry} holds {marker.get('ref')!r}, not {ref}; it was left alone",
                hint="remove it by its entry name (llmdeploy models list shows it)",
            )

    def _claim(self, entry: Path, ref: ModelRef) -> None:
        """Refuse to write into ``entry`` unless llmdeploy made it for ``ref`` (or it is
        absent, or empty)."""
        if entry.is_symlink():
            raise _foreign(entry, "a symbolic link")
        if not entry.exists():
            return
        if not entry.is_dir():
            raise _foreign(entry, "not a directory")
        marker = _read_manifest(entry) or read_manifest(entry, PENDING)
        if marker is not None:
            if marker.get("ref") != str(ref):
                raise ModelError(
                    f"{entry} in the model store holds {marker.get('ref')!r}, not {ref}; "
                    "llmdeploy does not write into it",
                    hint="remove that entry (llmdeploy models rm) and run again",
                )
            return
        if any(not child.name.startswith(_OWN_HIDDEN) for child in entry.iterdir()):
            raise _foreign(entry, "without llmdeploy's manifest")

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
        if not candidate.exists() and not candidate.is_symlink():
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
    files = manifest.get("files")
    return StoredModel(
        ref=str(ref),
        directory=entry,
        filename=str(manifest.get("filename") or ""),
        size_bytes=size if isinstance(size, int) else 0,
        sha256=sha if isinstance(sha, str) else None,
        reused=reused,
        revision=commit if isinstance(commit, str) else None,
        notes=notes,
        files=tuple(files) if isinstance(files, Mapping) else (),
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
        stored.files,
    )


def _prune(entry: Path, listed: Mapping[str, Any], keep: set[str]) -> None:
    """Remove files an earlier download of this entry made (``listed`` in its manifest) that
    ``keep`` no longer has; nothing else in the entry is touched."""
    for name, path in visible_files(entry).items():
        if name in listed and name not in keep and not path.is_symlink():
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
def _entry_lock(root: Path, entry: Path, *, wait: bool = True) -> Iterator[None]:
    """One writer per entry at a time, across processes (two `up`s of the same model);
    ``wait=False`` refuses at once when another process holds the entry."""
    locks = root / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    fd = os.open(locks / f"{entry.name}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "r+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise ModelError(
                f"{entry} is being written by another llmdeploy process (a download or import)",
                hint="wait for it to finish, then run again",
            ) from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _delete_entry(root: Path, path: Path) -> None:
    """Rename ``path`` aside inside the store, then delete it (``rmtree`` removes links, it
    never follows them: a hard-linked or linked-to source stays as it is)."""
    trash = root / f".removing-{path.name}-{secrets.token_hex(4)}"
    try:
        os.replace(path, trash)
    except OSError as exc:
        raise ModelError(f"cannot remove {path}: {exc}") from exc
    try:
        shutil.rmtree(trash)
    except OSError as exc:
        raise ModelError(
            f"removed {path} from the store, but deleting its files failed: {exc}",
            hint=f"delete {trash} by hand",
        ) from exc


def _foreign(entry: Path, what: str) -> ModelError:
    return ModelError(
        f"{entry} is {what}: llmdeploy did not make it, so it is left alone",
        hint="llmdeploy only writes into and removes store entries it made; move it out of "
        "the model store (or delete it yourself if it is yours to delete)",
    )


def _local_unchanged(
    manifest: Mapping[str, Any],
    ref: ModelRef,
    source: Path,
    entry: Path,
    stats: Mapping[str, os.stat_result],
) -> bool:
    """True when the entry holds exactly ``stats``' files as they were imported: each source
    with its recorded size, mtime (and inode), each stored file there with that size."""
    files = manifest.get("files")
    if (
        manifest.get("ref") != str(ref)
        or manifest.get("source") != str(source)
        or not isinstance(files, Mapping)
        or set(files) != set(stats)
    ):
        return False
    for name, st in stats.items():
        record = files[name]
        if not isinstance(record, Mapping):
            return False
        if "mtime_ns" not in record and len(files) == 1:  # manifests before split support
            record = {**record, "mtime_ns": manifest.get("mtime_ns")}
        if not _same_file(record, st, entry / name):
            return False
    return True


def _same_file(record: Mapping[str, Any], st: os.stat_result, stored: Path) -> bool:
    """The source described by ``st`` is the one ``record`` was made from, and ``stored``
    (its copy or link in the entry) is still there with that size."""
    if (
        record.get("size") != st.st_size
        or record.get("mtime_ns") != st.st_mtime_ns
        or record.get("inode", st.st_ino) != st.st_ino
        or not record.get("sha256")
    ):
        return False
    try:
        placed = os.lstat(stored)
    except OSError:
        return False
    return stat.S_ISREG(placed.st_mode) and placed.st_size == st.st_size


def _place(source: Path, entry: Path) -> dict[str, Any]:
    """Link (or copy) ``source`` into ``entry`` under a temporary name, hash it, rename it
    into place; return its manifest record."""
    st = source.stat()
    tmp_dir = Path(tempfile.mkdtemp(prefix=".import-", dir=entry))
    try:
        tmp = tmp_dir / source.name
        link_or_copy(source, tmp)
        sha = _sha256(tmp)
        os.replace(tmp, entry / source.name)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino, "sha256": sha}


def _safe_name(name: str) -> bool:
    parts = Path(name).parts
    return bool(parts) and ".." not in parts and not Path(name).is_absolute()


def _https_notes(
    ref: ModelRef, names: builtins.list[str], sha: str, shown: str
) -> tuple[str, ...]:
    others = len(names) - 1
    if ref.sha256 is None:
        note = (
            f"{shown} was not verified (no #sha256= in the reference); its sha256 is {sha}: "
            f"add #sha256={sha} to pin it"
        )
        if others:
            note += (
                f"; the other {others} parts of this split model were not verified either "
                "(their sha256s are in the manifest: llmdeploy models list --json)"
            )
        return (note,)
    if others:
        return (
            f"#sha256= pins only the first part, {names[0]}; the other {others} parts of this "
            "split model were downloaded unverified (their sha256s are in the manifest: "
            "llmdeploy models list --json)",
        )
    return ()


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
