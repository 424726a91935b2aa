"""The host-side model store: one directory per model, bind-mounted read-only into containers.

Layout (``$LLMDEPLOY_MODEL_STORE``, default ``~/.cache/llmdeploy/models``)::

    <slug>-<sha256(ref)[:10]>/          one entry per reference
        model.gguf | config.json, *.safetensors, tokenizer files ...
        .llmdeploy-model.json           manifest, written last: the entry is complete
        .llmdeploy-pending.json         only while a download is unfinished (names the ref)
        .cache/huggingface/             huggingface_hub's per-file download state (hf://)
    ollama-<name>-<tag>-<digest>/       empty placeholder for ollama:// (Ollama pulls itself)
    <entry>-hf-<dtype>/                 a GGUF converted for vLLM (``models.derive``)
    _data/                              per-deployment state of backends (not models)
    .locks/                             one lock file per entry
    .cache/inspect/                     ``models.inspect``'s cached results

Where each reference goes (one module each):

- ``file://`` / ``pkg://`` (``local``): placed by hard link when the store is on the same
  filesystem, else copied once; a directory (a Hugging Face folder) file by file. An
  unchanged source is only ``stat``ed on the next ``up``.
- ``hf://``, ``https://`` (``remote``): downloaded by ``models.sources``; ``oci://`` pulled
  by ``models.oci`` (a ModelPack artifact, every blob verified by digest); a complete entry
  is reused without any network access. ``refresh=True`` checks again.
- ``ollama://`` (``local``): not stored; an empty per-reference directory is returned so that
  a plan's read-only model mount still has a source.

A split GGUF (``NAME-00001-of-0000N.gguf``, see ``core.gguf_split``) is one model of N files:
the reference names the first part, and every part is placed in the entry under its own name
(llama.cpp loads the others from the first one's directory), recorded in the manifest and
checked on reuse. A missing part is refused before anything is written, naming it; so is a
reference to part 2..N, and parts whose ``split.*`` metadata disagrees with their names.

Ownership (``ownership``): the store writes only into entries it made, never through a
symbolic link, and only by placing a finished file under a temporary name and renaming it;
``remove`` deletes only entries that carry llmdeploy's manifest (or pending marker), are real
directories directly inside the store, and are not being written by another process.

Records (``records``): manifests are typed (:class:`Manifest`), parsed once where read;
``ensure`` returns a :class:`StoredModel`, ``list`` a :class:`StoreEntry` per entry.
"""

from __future__ import annotations

import builtins
import hashlib
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from llmdeploy.core.model_ref import ModelRef, local_path, parse_ref
from llmdeploy.errors import ModelError
from llmdeploy.models.sources.base import Progress
from llmdeploy.models.store import local, ownership, remote
from llmdeploy.models.store.records import (
    DATA_DIR,
    INSPECT_CACHE_DIR,
    MANIFEST,
    PENDING,
    Manifest,
    PendingMarker,
    StoredFile,
    StoredModel,
    StoreEntry,
    files_complete,
    read_manifest,
    read_pending,
)

if TYPE_CHECKING:
    import httpx

    from llmdeploy.models.oci.client import RegistryFactory
    from llmdeploy.models.oci.credentials import RegistryAccess

__all__ = [
    "DATA_DIR",
    "INSPECT_CACHE_DIR",
    "MANIFEST",
    "PENDING",
    "Manifest",
    "ModelStore",
    "PendingMarker",
    "StoreEntry",
    "StoredFile",
    "StoredModel",
]

_RESERVED = (DATA_DIR,)


