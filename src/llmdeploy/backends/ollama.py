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
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

from llmdeploy.backends.base import RunningServer
from llmdeploy.backends.ollama_api import ByteCallback, OllamaApi, OllamaApiError, unreachable
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


def ready_path(name: str, health_path: str) -> str:
    """``/v1/models/NAME`` (OpenAI-compatible "retrieve model": 404 until the model exists);
    the health path for a name with a ``/``, which the route cannot take."""
    return health_path if "/" in name else f"/v1/models/{quote(name, safe=':')}"


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
        health = profile.health.path or HEALTH_PATH
        return ServerLaunch(
            args=("serve",),
            container_port=CONTAINER_PORT,
            health_path=health,
            api="ollama",
            api_base_path="/v1",  # Ollama's OpenAI-compatible API, which `llmdeploy chat` uses
            served_model=definition.name,
            metrics_path=None,  # Ollama has no Prometheus endpoint
            env=env,
            data_dir=DATA_DIR,
            extra_files=(RenderedFile(MODELFILE, modelfile),),
            post_start=post_start_steps(definition),
            # /api/version answers at once and models load lazily: ready means the post-start
            # steps created the served model (GET /v1/models/NAME: 404 until then)
            ready_path=profile.probes.ready_path or ready_path(definition.name, health),
            live_path=profile.probes.live_path or health,
            start_s=15,  # the image runs as root and keeps its state under /root (mode 0700)
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
            return unreachable(error)
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
        return unreachable(error)
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


def _progress_callback(reporter: Reporter, label: str) -> ByteCallback:
    if isinstance(reporter, ByteProgress):
        sink = reporter

        def show(completed: int, total: int) -> None:
            sink.progress(label, completed, total)

        return show

    def quiet(completed: int, total: int) -> None:
        if completed == total:
            reporter.detail(f"{label}: {_size(total)}")

    return quiet


def _size(count: object) -> str:
    return format_bytes(count if isinstance(count, int) else 0)

