"""Download from the Hugging Face Hub (or a mirror) into a store entry with ``huggingface_hub``.

``hf://org/repo/file.gguf`` fetches that one file (``hf_hub_download``); ``hf://org/repo`` a
snapshot of the repository's top-level weights, config and tokenizer files
(``snapshot_download`` with ``allow_patterns`` naming exactly those files). Both write into the
entry directory itself (``local_dir``), not into the Hub cache's folder of symbolic links, so
the entry can be bind-mounted into a container as it is.

The requested revision (branch, tag or commit) is resolved once to a commit
(``model_info``), and every file is fetched at that commit: a snapshot never mixes two
commits, and the commit is recorded in the store's manifest.

Settings come from the environment at call time, never from arguments a user could print:
``HF_ENDPOINT`` (a mirror), ``HF_HUB_OFFLINE`` (no network at all: callers use what the store
has), ``HF_TOKEN`` (sent as the Authorization header; never logged, printed or written). A token
saved by ``hf auth login`` is deliberately not used: the environment is the one source.

Resuming: files already complete in the entry are not fetched again (huggingface_hub checks
its per-file metadata under ``.cache/huggingface/``); a transfer cut mid-file is resumed with a
Range request by huggingface_hub's own retries.

Progress: huggingface_hub's own tqdm bars are silenced; the bytes arriving in the entry
directory are measured from outside (a thread polling its size), which works the same for
plain HTTP and Xet transfers and across huggingface_hub versions.

Every huggingface_hub / HTTP exception is translated into ModelError here.
"""

from __future__ import annotations

import importlib
import inspect
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from llmdeploy.constants import (
    ENV_HF_ENDPOINT,
    ENV_HF_HOME,
    ENV_HF_HUB_CACHE,
    ENV_HF_HUB_OFFLINE,
    ENV_HF_TOKEN,
    ENV_TRANSFORMERS_OFFLINE,
)
from llmdeploy.core.gguf_split import part_names, require_first_part
from llmdeploy.core.model_formats import HF_SNAPSHOT_PATTERNS as SNAPSHOT_PATTERNS
from llmdeploy.core.model_ref import ModelRef
from llmdeploy.errors import ModelError
from llmdeploy.fileops import sha256_file
from llmdeploy.models.sources.base import FileRecord, NullProgress, Progress, directory_bytes

DEFAULT_ENDPOINT = "https://huggingface.co"
# The variables huggingface_hub itself reads; llmdeploy reads the same ones, with the same meaning.
ENV_XDG_CACHE_HOME = "XDG_CACHE_HOME"
INSTALL_HINT = "huggingface_hub is a dependency of llmdeploy: reinstall llmdeploy"

_TRUE = ("1", "true", "yes", "on")
_POLL_S = 0.2


@dataclass(frozen=True)
class HubSettings:
    endpoint: str
    offline: bool
    cache_dir: Path  # huggingface_hub's cache: read (a file already there is copied, not fetched)
    token: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HubSettings:
        env = os.environ if environ is None else environ
        offline = any(
            env.get(name, "").strip().lower() in _TRUE
            for name in (ENV_HF_HUB_OFFLINE, ENV_TRANSFORMERS_OFFLINE)
        )
        if env.get(ENV_HF_HUB_CACHE):
            cache = Path(env[ENV_HF_HUB_CACHE])
        else:
            home = env.get(ENV_HF_HOME) or str(
                Path(env.get(ENV_XDG_CACHE_HOME) or Path.home() / ".cache") / "huggingface"
            )
            cache = Path(home) / "hub"
        return cls(
            endpoint=(env.get(ENV_HF_ENDPOINT) or DEFAULT_ENDPOINT).rstrip("/"),
            offline=offline,
            cache_dir=cache.expanduser(),
            token=env.get(ENV_HF_TOKEN) or None,
        )


@dataclass(frozen=True)
class HubDownload:
    commit: str
    filename: str  # the file a single-file reference names, or "" for a snapshot
    files: dict[str, FileRecord]  # path in the entry -> size, sha256 (LFS files, or verified)


@dataclass(frozen=True)
class _RepoFile:
    path: str
    size: int | None
    sha256: str | None  # LFS files only (the Hub knows their sha256)


