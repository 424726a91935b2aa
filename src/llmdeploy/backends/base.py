"""What a backend tells the engine layer: image defaults, argv, env, ports, health, metrics.

Backends describe; they never start anything. ``describe`` is a pure function of the
resolved profile and the place the model is mounted at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from llmdeploy.models.refs import ModelRef
from llmdeploy.profiles.schema import Profile
from llmdeploy.reporting import Reporter

ApiKind = Literal["openai", "ollama"]


@dataclass(frozen=True)
class ModelMount:
    """Where the weights are inside the container."""

    container_dir: str  # e.g. /models
    filename: str  # file inside container_dir ("" when the model is the directory)

    @property
    def container_path(self) -> str:
        return f"{self.container_dir}/{self.filename}" if self.filename else self.container_dir


@dataclass(frozen=True)
class ServerLaunch:
    """Everything needed to start the backend's server in a container."""

    args: tuple[str, ...]  # passed after the image's entrypoint
    container_port: int
    health_path: str
    api: ApiKind
    api_base_path: str  # e.g. /v1
    served_model: str
    metrics_path: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    secret_env: dict[str, str] = field(default_factory=dict)  # container name -> host var name
    cap_add: tuple[str, ...] = ()  # what the server needs back after cap-drop ALL
    shm_size: str | None = None
    ipc_host: bool = False
    # a persistent, writable directory the server keeps state in (e.g. Ollama's models);
    # the plan maps it to a per-deployment directory under the model store
    data_dir: str | None = None


@dataclass(frozen=True)
class BuildRecipe:
    """The built-in Containerfile template of a backend for one accelerator."""

    template: str  # name under llmdeploy/render/templates
    context_files: tuple[str, ...]  # extra template-dir files copied into the build context
    default_tag: str
    variables: dict[str, str]
    # the wheelhouse folder (under the wheelhouse root) copied into the build context's
    # wheels/ so the build needs no network; "" = the root itself
    wheelhouse: str = ""


@dataclass(frozen=True)
class RunningServer:
    """A healthy server, for backends that must prepare it further (e.g. load a model)."""

    base_url: str  # http://host:port
    served_model: str
    model: ModelMount
    model_ref: ModelRef
    profile: Profile
    host_model_path: str | None = None  # the model file in the host's store, if any


DEFAULT_BASE_IMAGE = "docker.io/library/python:3.11-slim-bookworm"


def build_base_image(profile: Profile, *, upstream_image: str) -> str:
    """The BASE_IMAGE of a build: ``build.base_image``, else the Debian Python image for the
    built-in CPU Containerfiles, else the upstream server image (a GPU profile's own
    Containerfile builds on it). The schema refuses a GPU build without its own Containerfile.
    """
    if profile.build is not None and profile.build.base_image:
        return profile.build.base_image
    return DEFAULT_BASE_IMAGE if profile.accelerator == "cpu" else upstream_image


class Backend(Protocol):
    kind: str

    def describe(self, profile: Profile, model: ModelMount) -> ServerLaunch: ...

    def build_recipe(self, profile: Profile) -> BuildRecipe: ...

    def default_image(self, profile: Profile) -> str: ...

    def after_healthy(self, server: RunningServer, reporter: Reporter) -> None:
        """Finish preparing a healthy server (pull or create the model); may raise."""
        ...
