"""The store's typed records: an entry's manifest and pending marker as they are on disk, what
``ensure`` returns (:class:`StoredModel`) and what ``list`` shows (:class:`StoreEntry`).

A manifest is parsed once, where it is read (:func:`read_manifest`): a file that is missing,
not JSON, or not of the manifest's shape counts as absent. Every key a manifest has on disk,
old ones and ones this version does not know included, is kept, and :meth:`Manifest.to_json`
gives back exactly the keys that were read or set (so ``models list --json`` shows what the
file holds). The JSON is written with sorted keys, atomically.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from llmdeploy.fileops import files_have_sizes, read_json_model, write_json_atomic

MANIFEST = ".llmdeploy-model.json"  # written last into an entry: its presence means complete
PENDING = ".llmdeploy-pending.json"  # written before a download starts: names the ref
DATA_DIR = "_data"  # per-deployment state of backends (not a model)
LOCKS_DIR = ".locks"  # one lock file per entry
INSPECT_CACHE_DIR = ".cache/inspect"  # models.inspect's cached results


class StoredFile(BaseModel):
    """One file of an entry: ``size`` in bytes, its ``sha256`` (hex) when known; for a
    file:// source the source's ``mtime_ns`` and ``inode`` when it was placed; for a part of
    an unfinished https:// download, the ``url`` it came from."""

    model_config = ConfigDict(frozen=True, extra="allow")

    size: int
    sha256: str | None = None
    mtime_ns: int | None = None
    inode: int | None = None
    url: str | None = None

    @model_serializer(mode="wrap")
    def _without_nulls(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {key: value for key, value in data.items() if value is not None}


class Manifest(BaseModel):
    """``.llmdeploy-model.json``: what an entry holds and where it came from.

    Every manifest has ``ref``; the rest depends on the scheme (see docs/models.md):
    file:// and pkg:// record ``source`` and each file's size, mtime and inode; hf:// the
    ``repo``, ``revision``, resolved ``commit`` and ``endpoint``; oci:// the ``registry``,
    ``repo`` (repository), ``revision`` (tag) and the manifest's ``digest``; https:// the ``url``,
    ``verified``, ``verified_files`` and a split model's ``urls``; an ollama:// placeholder
    only ``placeholder: true``. ``filename`` is the file the server is given ("" for a
    folder); ``size_bytes`` counts every file; ``sha256`` is the first file's.
    Manifests written before split support have no per-file ``mtime_ns`` (the top-level one
    holds it), and the oldest no ``files`` at all.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    ref: str
    scheme: str | None = None
    filename: str = ""
    files: dict[str, StoredFile] | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    stored_at: str | None = None
    placeholder: bool = False
    # file://, pkg://
    source: str | None = None
    mtime_ns: int | None = None
    # hf://
    repo: str | None = None
    revision: str | None = None
    commit: str | None = None
    endpoint: str | None = None
    # oci:// (``repo`` is the repository, ``revision`` the tag)
    registry: str | None = None
    digest: str | None = None  # the manifest's sha256:HEX
    # https://
    url: str | None = None
    verified: bool | None = None
    verified_files: list[str] | None = None
    urls: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        """The manifest as written: the keys read or set, nothing added."""
        return self.model_dump(mode="json", exclude_unset=True)


class PendingMarker(BaseModel):
    """``.llmdeploy-pending.json``: an entry being written for ``ref``; for https://, the
    ``finished`` parts an interrupted run completed (size, sha256, url), not fetched again."""

    model_config = ConfigDict(frozen=True, extra="allow")

    ref: str
    scheme: str | None = None
    finished: dict[str, StoredFile] | None = None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)


def read_manifest(entry: Path) -> Manifest | None:
    """The manifest of ``entry``, or None when it has none (or one that cannot be read)."""
    return read_json_model(entry / MANIFEST, Manifest)


def read_pending(entry: Path) -> PendingMarker | None:
    """The pending marker of ``entry``, or None."""
    return read_json_model(entry / PENDING, PendingMarker)


def read_marker(entry: Path) -> Manifest | PendingMarker | None:
    """What marks ``entry`` as llmdeploy's: its manifest, else its pending marker, else None."""
    return read_manifest(entry) or read_pending(entry)


def write_manifest(entry: Path, manifest: Manifest) -> None:
    write_json_atomic(entry / MANIFEST, manifest.to_json())


def write_pending(entry: Path, marker: PendingMarker) -> None:
    write_json_atomic(entry / PENDING, marker.to_json())


def files_complete(entry: Path, files: dict[str, StoredFile] | None) -> bool:
    """True when every file a manifest lists exists in ``entry`` with its recorded size."""
    return files is not None and files_have_sizes(entry, {n: r.size for n, r in files.items()})


def now() -> str:
    """The ``stored_at`` timestamp: UTC, ISO 8601, whole seconds."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class StoredModel:
    """A model available in the store: what ``ModelStore.ensure`` returns."""

    ref: str
    directory: Path  # mounted read-only into the container
    filename: str  # the model file inside ``directory`` (or "" for a model directory)
    size_bytes: int
    sha256: str | None
    reused: bool  # True when nothing was copied, downloaded or hashed this time
    revision: str | None = None  # hf://: the commit the files were fetched at
    notes: tuple[str, ...] = ()  # things the user should know (e.g. an unverified download)
    files: tuple[str, ...] = ()  # the model's files in ``directory`` (every part of a split)
    digest: str | None = None  # oci://: the manifest's sha256:HEX

    @classmethod
    def from_manifest(
        cls, entry: Path, manifest: Manifest, *, reused: bool, notes: tuple[str, ...] = ()
    ) -> StoredModel:
        return cls(
            ref=manifest.ref,
            directory=entry,
            filename=manifest.filename,
            size_bytes=manifest.size_bytes or 0,
            sha256=manifest.sha256,
            reused=reused,
            revision=manifest.commit,
            digest=manifest.digest,
            notes=notes,
            files=tuple(manifest.files or ()),
        )

    @property
    def path(self) -> Path:
        return self.directory / self.filename if self.filename else self.directory

    def with_note(self, note: str) -> StoredModel:
        return replace(self, notes=(*self.notes, note))

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``models pull --json``."""
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
            "digest": self.digest,
        }


