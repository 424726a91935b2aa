"""A model as a CNCF ModelPack OCI artifact: the media types, building the config and manifest
for a push, and checking a pulled manifest. Pure: no network, and files are only read (hashed).

Source: the ModelPack specification (github.com/modelpack/model-spec, ``docs/spec.md``,
``docs/config.md``, ``docs/annotations.md`` and ``specs-go/v1/mediatype.go``, release v0.0.7;
unchanged in those parts on main as of 2026-06). What llmdeploy pushes::

    manifest   mediaType   application/vnd.oci.image.manifest.v1+json
               artifactType application/vnd.cncf.model.manifest.v1+json
    config     application/vnd.cncf.model.config.v1+json  (descriptor / config / modelfs)
    layers     one per file, unarchived and uncompressed ("raw"), each annotated with its
               path (org.cncf.model.filepath and org.opencontainers.image.title) and
               org.cncf.model.file.metadata+json:
               application/vnd.cncf.model.weight.v1.raw         .gguf .safetensors .bin .pt .pth
               application/vnd.cncf.model.doc.v1.raw            README*, LICENSE*, NOTICE*, *.md
               application/vnd.cncf.model.weight.config.v1.raw  every other file (config.json,
                                                                tokenizer files, chat templates)

Why raw layers, one per file: the spec recommends weights without compression (they do not
compress), a raw layer's digest is the file's own sha256 (what the store records), and the
readers this artifact is meant for take them as they are:

- Docker Model Runner (github.com/docker/model-runner, ``pkg/distribution/``): accepts the
  config media type above (``distribution/client.go`` ``checkCompat``), recognises a ModelPack
  manifest by ``artifactType`` (``internal/bundle/unpack.go`` ``isCNCFModel``) and then unpacks
  each layer to its ``org.cncf.model.filepath`` (``UnpackFromLayers``); a ``weight.v1.raw``
  layer's format comes from ``config.format`` (``modelpack/types.go``
  ``IsModelPackGenericWeightMediaType``), so ``format`` is always set.
- CRI-O's image volumes (github.com/cri-o/cri-o ``internal/ociartifact/store.go``
  ``BlobMountPaths``): each layer of an artifact becomes one file named by its
  ``org.opencontainers.image.title``, else its ``org.cncf.model.filepath``; hence both.
- oras and ``podman artifact extract`` name files by ``org.opencontainers.image.title``.

A pull accepts the raw layers of any packer, plain and gzip tar layers (``modctl``'s kind:
extracted, regular files only), and Docker Model Runner's older ``weight.v1.gguf`` /
``weight.v1.safetensors``; anything else (zstd, unknown types) is refused by name before a
byte is downloaded. Code and dataset layers are not needed to serve a model and are skipped.

Reproducible: the same files give the same digests (``createdAt`` is the newest file's
modification time, not the time of the push), so pushing an unchanged model again uploads
nothing and moves no tag to a new digest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from llmdeploy.core.model_info import ModelInfo
from llmdeploy.errors import ModelError
from llmdeploy.fileops import sha256_file

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ARTIFACT_TYPE = "application/vnd.cncf.model.manifest.v1+json"
CONFIG = "application/vnd.cncf.model.config.v1+json"
WEIGHT_RAW = "application/vnd.cncf.model.weight.v1.raw"
WEIGHT_CONFIG_RAW = "application/vnd.cncf.model.weight.config.v1.raw"
DOC_RAW = "application/vnd.cncf.model.doc.v1.raw"
# Docker Model Runner's own ModelPack weight types, before the spec had .raw
# (docker/model-runner pkg/distribution/modelpack/types.go: "kept for read-compatibility")
DMR_WEIGHT_GGUF = "application/vnd.cncf.model.weight.v1.gguf"
DMR_WEIGHT_SAFETENSORS = "application/vnd.cncf.model.weight.v1.safetensors"

ANNOTATION_FILEPATH = "org.cncf.model.filepath"
ANNOTATION_FILE_METADATA = "org.cncf.model.file.metadata+json"
ANNOTATION_TITLE = "org.opencontainers.image.title"
ANNOTATION_CREATED = "org.opencontainers.image.created"

_PREFIX = "application/vnd.cncf.model."
_KINDS = ("weight.config", "weight", "doc", "code", "dataset")  # longest first
_SERVED_KINDS = ("weight", "weight.config", "doc")  # code and dataset are skipped
_PACKINGS = {"raw": "raw", "tar": "tar", "tar+gzip": "tar+gzip"}
_WEIGHT_SUFFIXES = (".gguf", ".safetensors", ".bin", ".pt", ".pth")
_DOC_PREFIXES = ("readme", "license", "licence", "notice", "copying")
_TAR_REGULAR_FILE = 48  # tar typeflag '0' (Python's tarfile.REGTYPE == b"0")


@dataclass(frozen=True)
class Blob:
    """An OCI content descriptor: media type, ``sha256:HEX`` digest, size in bytes."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)

    def descriptor(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    @property
    def hex(self) -> str:
        return self.digest.partition(":")[2]


@dataclass(frozen=True)
class LayerFile:
    """One file of a pushed model: its path in the artifact and on disk, and its layer."""

    name: str  # relative POSIX path inside the model (the filepath annotation)
    path: Path
    blob: Blob


@dataclass(frozen=True)
class Artifact:
    """What a push uploads: the layers, the config blob and the manifest (exact bytes)."""

    layers: tuple[LayerFile, ...]
    config: bytes
    config_blob: Blob
    manifest: bytes

    @property
    def manifest_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.manifest).hexdigest()

    @property
    def size_bytes(self) -> int:
        return sum(layer.blob.size for layer in self.layers)