def fetch(
    ref: ModelRef,
    dest: Path,
    *,
    settings: HubSettings,
    progress: Progress | None = None,
) -> HubDownload:
    """Download what ``ref`` names into ``dest``; ModelError on any failure."""
    if ref.scheme != "hf" or ref.repo is None:
        raise ModelError(f"{ref} is not an hf:// reference")
    progress = progress or NullProgress()
    require_online(ref, settings)
    hub = _import_hub()
    revision = ref.revision or "main"
    where = f"{ref.repo}@{revision} on {settings.endpoint}"
    try:
        api = hub.HfApi(endpoint=settings.endpoint, token=settings.token or False)
        info = api.model_info(ref.repo, revision=revision, files_metadata=True)
    except Exception as exc:
        raise _translate(exc, ref, where) from exc
    commit = str(info.sha)
    repo_files = {
        s.rfilename: _RepoFile(
            s.rfilename,
            getattr(s, "size", None),
            getattr(getattr(s, "lfs", None), "sha256", None),
        )
        for s in (info.siblings or [])
    }
    wanted = _select(ref, repo_files, where)
    total = sum(f.size or 0 for f in wanted) if all(f.size is not None for f in wanted) else None
    dest.mkdir(parents=True, exist_ok=True)
    common: dict[str, Any] = {
        "revision": commit,
        "local_dir": str(dest),
        "cache_dir": str(settings.cache_dir),
        "endpoint": settings.endpoint,
        "token": settings.token or False,
        "tqdm_class": _silent_tqdm_class(),
    }
    label = ref.path or ref.repo
    progress.start(total, label)
    meter = _DirectoryMeter(dest, progress, total)
    meter.start()
    try:
        if ref.path:
            for item in wanted:  # one file, or every part of a split GGUF
                _call(hub.hf_hub_download, ref.repo, filename=item.path, **common)
        else:
            _call(
                hub.snapshot_download,
                ref.repo,
                allow_patterns=[f.path for f in wanted],
                **common,
            )
    except Exception as exc:
        raise _translate(exc, ref, where) from exc
    finally:
        meter.stop()
        progress.finish()
    return HubDownload(commit, ref.path or "", _verify(ref, dest, wanted))


def require_online(ref: ModelRef, settings: HubSettings) -> None:
    """Raise the offline error when HF_HUB_OFFLINE forbids fetching ``ref``."""
    if settings.offline:
        raise ModelError(
            f"{ref} is not in the model store, and {ENV_HF_HUB_OFFLINE} is set",
            hint="pull it on a connected machine (llmdeploy models pull REF) and copy the "
            f"store entry, or unset {ENV_HF_HUB_OFFLINE}",
        )


def _select(ref: ModelRef, repo_files: dict[str, _RepoFile], where: str) -> list[_RepoFile]:
    if ref.path:
        if ref.path in repo_files:
            require_first_part(ref.path, str(ref))
            return [repo_files[p] for p in _split_gguf_parts(ref.path, repo_files)]
        ggufs = sorted(p for p in repo_files if p.lower().endswith(".gguf"))
        raise ModelError(
            f"{ref}: the repository has no file {ref.path!r} ({where})",
            hint=("it holds: " + ", ".join(ggufs[:12])) if ggufs else "check the file name",
        )
    chosen = [
        f
        for path, f in sorted(repo_files.items())
        if "/" not in path and any(fnmatch(path, pattern) for pattern in SNAPSHOT_PATTERNS)
    ]
    if not any(f.path.endswith(".safetensors") for f in chosen):
        ggufs = sorted(p for p in repo_files if p.lower().endswith(".gguf"))
        hint = (
            f"name one of its GGUF files: hf://{ref.repo}/{ggufs[0]}"
            + (f" (or {len(ggufs) - 1} others)" if len(ggufs) > 1 else "")
            if ggufs
            else "llmdeploy serves safetensors (vLLM) or GGUF (llama.cpp, Ollama) models"
        )
        raise ModelError(f"{ref}: no top-level .safetensors weights in {where}", hint=hint)
    return chosen


def _split_gguf_parts(path: str, repo_files: Mapping[str, object]) -> list[str]:
    """``path``, and the other parts when it is the first part of a split GGUF
    (``name-00001-of-00003.gguf``): llama.cpp loads the first and needs the rest beside it.
    Every part must be in the repository (at the resolved commit) before anything is fetched."""
    parts = part_names(path)
    missing = [p for p in parts if p not in repo_files]
    if missing:
        raise ModelError(
            f"{path} is the first of {len(parts)} parts of a split GGUF, and the repository "
            f"lacks {len(missing)} of them: {', '.join(missing)}",
            hint="check the repository's file list; every part is needed to load the model",
        )
    return parts


