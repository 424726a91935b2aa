"""``models push``: a model on this host -> a ModelPack artifact under a tag in a registry.

Order, so that nothing half-pushed is ever tagged: every layer blob (those the registry already
holds are skipped: pushing an unchanged model uploads nothing), then the config blob, and only
then the manifest under the tag. A failure before the manifest leaves the tag as it was
(absent, or the previous version); blobs uploaded so far are untagged and left to the
registry's garbage collection. The digest the registry reports for the manifest must be the
one computed here, else RegistryError.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmdeploy.core.model_ref import ModelRef, model_stem
from llmdeploy.errors import ModelError, RegistryError
from llmdeploy.models.oci.client import Registry, connect
from llmdeploy.models.oci.credentials import RegistryAccess
from llmdeploy.models.oci.modelpack import OCI_MANIFEST, Artifact, build_artifact, model_files
from llmdeploy.models.sources.base import NullProgress, Progress


@dataclass(frozen=True)
class PushedLayer:
    name: str
    media_type: str
    digest: str
    size: int
    uploaded: bool  # False when the registry already had the blob


@dataclass(frozen=True)
class PushResult:
    """What ``models push`` did (``--json``): the reference with its digest, sizes, layers."""

    ref: str
    reference: str  # registry/repo:tag
    digest: str  # the manifest's digest
    size_bytes: int
    uploaded_bytes: int
    layers: tuple[PushedLayer, ...]
    manifest: dict[str, Any]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "reference": self.reference,
            "digest": self.digest,
            "pinned": f"oci://{self.reference.rsplit(':', 1)[0]}@{self.digest}",
            "size_bytes": self.size_bytes,
            "uploaded_bytes": self.uploaded_bytes,
            "layers": [layer.__dict__ for layer in self.layers],
            "manifest": self.manifest,
            "notes": list(self.notes),
        }


def require_tag(target: ModelRef) -> str:
    """The tag a push stores the manifest under; ModelError for a non-oci:// target or one
    pinned by digest only (a push names a tag)."""
    if target.scheme != "oci":
        raise ModelError(
            f"{target}: a push target is an oci:// reference",
            hint="e.g. oci://registry.example/models/smollm2:q4",
        )
    if not target.revision:
        raise ModelError(
            f"{target}: a push needs a tag (the digest is computed from the content)",
            hint=f"oci://{target.registry}/{target.repo}:TAG",
        )
    return target.revision


def prepare(source: Path, *, name: str | None = None) -> tuple[Artifact, tuple[str, ...]]:
    """The artifact for the model at ``source`` (a GGUF file, or a folder), with what
    ``models inspect`` reads of it in the config; notes for what could not be read."""
    from llmdeploy.models.inspect import inspect_path

    files, model_format = model_files(source)
    notes: tuple[str, ...] = ()
    try:
        info = inspect_path(source)
    except ModelError as exc:
        info = None
        notes = (f"the config carries only the format: {exc.message}",)
    title = name or model_stem(source.name)
    return build_artifact(files, model_format=model_format, name=title, info=info), notes


def push(
    source: Path,
    target: ModelRef,
    access: RegistryAccess,
    *,
    name: str | None = None,
    progress: Progress | None = None,
    registry: Registry | None = None,
) -> PushResult:
    """Push the model at ``source`` to ``target`` (see the module docstring).

    ``registry``: a client to use instead of connecting (tests). Raises ModelError for a
    source that is not a model, the RegistryError tree for the registry's refusals.
    """
    import json

    tag = require_tag(target)
    artifact, notes = prepare(source, name=name)
    client = registry if registry is not None else connect(target, access)
    progress = progress or NullProgress()
    layers: list[PushedLayer] = []
    uploaded = 0
    progress.start(artifact.size_bytes, f"push {target.location}")
    try:
        for layer in artifact.layers:
            present = client.blob_exists(layer.blob)
            if not present:
                client.push_blob(layer.blob, layer.path)
                uploaded += layer.blob.size
            progress.advance(layer.blob.size)
            layers.append(
                PushedLayer(
                    layer.name, layer.blob.media_type, layer.blob.digest, layer.blob.size,
                    not present,
                )
            )
        if not client.blob_exists(artifact.config_blob):
            client.push_bytes(artifact.config_blob, artifact.config)
        reported = client.put_manifest(tag, artifact.manifest, OCI_MANIFEST)
    finally:
        progress.finish()
    if reported and reported != artifact.manifest_digest:
        raise RegistryError(
            f"{target}: the registry stored the manifest as {reported}, not as "
            f"{artifact.manifest_digest} (the bytes sent)",
            hint="the registry rewrote the manifest; check it with skopeo inspect --raw",
        )
    return PushResult(
        ref=target.raw,
        reference=f"{target.registry}/{target.repo}:{tag}",
        digest=artifact.manifest_digest,
        size_bytes=artifact.size_bytes,
        uploaded_bytes=uploaded,
        layers=tuple(layers),
        manifest=json.loads(artifact.manifest),
        notes=notes,
    )