def media_type_for(name: str) -> str:
    """The raw layer media type of a model file, by its name (see the module docstring)."""
    base = PurePosixPath(name).name.lower()
    if base.endswith(_WEIGHT_SUFFIXES):
        return WEIGHT_RAW
    if base.startswith(_DOC_PREFIXES) or base.endswith(".md"):
        return DOC_RAW
    return WEIGHT_CONFIG_RAW


def param_size(parameters: int | None) -> str | None:
    """ModelPack's ``paramSize``: a count with at most one decimal and a scale letter
    (docs/config.md: ``6.7B``, ``100m``); None when unknown. 134,515,008 -> ``134.5M``."""
    if not parameters or parameters <= 0:
        return None
    for scale, letter in ((10**15, "Q"), (10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K")):
        if parameters >= scale:
            return f"{parameters / scale:.1f}".removesuffix(".0") + letter
    return None


def _json_bytes(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _rfc3339(seconds: float) -> str:
    stamp = dt.datetime.fromtimestamp(int(seconds), tz=dt.timezone.utc)
    return stamp.isoformat().replace("+00:00", "Z")


def build_artifact(
    files: Sequence[tuple[str, Path]],
    *,
    model_format: str,
    name: str,
    info: ModelInfo | None = None,
    digests: Mapping[str, str] | None = None,
) -> Artifact:
    """The artifact for ``files`` (relative name, path on disk), in the order given.

    ``model_format``: ``gguf`` or ``safetensors`` (``config.format``); ``name``: the model's
    name (``descriptor.name``, and the manifest's title); ``info``: what ``models inspect``
    read (family, parameters, quantization, precision), when known; ``digests``: sha256 hex
    already known for some names (else each file is hashed). ModelError for an empty list, a
    name that is not a safe relative path, or a name given twice.
    """
    if not files:
        raise ModelError("nothing to push: the model has no files")
    seen: set[str] = set()
    layers: list[LayerFile] = []
    newest = 0.0
    for rel, path in files:
        check_relative_path(rel)
        if rel in seen:
            raise ModelError(f"{rel} is listed twice in the model")
        seen.add(rel)
        st = path.stat()
        newest = max(newest, st.st_mtime)
        hex_digest = (digests or {}).get(rel) or sha256_file(path)
        metadata = {
            "name": PurePosixPath(rel).name,
            "mode": st.st_mode & 0o777,
            "uid": 0,
            "gid": 0,
            "size": st.st_size,
            "mtime": _rfc3339(st.st_mtime),
            "typeflag": _TAR_REGULAR_FILE,
        }
        annotations = {
            ANNOTATION_FILEPATH: rel,
            ANNOTATION_FILE_METADATA: json.dumps(metadata, separators=(",", ":")),
            ANNOTATION_TITLE: rel,
        }
        blob = Blob(media_type_for(rel), f"sha256:{hex_digest}", st.st_size, annotations)
        layers.append(LayerFile(rel, path, blob))
    created = _rfc3339(newest)
    config_doc = _config(layers, model_format=model_format, name=name, info=info, created=created)
    config = _json_bytes(config_doc)
    config_blob = Blob(CONFIG, "sha256:" + hashlib.sha256(config).hexdigest(), len(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": config_blob.descriptor(),
        "layers": [layer.blob.descriptor() for layer in layers],
        "annotations": {ANNOTATION_CREATED: created, ANNOTATION_TITLE: name},
    }
    return Artifact(tuple(layers), config, config_blob, _json_bytes(manifest))


def _config(
    layers: Sequence[LayerFile],
    *,
    model_format: str,
    name: str,
    info: ModelInfo | None,
    created: str,
) -> dict[str, Any]:
    """The ``application/vnd.cncf.model.config.v1+json`` document (docs/config.md):
    ``descriptor`` and ``config`` with what is known, ``modelfs`` with every layer's DiffID
    (a raw layer's DiffID is its digest: it is not compressed)."""
    descriptor: dict[str, Any] = {"createdAt": created, "name": name}
    config: dict[str, Any] = {"format": model_format}
    if info is not None:
        if info.architecture:
            descriptor["family"] = info.architecture
        size = param_size(info.parameters)
        if size:
            config["paramSize"] = size
        if info.quantization:
            config["quantization"] = info.quantization
        if info.torch_dtype:
            config["precision"] = info.torch_dtype
    return {
        "descriptor": descriptor,
        "config": config,
        "modelfs": {"type": "layers", "diffIds": [layer.blob.digest for layer in layers]},
    }


def check_relative_path(name: str) -> None:
    """ModelError unless ``name`` is a relative POSIX path inside the model (no ``..``, no
    absolute path, no empty or hidden component: hidden names are llmdeploy's own files)."""
    parts = name.split("/")
    if (
        not name
        or name.startswith("/")
        or "\\" in name
        or "\0" in name
        or any(p in ("", ".", "..") or p.startswith(".") for p in parts)
    ):
        raise ModelError(
            f"{name!r} is not a file path inside a model (a relative path without '..' or "
            "hidden components)",
            hint="the artifact's org.cncf.model.filepath / org.opencontainers.image.title "
            "annotations must name files inside the model",
        )


# ---------------------------------------------------------------------------------- pulling


@dataclass(frozen=True)
class PulledLayer:
    """A layer a pull fetches: where it goes and how it is packed (``raw`` or a tar)."""

    blob: Blob
    name: str  # raw: the file's relative path; tar: the layer's title (for messages only)
    kind: str  # weight, weight.config or doc
    packing: str  # raw, tar or tar+gzip


@dataclass(frozen=True)
class ModelManifest:
    """A pulled manifest, checked: the layers to fetch, the ones skipped, the config blob."""

    config_blob: Blob
    layers: tuple[PulledLayer, ...]
    skipped: tuple[str, ...]  # "name (media type)" of code and dataset layers

    @property
    def size_bytes(self) -> int:
        return sum(layer.blob.size for layer in self.layers)


def _blob(value: object, where: str) -> Blob:
    if not isinstance(value, dict):
        raise ModelError(f"{where} is not a descriptor object")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    annotations = value.get("annotations") or {}
    if (
        not isinstance(media_type, str)
        or not isinstance(digest, str)
        or not digest.startswith("sha256:")
        or len(digest) != 71
        or not isinstance(size, int)
        or size < 0
        or not isinstance(annotations, dict)
    ):
        raise ModelError(
            f"{where} is not a valid descriptor (mediaType, sha256 digest, size)",
            hint="only sha256 digests are supported",
        )
    return Blob(media_type, digest, size, {str(k): str(v) for k, v in annotations.items()})


def layer_kind(media_type: str) -> tuple[str, str] | None:
    """``(kind, packing)`` of a ModelPack layer media type (``weight``, ``raw``), or None for
    a type this version does not read (zstd, anything not ModelPack's)."""
    if media_type in (DMR_WEIGHT_GGUF, DMR_WEIGHT_SAFETENSORS):
        return "weight", "raw"
    if not media_type.startswith(_PREFIX):
        return None
    rest = media_type[len(_PREFIX) :]
    for kind in _KINDS:
        if rest.startswith(kind + ".v1."):
            packing = _PACKINGS.get(rest[len(kind) + 4 :])
            return (kind, packing) if packing else None
    return None


def parse_manifest(raw: bytes, media_type: str, where: str) -> ModelManifest:
    """Check that ``raw`` is a ModelPack model manifest llmdeploy can pull; ModelError naming
    what is wrong (an image index, a container image, an unknown layer type, a layer without
    a file name) before anything is downloaded."""
    if media_type == OCI_INDEX or media_type.endswith("manifest.list.v2+json"):
        raise ModelError(
            f"{where} is an image index (several manifests), not a model artifact",
            hint="push the model with `llmdeploy models push`, or name one manifest by digest",
        )
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise ModelError(f"{where}: the manifest is not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise ModelError(f"{where}: the manifest is not a JSON object")
    declared = doc.get("mediaType") or media_type
    if declared != OCI_MANIFEST:
        raise ModelError(
            f"{where} is a {declared} manifest, not an OCI image manifest holding a model",
            hint="llmdeploy pulls CNCF ModelPack artifacts (application/vnd.cncf.model.*)",
        )
    config = _blob(doc.get("config"), f"{where}: config")
    artifact_type = doc.get("artifactType")
    if config.media_type != CONFIG or artifact_type not in (None, ARTIFACT_TYPE):
        what = artifact_type or config.media_type
        raise ModelError(
            f"{where} is not a ModelPack model artifact (its type is {what})",
            hint=f"llmdeploy pulls artifacts of type {ARTIFACT_TYPE} with a {CONFIG} config; "
            "push one with `llmdeploy models push`",
        )
    entries = doc.get("layers")
    if not isinstance(entries, list) or not entries:
        raise ModelError(f"{where}: the manifest lists no layers")
    layers: list[PulledLayer] = []
    skipped: list[str] = []
    names: set[str] = set()
    for index, entry in enumerate(entries):
        blob = _blob(entry, f"{where}: layer {index}")
        name = blob.annotations.get(ANNOTATION_FILEPATH) or blob.annotations.get(
            ANNOTATION_TITLE, ""
        )
        kind = layer_kind(blob.media_type)
        if kind is None:
            raise ModelError(
                f"{where}: layer {index} ({name or blob.digest}) has the media type "
                f"{blob.media_type}, which llmdeploy does not read",
                hint="supported: application/vnd.cncf.model.{weight,weight.config,doc}.v1."
                "{raw,tar,tar+gzip}; re-push the model with `llmdeploy models push`",
            )
        if kind[0] not in _SERVED_KINDS:
            skipped.append(f"{name or blob.digest} ({blob.media_type})")
            continue
        if kind[1] == "raw":
            if not name:
                raise ModelError(
                    f"{where}: layer {index} ({blob.digest}) has no file name "
                    f"({ANNOTATION_FILEPATH} or {ANNOTATION_TITLE})",
                    hint="a raw layer is one file; the packer must annotate its path",
                )
            check_relative_path(name)
            if name in names:
                raise ModelError(f"{where}: two layers are both named {name!r}")
            names.add(name)
        layers.append(PulledLayer(blob, name, kind[0], kind[1]))
    if not any(layer.kind == "weight" for layer in layers):
        raise ModelError(f"{where}: the artifact has no weight layer")
    return ModelManifest(config, tuple(layers), tuple(skipped))


def model_file(names: Sequence[str], model_format: str | None) -> str:
    """The file the server is given among a pulled model's files ("" for a folder model).

    A GGUF model: its single GGUF file, or the first part of a split one; a GGUF besides a
    multimodal projector (``mmproj*``): the model, not the projector. A safetensors model
    (``config.format``, or no GGUF at all): the folder. ModelError when several GGUF models
    leave it ambiguous.
    """
    from llmdeploy.core.gguf_split import parse_split_name

    ggufs = sorted(n for n in names if n.lower().endswith(".gguf"))
    if model_format == "safetensors" or not ggufs:
        return ""
    firsts = [n for n in ggufs if (s := parse_split_name(n)) is None or s.index == 1]
    models = [n for n in firsts if not PurePosixPath(n).name.lower().startswith("mmproj")]
    if len(models) == 1:
        return models[0]
    raise ModelError(
        f"the artifact holds {len(models)} GGUF models ({', '.join(models) or 'none'}); "
        "llmdeploy serves one",
        hint="push one model per artifact",
    )


def config_format(raw: bytes) -> str | None:
    """``config.format`` of a ModelPack config blob (None when absent or unreadable)."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    config = doc.get("config") if isinstance(doc, dict) else None
    value = config.get("format") if isinstance(config, dict) else None
    return value.lower() if isinstance(value, str) and value else None


def model_files(source: Path) -> tuple[list[tuple[str, Path]], str]:
    """The files to push for a model at ``source`` and its format.

    A GGUF file: it and, for the first part of a split GGUF, every other part beside it
    (``core.gguf_split``); a folder: every visible file in it (a Hugging Face folder:
    safetensors, config and tokenizer files; or a folder holding one GGUF model). ModelError
    for anything else.
    """
    from llmdeploy.core.gguf_split import local_parts, require_first_part
    from llmdeploy.models.sources.base import visible_files

    if source.is_file():
        if not source.name.lower().endswith(".gguf"):
            raise ModelError(
                f"{source} is not a GGUF file",
                hint="push a .gguf file (the first part of a split one) or a Hugging Face "
                "folder (config.json + *.safetensors)",
            )
        require_first_part(source.name, str(source))
        return [(p.name, p) for p in local_parts(source, str(source))], "gguf"
    if not source.is_dir():
        raise ModelError(f"no such model file or folder: {source}")
    found = visible_files(source)
    if not found:
        raise ModelError(f"{source} holds no files to push")
    names = list(found)
    if any(n.lower().endswith(".safetensors") for n in names):
        if "config.json" not in found:
            raise ModelError(
                f"{source} has safetensors files but no config.json: not a Hugging Face "
                "model folder"
            )
        return sorted(found.items()), "safetensors"
    if any(n.lower().endswith(".gguf") for n in names):
        model_file(names, "gguf")  # exactly one GGUF model in the folder
        return sorted(found.items()), "gguf"
    raise ModelError(
        f"{source} holds neither GGUF nor safetensors weights",
        hint="push a .gguf file or a Hugging Face folder (config.json + *.safetensors)",
    )


__all__ = [
    "ARTIFACT_TYPE",
    "CONFIG",
    "DOC_RAW",
    "OCI_MANIFEST",
    "WEIGHT_CONFIG_RAW",
    "WEIGHT_RAW",
    "Artifact",
    "Blob",
    "LayerFile",
    "ModelManifest",
    "PulledLayer",
    "build_artifact",
    "check_relative_path",
    "config_format",
    "layer_kind",
    "media_type_for",
    "model_file",
    "model_files",
    "param_size",
    "parse_manifest",
]