class ModelStore:
    """The store at ``root``; ``http_client`` is the seam for https:// downloads and
    ``registry_client`` the one for oci:// registries (tests)."""

    def __init__(
        self,
        root: Path,
        *,
        http_client: httpx.Client | None = None,
        registry_client: RegistryFactory | None = None,
    ) -> None:
        self.root = root
        self._http_client = http_client
        self._registry_client = registry_client

    @property
    def data_root(self) -> Path:
        """Where backends that keep state get their per-deployment folders."""
        return self.root / DATA_DIR

    # --- where things go -------------------------------------------------------------------

    def entry_dir(self, ref: ModelRef, source: Path | None = None) -> Path:
        """The entry directory of ``ref`` (depends on the reference only)."""
        digest = hashlib.sha256(str(ref).encode()).hexdigest()[:10]
        if ref.scheme == "ollama":
            stem = f"ollama-{ref.location.replace(':', '-')}"
        elif ref.scheme == "hf" and not ref.path:
            stem = (ref.repo or "model").split("/")[-1]
        elif ref.scheme == "oci":
            stem = f"{ref.leaf}-{ref.revision or (ref.sha256 or '')[:12]}"
        else:
            stem = (source.stem if source is not None else "") or PurePosixPath(
                ref.filename or ref.location
            ).stem
        slug = re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-") or "model"
        return self.root / f"{slug}-{digest}"

    def locate(self, raw_ref: ModelRef | str) -> tuple[Path, str]:
        """Where ``ensure`` puts the model (directory, filename), without fetching anything.

        For remote references the filename is the one the reference names ("" for a
        repository snapshot); local references must exist (ModelError otherwise).
        """
        ref = parse_ref(raw_ref)
        if ref.scheme in ("file", "pkg"):
            source = local_path(ref)
            return self.entry_dir(ref, source), "" if source.is_dir() else source.name
        entry = self.entry_dir(ref)
        manifest = read_manifest(entry)
        if manifest is not None:
            return entry, manifest.filename
        return entry, ref.filename

    def stored(self, raw_ref: ModelRef | str) -> StoredModel | None:
        """The complete stored copy of an hf://, https:// or oci:// reference, or None; never
        fetches.
        (file:// and pkg:// models are read where they are; ollama:// ones are never stored.)"""
        ref = parse_ref(raw_ref)
        if not ref.is_remote:
            return None
        return remote.complete(ref, self.entry_dir(ref))

    def model_path(self, ref_or_path: str) -> Path:
        """The file or folder a reference (or a plain path) names on this host, without
        fetching: a file:// or pkg:// source where it is, an hf:// or https:// model's stored
        copy. ModelError for an ollama:// reference (the Ollama server holds it) and for a
        remote model not pulled yet."""
        if "://" not in ref_or_path:
            return Path(ref_or_path).expanduser()
        ref = parse_ref(ref_or_path)
        if ref.scheme == "ollama":
            raise ModelError(
                "ollama:// models live in the Ollama server, not in llmdeploy's store",
                hint=f"ask the server: ollama show {ref.location}",
            )
        if ref.scheme in ("file", "pkg"):
            return local_path(ref)
        stored = self.stored(ref)
        if stored is None:
            raise ModelError(
                f"{ref} is not in the model store yet",
                hint=f"pull it first: llmdeploy models pull {ref_or_path}",
            )
        return stored.path

    # --- ensure ----------------------------------------------------------------------------

    def ensure(
        self,
        raw_ref: ModelRef | str,
        progress: Progress | None = None,
        *,
        refresh: bool = False,
        registry: RegistryAccess | None = None,
    ) -> StoredModel:
        """Make the model available in the store and return where it is.

        ``progress`` receives download progress (remote references only); ``refresh`` makes
        an hf://, https:// or oci:// reference check the source again instead of reusing a
        complete entry; ``registry``: TLS and credentials for an oci:// reference's registry
        (default: verified HTTPS, the auth files). ModelError for anything that cannot be
        resolved, fetched or placed; the RegistryError tree for a registry's refusals.
        """
        ref = parse_ref(raw_ref)
        if ref.scheme in ("file", "pkg"):
            source = local_path(ref)
            entry = self.entry_dir(ref, source)
            if source.is_dir():
                return local.ensure_dir(self.root, ref, source, entry)
            return local.ensure_file(self.root, ref, source, entry)
        if ref.scheme == "ollama":
            return local.ensure_placeholder(self.root, ref, self.entry_dir(ref))
        return remote.ensure(
            self.root,
            ref,
            self.entry_dir(ref),
            progress,
            refresh=refresh,
            http_client=self._http_client,
            registry=registry,
            registry_client=self._registry_client,
        )

    # --- list / remove ---------------------------------------------------------------------

    def list(self) -> builtins.list[StoreEntry]:
        """Every entry, sorted by directory name; unfinished downloads (a pending marker, no
        manifest) are listed as incomplete. Folders without either are not entries."""
        if not self.root.is_dir():
            return []
        entries: builtins.list[StoreEntry] = []
        for entry in sorted(self.root.iterdir()):
            if entry.is_symlink() or not entry.is_dir() or entry.name.startswith("."):
                continue
            manifest = read_manifest(entry)
            if manifest is not None:
                complete = (
                    manifest.placeholder
                    or files_complete(entry, manifest.files)
                    or (
                        manifest.files is None
                        and bool(manifest.filename)
                        and (entry / manifest.filename).is_file()
                    )
                )
                entries.append(StoreEntry(entry, manifest, complete))
                continue
            pending = read_pending(entry)
            if pending is not None:
                entries.append(StoreEntry(entry, pending, complete=False))
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
                return [ownership.remove_placeholder(entry)]
            ownership.check_owned(self.root, entry, str(ref))
        else:
            entry = self._entry_by_path(ref_or_dir)
            ownership.check_owned(self.root, entry, None)
        from llmdeploy.models.derive import derived_dirs

        derived = derived_dirs(entry)
        if guard is not None:
            guard([entry, *derived])
        return ownership.delete_entries(self.root, [entry, *derived])

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


def _source_if_exists(ref: ModelRef) -> Path | None:
    if ref.scheme not in ("file", "pkg"):
        return None
    try:
        return local_path(ref)
    except ModelError:
        return None  # the source is gone; its entry name follows from the reference alone
