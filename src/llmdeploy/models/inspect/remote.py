"""A model's facts without downloading it: headers read by HTTP Range requests.

``model_facts(ref)`` gives the ``ModelInfo`` of any model reference, reading as little as it
can:

- a local model (a path, ``file://``, ``pkg://``) or a remote one already in the store:
  ``inspect_cached`` on the files (nothing fetched);
- ``https://host/model.gguf`` (every part of a split GGUF): the GGUF header of each part
  (``gguf_header``), fetched by Range requests (``ranged.RemotePrefix``) as far as it reaches;
- ``hf://org/repo[@rev]/file.gguf``: the same, at the commit the revision resolves to. The
  file list (and its sizes) comes from the Hub API (``HfApi.model_info``), file URLs from
  ``hf_hub_url``, the token (``HF_TOKEN``) from ``build_hf_headers``; ``HF_ENDPOINT`` names a
  mirror and ``HF_HUB_OFFLINE`` forbids all of it (``sources.hf.HubSettings``);
- ``hf://org/repo[@rev]``: ``config.json`` (a plain GET), ``model.safetensors.index.json`` when
  there is one, and the 8-byte length + JSON header of every top-level ``.safetensors``
  shard (two small Range requests each, eight shards at a time). A repository of PyTorch
  ``.bin`` weights is sized from config.json and the files' sizes;
- ``ollama://[host/][namespace/]name[:tag]``: the registry's manifest
  (``GET /v2/NAMESPACE/NAME/manifests/TAG``, Ollama's ``server/images.go``; default registry
  ``registry.ollama.ai``, namespace ``library``, as Ollama's ``types/model/name.go``), then
  the GGUF header of its ``application/vnd.ollama.image.model`` layer
  (``GET /v2/NAMESPACE/NAME/blobs/DIGEST``).

``ModelFacts.stats`` says what a remote read cost (requests, bytes) and whether every server
honoured the Range header; a server that does not is read only as far as the header reaches
(``ranged``). Every failure is a ModelError saying which file and why.
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath
from typing import Any

import httpx

from llmdeploy.core.gguf_split import SplitName, parse_split_name, part_names, require_first_part
from llmdeploy.core.model_formats import HF_SNAPSHOT_PATTERNS
from llmdeploy.core.model_info import ModelInfo
from llmdeploy.core.model_ref import ModelRef, local_path, parse_ref
from llmdeploy.errors import ModelError
from llmdeploy.models.inspect.gguf import info_from_metadata
from llmdeploy.models.inspect.gguf_header import GgufHeader, parse_header
from llmdeploy.models.inspect.hf import header_from_reader, info_from_headers, stated_parameters
from llmdeploy.models.inspect.ranged import ReadStats, RemotePrefix, get_json
from llmdeploy.models.sources.hf import HubSettings, require_online
from llmdeploy.models.sources.https import sibling_url

OLLAMA_REGISTRY = "registry.ollama.ai"
OLLAMA_NAMESPACE = "library"
OLLAMA_MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"
SHARD_WORKERS = 8
SAFETENSORS_FIRST_BYTES = 64 * 1024  # most shard headers fit: one request each
_CONFIG = "config.json"
_INDEX = "model.safetensors.index.json"
_FIRST = SplitName("", 1, 1)  # what a plain (unsplit) GGUF name counts as


@dataclass(frozen=True)
class ModelFacts:
    """A model's ``ModelInfo``, where it came from, and what reading it cost.

    ``stats`` is None for a model read on this host. ``file_bytes``: the size of the model's
    files (what a download would fetch), when known."""

    info: ModelInfo
    origin: str
    stats: ReadStats | None = None
    file_bytes: int | None = None

    def read_summary(self) -> dict[str, Any]:
        stats = self.stats
        return {
            "origin": self.origin,
            "header_only": stats is not None,
            "requests": stats.requests if stats else 0,
            "bytes_read": stats.bytes_read if stats else 0,
            "file_bytes": self.file_bytes,
            "range_requests_honoured": stats.ranged if stats else None,
            "notes": list(stats.notes) if stats else [],
        }


def model_facts(
    ref: ModelRef | str,
    *,
    client: httpx.Client | None = None,
    hub: HubSettings | None = None,
    ollama_registry: str | None = None,
) -> ModelFacts:
    """The facts of the model ``ref`` names (a reference, or a plain local path), read without
    downloading it (see the module docstring). ``client``: the HTTP client (default: the
    one downloads use); ``hub``: the Hub settings (default: from the environment);
    ``ollama_registry``: the registry's base URL (default ``https://HOST`` from the name)."""
    if isinstance(ref, str) and "://" not in ref:
        path = Path(ref).expanduser()
        if not path.exists() and len(ref.split("/")) == 2 and not ref.startswith((".", "/")):
            raise ModelError(
                f"no such model file or directory: {ref}",
                hint=f"for the Hugging Face repository, write hf://{ref}",
            )
        return _local(path)
    parsed = parse_ref(ref)
    if parsed.scheme in ("file", "pkg"):
        return _local(local_path(parsed))
    if parsed.is_remote:
        stored = _stored(parsed)
        if stored is not None:
            return stored
    if client is not None:
        return _remote(parsed, client, hub, ollama_registry)
    from llmdeploy.models.sources.https import default_client

    with default_client() as own:
        return _remote(parsed, own, hub, ollama_registry)


