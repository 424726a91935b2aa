"""Fetching hf://, https:// and oci:// models into their store entries.

A complete entry (manifest present, every listed file with its recorded size) is reused
without any network access, so ``HF_HUB_OFFLINE=1`` works for everything already pulled;
``refresh`` checks the source again. While a download runs, the entry carries a pending
marker (for https://, with the parts an interrupted run finished, which are not fetched
again); the manifest is written last.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmdeploy.constants import ENV_HF_HUB_OFFLINE
from llmdeploy.core.gguf_split import check_parts, part_names, require_first_part
from llmdeploy.core.model_ref import ModelRef
from llmdeploy.errors import ModelError
from llmdeploy.models.sources.base import FileRecord, Progress, visible_files
from llmdeploy.models.store import records
from llmdeploy.models.store.ownership import claim, entry_lock, store_error
from llmdeploy.models.store.records import Manifest, PendingMarker, StoredFile, StoredModel

if TYPE_CHECKING:
    import httpx

    from llmdeploy.models.oci.client import Registry, RegistryFactory
    from llmdeploy.models.oci.credentials import RegistryAccess
    from llmdeploy.models.oci.pull import Resolved
    from llmdeploy.models.sources.hf import HubSettings


def complete(ref: ModelRef, entry: Path) -> StoredModel | None:
    """The complete stored copy of ``ref`` in ``entry``, or None; never fetches."""
    manifest = records.read_manifest(entry)
    if (
        manifest is None
        or manifest.ref != str(ref)
        or not records.files_complete(entry, manifest.files)
    ):
        return None
    return StoredModel.from_manifest(entry, manifest, reused=True)


def ensure(
    root: Path,
    ref: ModelRef,
    entry: Path,
    progress: Progress | None,
    *,
    refresh: bool,
    http_client: httpx.Client | None,
    registry: RegistryAccess | None = None,
    registry_client: RegistryFactory | None = None,
) -> StoredModel:
    """The complete entry for ``ref``: reused when complete (and not ``refresh``), else
    fetched (``registry``: how to reach an oci:// reference's registry; ``registry_client``:
    what connects to it, tests only)."""
    require_first_part(ref.filename, str(ref))
    stored = complete(ref, entry)
    if stored is not None and not refresh:
        return stored
    settings: HubSettings | None = None
    if ref.scheme == "hf":
        from llmdeploy.models.sources import hf

        settings = hf.HubSettings.from_env()
        if settings.offline and stored is not None:
            return stored.with_note(
                f"{ENV_HF_HUB_OFFLINE} is set: used the stored copy without checking for updates"
            )
        hf.require_online(ref, settings)  # before anything is written
    oci: tuple[Registry, Resolved] | None = None
    if ref.scheme == "oci":  # reach the registry and check the artifact before writing
        oci = _resolve_oci(ref, registry, registry_client)
    claim(entry, ref)
    try:
        entry.mkdir(parents=True, exist_ok=True)
        os.chmod(entry, 0o755)
    except OSError as exc:
        raise store_error(root, entry, exc) from exc
    with entry_lock(root, entry):
        claim(entry, ref)
        if not refresh:  # another process may have finished it while we waited
            done = complete(ref, entry)
            if done is not None:
                return done
        pending = records.read_pending(entry)
        finished = pending.finished if pending is not None and not refresh else None
        try:
            records.write_pending(entry, PendingMarker(ref=str(ref), scheme=ref.scheme))
            if settings is not None:
                manifest, notes = _fetch_hf(
                    ref, entry, settings, progress, records.read_manifest(entry)
                )
            elif ref.scheme == "oci":
                manifest, notes = _fetch_oci(
                    ref,
                    entry,
                    progress,
                    finished or {},
                    records.read_manifest(entry),
                    oci,
                )
            else:
                manifest, notes = _fetch_https(ref, entry, progress, finished or {}, http_client)
            records.write_manifest(entry, manifest)
        except OSError as exc:
            raise store_error(root, entry, exc) from exc
        (entry / records.PENDING).unlink(missing_ok=True)
    return StoredModel.from_manifest(entry, manifest, reused=False, notes=notes)


def _fetch_hf(
    ref: ModelRef,
    entry: Path,
    settings: HubSettings,
    progress: Progress | None,
    old: Manifest | None,
) -> tuple[Manifest, tuple[str, ...]]:
    from llmdeploy.models.sources import hf

    result = hf.fetch(ref, entry, settings=settings, progress=progress)
    if result.filename:
        check_parts([entry / name for name in part_names(result.filename)])
    else:  # files an earlier snapshot of this entry had and the refreshed one has not
        listed = old.files if old is not None and old.ref == str(ref) else None
        _prune(entry, listed or {}, keep=set(result.files))
    single = result.files.get(result.filename) if result.filename else None
    manifest = Manifest(
        ref=str(ref),
        scheme="hf",
        repo=ref.repo,
        revision=ref.revision,
        commit=result.commit,
        endpoint=settings.endpoint,
        filename=result.filename,
        files={name: _stored_file(rec) for name, rec in result.files.items()},
        size_bytes=sum(rec.size for rec in result.files.values()),
        sha256=single.sha256 if single is not None else None,
        stored_at=records.now(),
    )
    return manifest, ()


def _fetch_https(
    ref: ModelRef,
    entry: Path,
    progress: Progress | None,
    finished: dict[str, StoredFile],
    http_client: httpx.Client | None,
) -> tuple[Manifest, tuple[str, ...]]:
    """Download the file (every part of a split GGUF, from URLs beside the first one's);
    ``finished`` lists parts an interrupted run completed, which are not fetched again."""
    from llmdeploy.models.sources import https

    url = ref.url or ref.location
    names = part_names(ref.filename)
    urls = {name: https.sibling_url(url, name) for name in names[1:]}
    urls[names[0]] = url
    shown = {name: https.display_url(u) for name, u in urls.items()}
    if len(names) > 1:  # refuse before downloading anything when a part is not there
        missing = [n for n in names[1:] if not https.probe(urls[n], client=http_client)]
        if missing:
            raise ModelError(
                f"{ref}: {names[0]} is the first of {len(names)} parts of a split GGUF "
                f"model, and {len(missing)} of them are not found beside it: "
                + ", ".join(shown[n] for n in missing),
                hint="every part must be published next to the first one; or download "
                "the parts into one folder and use file:// with the first part",
            )
    fetched: dict[str, StoredFile] = {}
    done: dict[str, StoredFile] = {}
    for name in names:
        dest = entry / name
        before = finished.get(name)
        if (
            before is not None
            and before.url == shown[name]
            and dest.is_file()
            and dest.stat().st_size == before.size
            and before.sha256 is not None
        ):
            fetched[name] = StoredFile(size=before.size, sha256=before.sha256)
        else:
            got = https.download(
                urls[name],
                dest,
                sha256=ref.sha256 if name == names[0] else None,
                progress=progress,
                client=http_client,
            )
            fetched[name] = StoredFile(size=got.size, sha256=got.sha256)
        done[name] = fetched[name].model_copy(update={"url": shown[name]})
        records.write_pending(entry, PendingMarker(ref=str(ref), scheme="https", finished=done))
    check_parts([entry / name for name in names])
    first = fetched[names[0]]
    notes = _https_notes(ref, names, first.sha256 or "", shown[names[0]])
    fields: dict[str, Any] = {
        "ref": str(ref),
        "scheme": "https",
        "url": shown[names[0]],
        "verified": ref.sha256 is not None,
        "verified_files": [names[0]] if ref.sha256 is not None else [],
        "filename": names[0],
        "files": fetched,
        "size_bytes": sum(rec.size for rec in fetched.values()),
        "sha256": first.sha256,
        "stored_at": records.now(),
    }
    if len(names) > 1:  # a split model's part URLs (a single file's is ``url``)
        fields["urls"] = shown
    return Manifest(**fields), notes


def _resolve_oci(
    ref: ModelRef, access: RegistryAccess | None, factory: RegistryFactory | None
) -> tuple[Registry, Resolved]:
    from llmdeploy.models.oci import pull
    from llmdeploy.models.oci.client import connect
    from llmdeploy.models.oci.credentials import RegistryAccess

    client = (factory or connect)(ref, access or RegistryAccess())
    return client, pull.resolve(client, ref)


def _fetch_oci(
    ref: ModelRef,
    entry: Path,
    progress: Progress | None,
    finished: dict[str, StoredFile],
    old: Manifest | None,
    oci: tuple[Registry, Resolved] | None,
) -> tuple[Manifest, tuple[str, ...]]:
    """Pull the artifact; files an earlier pull of this reference (or an interrupted one)
    placed with the same digest are kept, files the new version no longer has are removed."""
    from llmdeploy.models.oci import pull
    from llmdeploy.models.oci.credentials import RegistryAccess

    assert oci is not None
    client, resolved = oci
    listed = old.files if old is not None and old.ref == str(ref) else None
    known = {**(listed or {}), **finished}
    done: dict[str, StoredFile] = dict(finished)

    def record(name: str, stored: StoredFile) -> None:
        done[name] = stored
        records.write_pending(entry, PendingMarker(ref=str(ref), scheme="oci", finished=done))

    result = pull.fetch(
        ref,
        entry,
        RegistryAccess(),  # unused: the client is connected already
        known=known,
        on_file=record,
        progress=progress,
        registry=client,
        resolved=resolved,
    )
    _prune(entry, listed or {}, keep=set(result.files))
    first = result.files.get(result.filename) if result.filename else None
    manifest = Manifest(
        ref=str(ref),
        scheme="oci",
        registry=ref.registry,
        repo=ref.repo,
        revision=ref.revision,
        digest=result.digest,
        filename=result.filename,
        files=result.files,
        size_bytes=result.size_bytes,
        sha256=first.sha256 if first is not None else None,
        stored_at=records.now(),
    )
    notes = (
        (f"not pulled (not needed to serve the model): {', '.join(result.skipped)}",)
        if result.skipped
        else ()
    )
    return manifest, notes


def _stored_file(record: FileRecord) -> StoredFile:
    return StoredFile(size=record.size, sha256=record.sha256)


def _prune(entry: Path, listed: dict[str, StoredFile], keep: set[str]) -> None:
    """Remove files an earlier download of this entry made (``listed`` in its manifest) that
    ``keep`` no longer has; nothing else in the entry is touched."""
    for name, path in visible_files(entry).items():
        if name in listed and name not in keep and not path.is_symlink():
            path.unlink()


def _https_notes(ref: ModelRef, names: list[str], sha: str, shown: str) -> tuple[str, ...]:
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
