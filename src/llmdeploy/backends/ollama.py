"""Ollama: the official ``ollama/ollama`` image, models created or pulled through its API.

The container runs ``ollama serve`` (the image's entrypoint is ``/bin/ollama``) on port 11434.
Ollama keeps its models in ``/root/.ollama/models`` (``OLLAMA_MODELS``), which the plan maps
to a writable per-deployment directory on the host: models live beside the image, never in
it, and survive ``down`` / ``up``. The GGUF of a ``file://`` / ``pkg://`` / ``hf://`` reference
is mounted read-only at ``/models`` like for every backend.

Once ``/api/version`` answers, ``after_healthy`` makes the served model exist (Ollama 0.32 API,
``docs/api.md``):

- ``ollama://name:tag``: ``POST /api/pull`` (NDJSON progress), then ``POST /api/create`` with
  ``from`` = the pulled model and the profile's parameters, so ``num_ctx`` is always explicit;
- a GGUF file: ``HEAD /api/blobs/sha256:<hex>``, ``POST`` the file from the host's model store
  when the server lacks it, then ``POST /api/create`` with ``files`` = {name: digest} and the
  same parameters, template and system prompt the rendered Modelfile shows;
- then ``POST /api/generate`` with no prompt, which loads the model, so ``up`` returns a
  deployment that answers at once (and a model Ollama cannot load fails ``up``, not a chat).

Errors are translated at this boundary: a model the registry does not know or a file Ollama
refuses is a ModelError, a bad template a ProfileError, an unreachable or failing server an
EndpointError or DeploymentError; the lifecycle then removes the container.

The HTTP calls go through ``OllamaApi``, one small seam over the ``ollama`` Python client (and
httpx for the blob upload, which the client cannot stream with progress or skip when present).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx

from llmdeploy.backends.base import RunningServer
from llmdeploy.backends.ollama_modelfile import (
    MODELFILE,
    ModelDefinition,
    create_body,
    model_definition,
    render_modelfile,
)
from llmdeploy.core.launch import (
    BuildRecipe,
    ModelMount,
    PostStartStep,
    RenderedFile,
    ServerLaunch,
)
from llmdeploy.core.model_ref import ModelRef
from llmdeploy.core.reporting import Reporter
from llmdeploy.core.sizes import format_bytes
from llmdeploy.errors import (
    DeploymentError,
    EndpointError,
    LlmdeployError,
    ModelError,
    ProfileError,
)
from llmdeploy.profiles.schema import OllamaBackend, Profile

OLLAMA_VERSION = "0.32.15"
IMAGE_REPOSITORY = "docker.io/ollama/ollama"
IMAGE_TAGS = {"cpu": OLLAMA_VERSION, "cuda": OLLAMA_VERSION, "rocm": f"{OLLAMA_VERSION}-rocm"}
CONTAINER_PORT = 11434
DATA_DIR = "/root/.ollama"  # $HOME/.ollama of the image's root user: models, keys
MODELS_DIR = f"{DATA_DIR}/models"
HEALTH_PATH = "/api/version"
DEFAULT_TAG = "latest"
HASH_CHUNK = 8 * 1024 * 1024
TIMEOUT = httpx.Timeout(600.0, connect=10.0)  # per read: creating from a big GGUF is quiet

# Ollama model names: [host/][namespace/]model[:tag] (types/model/name.go)
_MODEL_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")  # host (may have a port), namespace


@runtime_checkable
class ByteProgress(Protocol):
    """A reporter that can also show byte progress (the CLI's draws a progress bar)."""

    def progress(self, label: str, completed: int, total: int | None) -> None: ...


def served_model_name(profile: Profile) -> str:
    """The model Ollama serves: ``model.name`` (checked by the schema), else the pulled model's
    ``name:tag``, else the reference's default name in Ollama's spelling (lowercase)."""
    if profile.model.name:
        return profile.model.name
    ref = profile.model.ref
    if ref.scheme == "ollama":
        return ref.ollama_name
    name = re.sub(r"[^a-z0-9_.-]+", "-", ref.default_served_name.lower()).strip("-.") or "model"
    return name[:80]


def definition_for(profile: Profile, model: ModelMount) -> ModelDefinition:
    """The served model as a Modelfile defines it (FROM the mounted GGUF or the pulled model)."""
    return definition_of(_options(profile), served_model_name(profile), profile.model.ref, model)


def definition_of(
    options: OllamaBackend, name: str, ref: ModelRef, model: ModelMount
) -> ModelDefinition:
    """The same definition from the plan's values (after start, the profile is not read)."""
    if ref.scheme == "ollama":
        return model_definition(options, name=name, source=ref.ollama_name, from_file=False)
    return model_definition(options, name=name, source=model.container_path, from_file=True)


def _options(profile: Profile) -> OllamaBackend:
    return _typed(profile.backend)


def _typed(options: object) -> OllamaBackend:
    assert isinstance(options, OllamaBackend)
    return options


def post_start_steps(definition: ModelDefinition) -> tuple[PostStartStep, ...]:
    """What ``up`` does through Ollama's API after start, as commands inside the container (the
    rendered ``commands.sh`` runs these)."""
    steps = []
    if not definition.from_file:
        steps.append(
            PostStartStep(f"pull {definition.source}", ("ollama", "pull", definition.source))
        )
    steps.append(
        PostStartStep(
            f"create the model {definition.name} from ./{MODELFILE}",
            ("ollama", "create", definition.name, "-f", "/dev/stdin"),
            stdin_file=MODELFILE,
        )
    )
    return tuple(steps)


class OllamaServer:
    kind = "ollama"

    def describe(self, profile: Profile, model: ModelMount) -> ServerLaunch:
        options = _options(profile)
        definition = definition_for(profile, model)
        modelfile = render_modelfile(definition, profile_name=profile.name)
        env = {
            "OLLAMA_HOST": f"0.0.0.0:{CONTAINER_PORT}",  # inside the container
            "OLLAMA_MODELS": MODELS_DIR,
            "OLLAMA_KEEP_ALIVE": options.keep_alive,
            "OLLAMA_CONTEXT_LENGTH": str(options.num_ctx),
        }
        if options.num_parallel is not None:
            env["OLLAMA_NUM_PARALLEL"] = str(options.num_parallel)
        return ServerLaunch(
            args=("serve",),
            container_port=CONTAINER_PORT,
            health_path=profile.health.path or HEALTH_PATH,
            api="ollama",
            api_base_path="/v1",  # Ollama's OpenAI-compatible API, which `llmdeploy chat` uses
            served_model=definition.name,
            metrics_path=None,  # Ollama has no Prometheus endpoint
            env=env,
            data_dir=DATA_DIR,
            extra_files=(RenderedFile(MODELFILE, modelfile),),
            post_start=post_start_steps(definition),
        )

    def default_image(self, profile: Profile) -> str:
        return f"{IMAGE_REPOSITORY}:{IMAGE_TAGS[profile.accelerator]}"

    def build_recipe(self, profile: Profile) -> BuildRecipe:
        """Never reached: the schema refuses a build: section for Ollama (profiles.rules)."""
        raise ProfileError("llmdeploy does not build Ollama images")

    def after_healthy(self, server: RunningServer, reporter: Reporter) -> None:
        """Pull or create the served model from its Modelfile definition, then load it."""
        options = _typed(server.options)
        definition = definition_of(options, server.served_model, server.model_ref, server.model)
        api = OllamaApi(server.base_url)
        try:
            if definition.from_file:
                files = {server.model.filename: _upload(api, server, reporter)}
            else:
                reporter.phase("pull", f"Pulling {definition.source} through Ollama")
                _follow(api.pull(definition.source), reporter, failure=_pull_failed(definition))
                files = None
            reporter.phase("create", f"Creating the Ollama model {definition.name}")
            _follow(api.create(create_body(definition, files)), reporter, failure=_create_failed)
            reporter.phase("load", f"Loading {definition.name}")
            api.load(definition.name, options.keep_alive)
        finally:
            api.close()


# -- steps -------------------------------------------------------------------------------------


def _upload(api: OllamaApi, server: RunningServer, reporter: Reporter) -> str:
    path = server.host_model_path
    reporter.phase("blob", f"Hashing {path.name} and sending it to Ollama")
    digest = sha256_digest(path)
    if api.blob_exists(digest):
        reporter.end_phase("skipped", f"Ollama already has {digest[:19]}…; nothing was sent")
        return digest
    api.push_blob(digest, path, _progress_callback(reporter, f"uploading {path.name}"))
    return digest


def sha256_digest(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(HASH_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise ModelError(f"cannot read the model file {path}: {exc}") from exc
    return f"sha256:{digest.hexdigest()}"


def _follow(events: Iterator[dict[str, Any]], reporter: Reporter, *, failure: _Failure) -> None:
    """Show an NDJSON progress stream: status changes as details, bytes as progress."""
    last_status = ""
    bytes_progress = reporter if isinstance(reporter, ByteProgress) else None
    try:
        for event in events:
            status = str(event.get("status") or "")
            total, completed = event.get("total"), event.get("completed")
            if bytes_progress is not None and isinstance(total, int) and total > 0:
                done = completed if isinstance(completed, int) else 0
                bytes_progress.progress(status, done, total)
            elif status and status != last_status:
                size = f" ({_size(total)})" if isinstance(total, int) and total > 0 else ""
                reporter.detail(status + size)
            last_status = status or last_status
    except OllamaApiError as exc:
        raise failure(exc) from exc


class _Failure(Protocol):
    def __call__(self, error: OllamaApiError) -> LlmdeployError: ...


def _pull_failed(definition: ModelDefinition) -> _Failure:
    def failure(error: OllamaApiError) -> LlmdeployError:
        if error.unreachable:
            return _unreachable(error)
        unknown = error.status_code == 404 or "file does not exist" in error.message
        return ModelError(
            f"Ollama could not pull {definition.source}: {error.message}",
            hint="check the name and tag at https://ollama.com/library "
            "(ollama://name:tag); a private registry needs its host in the name"
            if unknown
            else "check that the container can reach the registry (network, proxy, disk space)",
        )

    return failure


def _create_failed(error: OllamaApiError) -> LlmdeployError:
    if error.unreachable:
        return _unreachable(error)
    if error.message.startswith("template error"):
        return ProfileError(
            f"Ollama refused the profile's template: {error.message}",
            hint="backend.template is a Go text/template: check its {{ ... }} actions",
        )
    return ModelError(
        f"Ollama could not create the model: {error.message}",
        hint="Ollama imports GGUF files; check the file (`llmdeploy models inspect`) "
        "and the Modelfile that `llmdeploy render` writes",
    )


def _unreachable(error: OllamaApiError) -> EndpointError:
    return EndpointError(
        f"could not reach Ollama: {error.message}",
        hint="the container may have stopped: `llmdeploy logs` shows why",
    )


def _progress_callback(reporter: Reporter, label: str) -> _Callback:
    if isinstance(reporter, ByteProgress):
        sink = reporter

        def show(completed: int, total: int) -> None:
            sink.progress(label, completed, total)

        return show

    def quiet(completed: int, total: int) -> None:
        if completed == total:
            reporter.detail(f"{label}: {_size(total)}")

    return quiet


class _Callback(Protocol):
    def __call__(self, completed: int, total: int) -> None: ...


def _size(count: object) -> str:
    return format_bytes(count if isinstance(count, int) else 0)


# -- the seam over Ollama's HTTP API -----------------------------------------------------------


@dataclass
class OllamaApiError(Exception):
    """Ollama answered with an error (status -1: inside a 200 stream), or did not answer."""

    message: str
    status_code: int = -1
    unreachable: bool = False

    def __str__(self) -> str:
        return self.message


class OllamaApi:
    """The few Ollama API calls llmdeploy makes, with errors as ``OllamaApiError``."""

    def __init__(self, base_url: str, *, timeout: httpx.Timeout = TIMEOUT) -> None:
        try:
            import ollama
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise DeploymentError(
                "the Ollama backend needs the `ollama` Python package",
                hint="pip install 'llmdeploy[ollama]'",
            ) from exc
        self._base_url = base_url.rstrip("/")
        self._response_error: type[Exception] = ollama.ResponseError
        self._client = ollama.Client(host=self._base_url, timeout=timeout)
        self._http = httpx.Client(base_url=self._base_url, timeout=timeout)

    def close(self) -> None:
        self._http.close()
        self._client.close()  # type: ignore[no-untyped-call]  # ollama leaves it unannotated

    def pull(self, model: str) -> Iterator[dict[str, Any]]:
        return self._stream(lambda: self._client.pull(model, stream=True))

    def create(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """POST /api/create with ``body`` (its JSON keys; ``from`` is ``from_`` in the client)."""
        client = self._client
        return self._stream(
            lambda: client.create(
                model=body["model"],
                from_=body.get("from"),
                files=body.get("files"),
                parameters=body.get("parameters"),
                template=body.get("template"),
                system=body.get("system"),
                stream=True,
            )
        )

    def load(self, model: str, keep_alive: str) -> None:
        """Load the model into memory: /api/generate with no prompt (documented)."""
        try:
            self._client.generate(model=model, keep_alive=_keep_alive(keep_alive))
        except (ConnectionError, httpx.HTTPError, self._response_error) as exc:
            error = self._error(exc)
            if error.unreachable:
                raise _unreachable(error) from exc
            raise DeploymentError(
                f"Ollama could not load {model}: {error.message}",
                hint="see `llmdeploy logs`; a model larger than the container's memory "
                "limit (resources.memory) cannot load",
            ) from exc

    def blob_exists(self, digest: str) -> bool:
        try:
            response = self._http.head(f"/api/blobs/{digest}")
        except httpx.HTTPError as exc:
            raise _unreachable(self._error(exc)) from exc
        return response.status_code == 200

    def push_blob(self, digest: str, path: Path, progress: _Callback) -> None:
        size = path.stat().st_size

        def chunks() -> Iterator[bytes]:
            sent = 0
            with path.open("rb") as handle:
                while chunk := handle.read(1024 * 1024):
                    sent += len(chunk)
                    yield chunk
                    progress(sent, size)

        try:
            response = self._http.post(
                f"/api/blobs/{digest}", content=chunks(), headers={"Content-Length": str(size)}
            )
        except httpx.HTTPError as exc:
            raise _unreachable(self._error(exc)) from exc
        if response.status_code not in (200, 201):
            raise ModelError(
                f"Ollama refused the upload of {path.name}: HTTP {response.status_code} "
                f"{_error_text(response)}",
                hint="the file may have changed while it was sent; run `llmdeploy up` again",
            )

    def _stream(self, start: Callable[[], Iterable[Any]]) -> Iterator[dict[str, Any]]:
        try:
            for part in start():
                yield part.model_dump(exclude_none=True)
        except (ConnectionError, httpx.HTTPError, self._response_error) as exc:
            raise self._error(exc) from exc

    def _error(self, exc: Exception) -> OllamaApiError:
        if isinstance(exc, self._response_error):
            return OllamaApiError(
                str(getattr(exc, "error", exc)), status_code=int(getattr(exc, "status_code", -1))
            )
        return OllamaApiError(f"{self._base_url}: {exc or type(exc).__name__}", unreachable=True)


def _keep_alive(value: str) -> str | float:
    """OLLAMA_KEEP_ALIVE syntax (a Go duration or seconds) as the API's keep_alive takes it."""
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        return text


def _error_text(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    return str(data.get("error", data)) if isinstance(data, dict) else str(data)[:200]