def _local(path: Path) -> ModelFacts:
    from llmdeploy.models.inspect import inspect_cached

    info = inspect_cached(path)
    return ModelFacts(info, f"inspected {path}", None, info.total_size_bytes or None)


def _stored(ref: ModelRef) -> ModelFacts | None:
    from llmdeploy.models.inspect import inspect_cached
    from llmdeploy.models.store import ModelStore
    from llmdeploy.paths import model_store_dir

    try:
        stored = ModelStore(model_store_dir()).stored(ref)
    except ModelError:
        return None
    if stored is None:
        return None
    path = stored.directory / stored.filename if stored.filename else stored.directory
    info = inspect_cached(path)
    return ModelFacts(info, f"the stored copy, {path}", None, info.total_size_bytes or None)


def _remote(
    ref: ModelRef, client: httpx.Client, hub: HubSettings | None, registry: str | None
) -> ModelFacts:
    stats = ReadStats()
    if ref.scheme == "https":
        info, how = _https(ref, client, stats)
    elif ref.scheme == "hf":
        info, how = _hub(ref, client, stats, hub or HubSettings.from_env())
    elif ref.scheme == "ollama":
        info, how = _ollama(ref, client, stats, registry)
    else:  # pragma: no cover - parse_ref knows no other scheme
        raise ModelError(f"{ref}: cannot read {ref.scheme}:// models remotely")
    return ModelFacts(info, how, stats, info.total_size_bytes or None)


# --- GGUF ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Part:
    name: str  # the file name, as file_sizes records it
    url: str
    size: int | None  # when the listing said it


def _gguf(
    client: httpx.Client, parts: list[_Part], stats: ReadStats, headers: Mapping[str, str]
) -> ModelInfo:
    """The ModelInfo of a (possibly split) GGUF model from each part's header."""
    read: list[GgufHeader] = []
    sizes: dict[str, int] = {}
    for index, part in enumerate(parts):
        with RemotePrefix(client, part.url, stats, headers=headers) as prefix:
            header = parse_header(prefix, prefix.label)
            size = part.size if part.size is not None else prefix.size
        split_no = header.get("split.no")
        if len(parts) > 1 and isinstance(split_no, int) and split_no != index:
            raise ModelError(
                f"{prefix.label} says it is part {split_no + 1} of its split model, and its "
                f"name says part {index + 1}",
                hint="the parts do not belong together: check the repository or URLs",
            )
        if size is None:
            stats.note(f"{prefix.label}: the server did not say the file's size")
        else:
            sizes[part.name] = size
        read.append(header)
    first = read[0]
    counts: Counter[str] = Counter()
    for header in read:
        counts.update(header.tensor_counts())
    return info_from_metadata(
        first.get,
        counts=counts,
        file_sizes=sizes,
        vocab_tokens=first.array_length("tokenizer.ggml.tokens"),
        has_chat_template="tokenizer.chat_template" in first.fields,
    )


def _require_gguf(ref: ModelRef, name: str, instead: str) -> None:
    if not name.lower().endswith(".gguf"):
        raise ModelError(
            f"{ref}: only GGUF files are read remotely (by their header), not {name!r}",
            hint=instead,
        )
    require_first_part(name, str(ref))