@dataclass(frozen=True)
class StoreEntry:
    """One entry of the store as ``models list`` shows it: a complete or incomplete model (its
    manifest), an ollama:// placeholder, or an unfinished download (its pending marker)."""

    directory: Path
    record: Manifest | PendingMarker
    complete: bool

    @property
    def ref(self) -> str:
        return self.record.ref

    @property
    def name(self) -> str:
        return self.directory.name

    @property
    def placeholder(self) -> bool:
        return isinstance(self.record, Manifest) and self.record.placeholder

    @property
    def size_bytes(self) -> int | None:
        return self.record.size_bytes if isinstance(self.record, Manifest) else None

    @property
    def version(self) -> str:
        """What pins the content: the hf:// commit, the oci:// manifest digest's hex, else the
        first file's sha256, else ""."""
        if not isinstance(self.record, Manifest):
            return ""
        digest = (self.record.digest or "").partition(":")[2]
        return self.record.commit or digest or self.record.sha256 or ""

    def to_json(self) -> dict[str, Any]:
        """The JSON of ``models list --json``: ``directory``, the manifest's (or pending
        marker's) keys as on disk, and ``complete``."""
        record: dict[str, Any] = _sorted_keys(self.record.to_json())
        return {"directory": str(self.directory), **record, "complete": self.complete}


def _sorted_keys(value: Any) -> Any:
    """``value`` with the keys of every object in sorted order, as manifests are written."""
    if isinstance(value, dict):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    return value