def _verify(ref: ModelRef, dest: Path, wanted: list[_RepoFile]) -> dict[str, FileRecord]:
    """Check sizes (and the sha256 of a single file) of what arrived; record them."""
    records: dict[str, FileRecord] = {}
    for item in wanted:
        path = dest / item.path
        if not path.is_file():
            raise ModelError(f"{ref}: {item.path} is missing after the download")
        size = path.stat().st_size
        if item.size is not None and size != item.size:
            raise ModelError(
                f"{ref}: {item.path} has {size} bytes, the Hub says {item.size}",
                hint="pull again with --refresh",
            )
        sha = item.sha256
        if ref.path:  # named files: hash them, compare with the Hub's LFS sha256 when known
            sha = sha256_file(path)
            if item.sha256 and sha != item.sha256:
                path.unlink()
                raise ModelError(
                    f"{ref}: checksum mismatch: the Hub lists sha256 {item.sha256}, the "
                    f"downloaded file has {sha}; it was removed",
                    hint="pull again; if it persists, the mirror serves a different file",
                )
        records[item.path] = FileRecord(size, sha)
    return records


def _import_hub() -> Any:
    try:
        return importlib.import_module("huggingface_hub")
    except ImportError as exc:
        raise ModelError(
            "hf:// models need the huggingface_hub package, which is not installed",
            hint=INSTALL_HINT,
        ) from exc


def _call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a huggingface_hub function, leaving out keywords its version does not accept."""
    try:
        accepted = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return func(*args, **kwargs)
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in accepted}
    return func(*args, **kwargs)


def _silent_tqdm_class() -> type[Any] | None:
    try:
        tqdm = importlib.import_module("tqdm.auto").tqdm
    except ImportError:
        return None

    class SilentTqdm(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return SilentTqdm


class _DirectoryMeter:
    """Reports the growth of ``directory`` to ``progress`` from a daemon thread."""

    def __init__(self, directory: Path, progress: Progress, total: int | None) -> None:
        self._directory = directory
        self._progress = progress
        self._total = total
        self._reported = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hf-progress", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._poll()

    def _run(self) -> None:
        while not self._stop.wait(_POLL_S):
            self._poll()

    def _poll(self) -> None:
        now = directory_bytes(self._directory)
        if self._total is not None:
            now = min(now, self._total)
        if now > self._reported:
            self._progress.advance(now - self._reported)
            self._reported = now


def _class_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _translate(exc: Exception, ref: ModelRef, where: str) -> ModelError:
    """A ModelError for an exception raised by huggingface_hub (or its HTTP client).

    Matched by class name, so that it holds across huggingface_hub versions and their HTTP
    clients (requests, httpx).
    """
    if isinstance(exc, ModelError):
        return exc
    names = _class_names(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    token_hint = f"set {ENV_HF_TOKEN} to a token that can read it"
    if "GatedRepoError" in names:
        return ModelError(
            f"{ref}: {ref.repo} is gated ({where})",
            hint=f"accept its licence on the Hub's model page, then {token_hint}",
        )
    if "RepositoryNotFoundError" in names:
        return ModelError(
            f"{ref}: repository {ref.repo} not found, or private ({where})",
            hint=f"check the name; if it is private, {token_hint}",
        )
    if "RevisionNotFoundError" in names:
        return ModelError(
            f"{ref}: revision {ref.revision!r} not found in {ref.repo}",
            hint="use a branch, tag or commit that exists (hf://org/repo@REVISION)",
        )
    if "OfflineModeIsEnabled" in names or "LocalEntryNotFoundError" in names:
        return ModelError(
            f"{ref}: cannot download ({where}): {text}",
            hint=f"check the network, {ENV_HF_ENDPOINT} and {ENV_HF_HUB_OFFLINE}",
        )
    if "EntryNotFoundError" in names:
        return ModelError(f"{ref}: file not found in the repository ({where})")
    if names & {"ConnectError", "ConnectionError", "ConnectTimeout", "Timeout"} or any(
        "Timeout" in n for n in names
    ):
        return ModelError(
            f"{ref}: cannot reach {where}: {text}",
            hint=f"check the network; behind a mirror, set {ENV_HF_ENDPOINT}",
        )
    if "HfHubHTTPError" in names or "HTTPError" in names or "HTTPStatusError" in names:
        return ModelError(f"{ref}: the Hub answered an error ({where}): {text}")
    if isinstance(exc, OSError):
        return ModelError(
            f"{ref}: download failed ({where}): {text}",
            hint="check free disk space in the model store and the network",
        )
    return ModelError(f"{ref}: download failed ({where}): {type(exc).__name__}: {text}")


#: ``_translate`` for other modules that call huggingface_hub (``models.inspect.remote``).
translate_hub_error = _translate