def _https(ref: ModelRef, client: httpx.Client, stats: ReadStats) -> tuple[ModelInfo, str]:
    assert ref.url is not None
    name = ref.filename
    _require_gguf(ref, name, "name a .gguf file; for a Hugging Face model use hf://org/repo")
    parts = [
        _Part(p, ref.url if p == name else sibling_url(ref.url, p), None) for p in part_names(name)
    ]
    info = _gguf(client, parts, stats, {})
    return info, f"GGUF header of {ref.url} (HTTP Range requests)"


# --- Hugging Face Hub ---------------------------------------------------------------------


def _import_hub() -> Any:
    try:
        return importlib.import_module("huggingface_hub")
    except ImportError as exc:
        raise ModelError(
            "hf:// models need the huggingface_hub package, which is not installed",
            hint="huggingface_hub is a dependency of llmdeploy: reinstall llmdeploy",
        ) from exc


def _hub(
    ref: ModelRef, client: httpx.Client, stats: ReadStats, settings: HubSettings
) -> tuple[ModelInfo, str]:
    from llmdeploy import __version__
    from llmdeploy.models.sources.hf import translate_hub_error

    assert ref.repo is not None
    require_online(ref, settings)
    hub = _import_hub()
    revision = ref.revision or "main"
    where = f"{ref.repo}@{revision} on {settings.endpoint}"
    try:
        api = hub.HfApi(endpoint=settings.endpoint, token=settings.token or False)
        listing = api.model_info(ref.repo, revision=revision, files_metadata=True)
        headers = dict(
            hub.utils.build_hf_headers(
                token=settings.token or False,
                library_name="llmdeploy",
                library_version=__version__,
            )
        )
    except Exception as exc:
        raise translate_hub_error(exc, ref, where) from exc
    commit = str(listing.sha)
    sizes: dict[str, int | None] = {
        s.rfilename: getattr(s, "size", None) for s in (listing.siblings or [])
    }

    listed = f" (files listed by {settings.endpoint})"

    def url(path: str) -> str:
        return str(hub.hf_hub_url(ref.repo, path, revision=commit, endpoint=settings.endpoint))

    if ref.path:
        _require_gguf(ref, ref.path, f"name a .gguf file of {ref.repo}, or hf://{ref.repo}")
        names = part_names(ref.path)
        missing = [n for n in names if n not in sizes]
        if missing:
            raise ModelError(
                f"{ref}: the repository has no file {', '.join(missing)} ({where})",
                hint=_gguf_hint(ref, sizes) or "check the file name",
            )
        parts = [_Part(n, url(n), sizes[n]) for n in names]
        info = _gguf(client, parts, stats, headers)
        return info, f"GGUF header of hf://{ref.repo}/{ref.path} at {commit[:12]}{listed}"
    return _hub_snapshot(ref, client, stats, sizes, url, headers, where), (
        f"config.json and safetensors headers of hf://{ref.repo} at {commit[:12]}{listed}"
    )


def _gguf_hint(ref: ModelRef, sizes: Mapping[str, object]) -> str | None:
    ggufs = sorted(
        p
        for p in sizes
        if p.lower().endswith(".gguf") and (parse_split_name(p) or _FIRST).index == 1
    )
    if not ggufs:
        return None
    more = f" (or one of {len(ggufs) - 1} others)" if len(ggufs) > 1 else ""
    return f"name one of its GGUF files: hf://{ref.repo}/{ggufs[0]}{more}"


