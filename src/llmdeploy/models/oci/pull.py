"""Pulling a ModelPack artifact into a store entry (``models.store.remote`` calls :func:`fetch`).

(Steps 1 and 2 are :func:`resolve`, which the store runs before it makes the entry, so that a
registry that cannot be reached, refused credentials, an unknown tag or an artifact that
cannot be served leave nothing in the store.)

1. the manifest, by the reference's digest when it pins one (the bytes must hash to it), else
   by tag; :func:`modelpack.parse_manifest` refuses what is not a model llmdeploy can serve
   (an image, an index, an unknown layer type, a layer without a file name) before any blob
   is downloaded;
2. the config blob (small), for ``config.format``;
3. each layer, streamed into a hidden ``.oci-*.part`` file in the entry while its sha256 is
   computed, checked against the descriptor's digest and size (a mismatch removes it: the
   registry served other bytes), then renamed to its path: a file under its final name is
   always complete and verified. A raw layer is one file; a tar layer (plain or gzip) is
   extracted, regular files and folders only, each path checked to stay inside the entry.
   A file already in the entry with the layer's digest (an earlier pull of this reference,
   or an interrupted one, ``known``) is not downloaded again.

The entry's files, their sizes and sha256s, the manifest digest and the file the server is
given (``modelpack.model_file``) come back in :class:`OciPull` for the store's manifest.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from llmdeploy.core.gguf_split import check_parts, part_names
from llmdeploy.core.model_ref import ModelRef
from llmdeploy.errors import ModelError
from llmdeploy.fileops import sha256_file
from llmdeploy.models.oci.client import Registry, connect
from llmdeploy.models.oci.credentials import RegistryAccess
from llmdeploy.models.oci.modelpack import (
    Blob,
    ModelManifest,
    PulledLayer,
    check_relative_path,
    config_format,
    model_file,
    parse_manifest,
)
from llmdeploy.models.sources.base import NullProgress, Progress
from llmdeploy.models.store.records import StoredFile

CONFIG_MAX_BYTES = 1 << 20  # a ModelPack config is a few hundred bytes


@dataclass(frozen=True)
class OciPull:
    """What :func:`fetch` placed in the entry."""

    digest: str  # the manifest's, sha256:HEX
    filename: str  # the file the server is given ("" for a folder model)
    files: dict[str, StoredFile]
    model_format: str | None
    skipped: tuple[str, ...]  # code and dataset layers, not pulled

    @property
    def size_bytes(self) -> int:
        return sum(record.size for record in self.files.values())


@dataclass(frozen=True)
class Resolved:
    """A reference's manifest, checked, and its config's ``format``: all a pull needs to
    know before anything is written."""

    digest: str  # the manifest's, sha256:HEX
    manifest: ModelManifest
    model_format: str | None


def resolve(client: Registry, ref: ModelRef) -> Resolved:
    """Steps 1 and 2 of the module docstring: the manifest (by digest or tag) and the config;
    ModelError / the RegistryError tree for what cannot be pulled. Nothing is written."""
    reference = ref.oci_digest or ref.revision or ""
    raw, media_type = client.get_manifest(reference)
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    if ref.oci_digest and digest != ref.oci_digest:
        raise ModelError(
            f"{ref}: the registry answered a manifest whose digest is {digest}",
            hint="the registry (or a proxy) served other content than the digest names",
        )
    manifest = parse_manifest(raw, media_type, str(ref))
    config = _read_small(client, manifest.config_blob, ref)
    return Resolved(digest, manifest, config_format(config))


def fetch(
    ref: ModelRef,
    entry: Path,
    access: RegistryAccess,
    *,
    known: Mapping[str, StoredFile] | None = None,
    on_file: Callable[[str, StoredFile], None] | None = None,
    progress: Progress | None = None,
    registry: Registry | None = None,
    resolved: Resolved | None = None,
) -> OciPull:
    """Pull ``ref`` into ``entry`` (an existing directory the store owns); see the module
    docstring. ``on_file`` is told of each file once it is in place (the store's pending
    marker); ``registry`` replaces the real client (tests); ``resolved``: what
    :func:`resolve` found already (the store resolves before it makes the entry)."""
    progress = progress or NullProgress()
    client = registry if registry is not None else connect(ref, access)
    found = resolved if resolved is not None else resolve(client, ref)
    files: dict[str, StoredFile] = {}
    progress.start(found.manifest.size_bytes, ref.leaf)
    try:
        for layer in found.manifest.layers:
            if layer.packing == "raw":
                record = _raw_layer(client, layer, entry, known or {}, progress, ref)
                placed = {layer.name: record}
            else:
                placed = _tar_layer(client, layer, entry, progress, ref)
            for name, record in placed.items():
                if name in files:
                    raise ModelError(f"{ref}: two layers both hold {name!r}")
                files[name] = record
                if on_file is not None:
                    on_file(name, record)
    finally:
        progress.finish()
    filename = model_file(list(files), found.model_format)
    if filename and len(part_names(filename)) > 1:
        check_parts([entry / name for name in part_names(filename)])
    return OciPull(found.digest, filename, files, found.model_format, found.manifest.skipped)


def _read_small(client: Registry, blob: Blob, ref: ModelRef) -> bytes:
    if blob.size > CONFIG_MAX_BYTES:
        raise ModelError(f"{ref}: the config blob is {blob.size} bytes: not a ModelPack config")
    data = bytearray()
    with client.read_blob(blob) as chunks:
        for chunk in chunks:
            data += chunk
            if len(data) > blob.size:
                break
    _verify(bytes(data), blob, ref, "the config")
    return bytes(data)


def _verify(data: bytes, blob: Blob, ref: ModelRef, what: str) -> None:
    got = "sha256:" + hashlib.sha256(data).hexdigest()
    if len(data) != blob.size or got != blob.digest:
        raise ModelError(
            f"{ref}: {what} does not match its descriptor ({len(data)} bytes, {got}; "
            f"expected {blob.size} bytes, {blob.digest})",
            hint="the registry served other content than the manifest names; pull again",
        )


def _download(
    client: Registry, blob: Blob, part: Path, progress: Progress, ref: ModelRef, what: str
) -> None:
    """Stream ``blob`` into ``part`` (created anew, never through a link) and verify it;
    ``part`` is removed on any failure."""
    part.unlink(missing_ok=True)
    digest = hashlib.sha256()
    received = 0
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as handle, client.read_blob(blob) as chunks:
            for chunk in chunks:
                received += len(chunk)
                if received > blob.size:
                    break
                handle.write(chunk)
                digest.update(chunk)
                progress.advance(len(chunk))
        got = "sha256:" + digest.hexdigest()
        if received != blob.size or got != blob.digest:
            raise ModelError(
                f"{ref}: {what} does not match its descriptor (received {received} bytes, "
                f"{got}; expected {blob.size} bytes, {blob.digest}); it was not kept",
                hint="the registry served other content than the manifest names; pull again",
            )
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def _raw_layer(
    client: Registry,
    layer: PulledLayer,
    entry: Path,
    known: Mapping[str, StoredFile],
    progress: Progress,
    ref: ModelRef,
) -> StoredFile:
    dest = entry / layer.name
    before = known.get(layer.name)
    if (
        before is not None
        and before.sha256 == layer.blob.hex
        and dest.is_file()
        and not dest.is_symlink()
        and dest.stat().st_size == layer.blob.size
    ):
        progress.advance(layer.blob.size)
        return StoredFile(size=layer.blob.size, sha256=layer.blob.hex)
    part = entry / f".oci-{layer.blob.hex[:16]}.part"
    _download(client, layer.blob, part, progress, ref, layer.name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(part, dest)
    return StoredFile(size=layer.blob.size, sha256=layer.blob.hex)


def _tar_layer(
    client: Registry, layer: PulledLayer, entry: Path, progress: Progress, ref: ModelRef
) -> dict[str, StoredFile]:
    """Download a tar layer, then extract its regular files (``.tar`` or ``.tar+gzip``)."""
    part = entry / f".oci-{layer.blob.hex[:16]}.tar.part"
    _download(client, layer.blob, part, progress, ref, layer.name or layer.blob.digest)
    placed: dict[str, StoredFile] = {}
    try:
        with tarfile.open(part, "r:gz" if layer.packing == "tar+gzip" else "r:") as archive:
            for member in archive:
                name = member.name.removeprefix("./").rstrip("/")
                if member.isdir() or not name:
                    continue
                if not member.isfile():
                    raise ModelError(
                        f"{ref}: layer {layer.blob.digest[:19]} holds {member.name!r}, which "
                        "is not a regular file (links and devices are refused)"
                    )
                check_relative_path(name)
                source = archive.extractfile(member)
                if source is None:
                    continue
                dest = entry / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                temp = dest.with_name(f".{dest.name}.oci-extract")
                temp.unlink(missing_ok=True)
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
                with os.fdopen(fd, "wb") as handle, source:
                    shutil.copyfileobj(source, handle, 1 << 20)
                os.replace(temp, dest)
                placed[name] = StoredFile(size=dest.stat().st_size, sha256=sha256_file(dest))
    except tarfile.TarError as exc:
        raise ModelError(
            f"{ref}: layer {layer.blob.digest[:19]} is not a readable tar: {exc}"
        ) from exc
    finally:
        part.unlink(missing_ok=True)
    return placed