def _hub_snapshot(
    ref: ModelRef,
    client: httpx.Client,
    stats: ReadStats,
    sizes: Mapping[str, int | None],
    url: Callable[[str], str],
    headers: Mapping[str, str],
    where: str,
) -> ModelInfo:
    top = {p: s for p, s in sizes.items() if "/" not in p}
    shards = sorted(p for p in top if p.endswith(".safetensors"))
    bins = sorted(p for p in top if p.endswith(".bin") and "model" in p)
    if _CONFIG not in top:
        hint = _gguf_hint(ref, sizes) or "a model llmdeploy serves has config.json (vLLM) or GGUF"
        raise ModelError(f"{ref}: no config.json at the top of {where}", hint=hint)
    if not shards and not bins:
        hint = _gguf_hint(ref, sizes) or "vLLM serves safetensors weights"
        raise ModelError(f"{ref}: no top-level .safetensors weights in {where}", hint=hint)
    config = get_json(client, url(_CONFIG), stats, headers=headers, label=f"{ref}/{_CONFIG}")
    if not isinstance(config, dict):
        raise ModelError(f"{ref}/{_CONFIG} does not hold a JSON object")
    stated = None
    if _INDEX in top:
        index = get_json(client, url(_INDEX), stats, headers=headers, label=f"{ref}/{_INDEX}")
        stated = stated_parameters(index) if isinstance(index, dict) else None
    headers_read = _shard_headers(ref, client, stats, shards, url, headers)
    if not shards:
        stats.note("PyTorch .bin weights have no header to read: sized by their files")
    weights = shards or bins
    pulled = [p for p in top if any(fnmatch(p, pattern) for pattern in HF_SNAPSHOT_PATTERNS)]
    file_sizes = {p: s for p in [*pulled, *bins] if (s := top.get(p)) is not None}
    unknown = [p for p in weights if top.get(p) is None]
    if unknown:
        stats.note(f"the Hub listed no size for {', '.join(unknown[:4])}")
    return info_from_headers(
        ref.repo or ref.location,
        headers_read,
        config=config,
        file_sizes=file_sizes,
        stated_parameters=stated,
        has_chat_template=True if "chat_template.jinja" in top else None,
        weights_present=True,
    )


def _shard_headers(
    ref: ModelRef,
    client: httpx.Client,
    stats: ReadStats,
    shards: list[str],
    url: Callable[[str], str],
    headers: Mapping[str, str],
) -> list[dict[str, Any]]:
    """Each shard's safetensors header, several at a time (each with its own counters)."""

    def one(name: str) -> tuple[dict[str, Any], ReadStats]:
        own = ReadStats()
        with RemotePrefix(
            client,
            url(name),
            own,
            headers=headers,
            label=f"{ref}/{name}",
            first_bytes=SAFETENSORS_FIRST_BYTES,
        ) as prefix:
            return header_from_reader(prefix.read, prefix.label), own

    with ThreadPoolExecutor(max_workers=SHARD_WORKERS) as pool:
        results = list(pool.map(one, shards))
    for _, own in results:
        stats.requests += own.requests
        stats.bytes_read += own.bytes_read
        stats.ranged = stats.ranged and own.ranged
        for note in own.notes:
            stats.note(note)
    return [header for header, _ in results]


# --- Ollama registry ----------------------------------------------------------------------


def ollama_blob_base(ref: ModelRef, registry: str | None = None) -> tuple[str, str, str]:
    """(registry base URL, ``namespace/name``, tag) of an ``ollama://`` reference, with
    Ollama's defaults (``registry.ollama.ai``, namespace ``library``, tag ``latest``)."""
    assert ref.repo is not None
    parts = ref.repo.split("/")
    host = parts[0] if len(parts) == 3 else OLLAMA_REGISTRY
    namespace = parts[-2] if len(parts) >= 2 else OLLAMA_NAMESPACE
    base = (registry or f"https://{host}").rstrip("/")
    return base, f"{namespace}/{parts[-1]}", ref.revision or "latest"


def _ollama(
    ref: ModelRef, client: httpx.Client, stats: ReadStats, registry: str | None
) -> tuple[ModelInfo, str]:
    base, name, tag = ollama_blob_base(ref, registry)
    manifest = get_json(
        client,
        f"{base}/v2/{name}/manifests/{tag}",
        stats,
        headers={"Accept": OLLAMA_MANIFEST_TYPE},
        label=f"{ref} (manifest {name}:{tag})",
    )
    layers = manifest.get("layers") if isinstance(manifest, dict) else None
    model = next(
        (
            layer
            for layer in (layers if isinstance(layers, list) else [])
            if isinstance(layer, dict) and layer.get("mediaType") == OLLAMA_MODEL_LAYER
        ),
        None,
    )
    if model is None or not isinstance(model.get("digest"), str):
        raise ModelError(
            f"{ref}: the registry's manifest has no GGUF model layer ({OLLAMA_MODEL_LAYER})",
            hint="plan the model from its GGUF file (hf:// or https://) instead",
        )
    size = model.get("size")
    digest = str(model["digest"])
    part = _Part(
        PurePosixPath(name).name + ".gguf",
        f"{base}/v2/{name}/blobs/{digest}",
        size if isinstance(size, int) else None,
    )
    info = _gguf(client, [part], stats, {})
    return info, f"GGUF header of {ref} ({digest[:19]}) from {base}"
