"""What a backend tells the rest of llmdeploy: how to run its server, and what goes with it.

Backends describe, as data of these types; engines execute a RunSpec built from them; renderers
print them. Nothing here knows a particular backend.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Literal

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
    # files that go with the deployment (Ollama's Modelfile), which `render` writes beside the
    # commands, and commands run in the container once it is healthy (`render` prints them)
    extra_files: tuple[RenderedFile, ...] = ()
    post_start: tuple[PostStartStep, ...] = ()
    # orchestrators' probes: ready means "the model can serve" (default: health_path), live
    # means "the process works" (default: health_path); the startup probe uses ready_path
    ready_path: str | None = None
    live_path: str | None = None
    # what an orchestrator that hardens containers may assume of the server's image:
    # run_as_user: a non-root uid it works as (None: keep the image's own user, often root);
    # read_only_root: it runs on a read-only root filesystem given scratch space at
    # scratch_dirs; start_s: seconds it takes to start, besides reading the weights
    run_as_user: int | None = None
    read_only_root: bool = False
    scratch_dirs: tuple[str, ...] = ("/tmp",)
    start_s: int = 60

    @property
    def readiness_path(self) -> str:
        return self.ready_path or self.health_path

    @property
    def liveness_path(self) -> str:
        return self.live_path or self.health_path


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
class RenderedFile:
    """A file a renderer or backend produces: a path relative to the output folder."""

    path: str
    content: str
    executable: bool = False


@dataclass(frozen=True)
class PostStartStep:
    """A command run inside the container once the server is healthy (the rendered
    ``commands.sh`` runs it with ``podman exec`` / ``docker exec``; ``up`` does the same through
    the backend's API).

    ``stdin_file``: a file of the render bundle fed to the command's standard input.
    """

    description: str
    argv: tuple[str, ...]
    stdin_file: str | None = None


TEMPLATE_PACKAGE = "llmdeploy.render"  # its templates/ folder holds the built-in recipes


def content_tag(
    repository: str,
    version: str,
    *,
    template: str,
    context_files: tuple[str, ...],
    variables: Mapping[str, str],
) -> str:
    """``REPOSITORY:VERSION-DIGEST`` for a built-in recipe: DIGEST is the first 10 hex digits
    of the sha256 of the template, each context file (``llmdeploy/render/templates``, read as
    package data) and the variables. Whatever goes into the image changes the tag, so an image
    built by an older llmdeploy (an older shim, another pinned version) is never run with a
    newer command line: the new tag is simply not there yet, and is built.
    """
    digest = hashlib.sha256()
    for name in (template, *context_files):
        digest.update(name.encode() + b"\0" + _template_bytes(name) + b"\0")
    digest.update(json.dumps(dict(variables), sort_keys=True).encode())
    return f"{repository}:{version}-{digest.hexdigest()[:10]}"


@cache
def _template_bytes(name: str) -> bytes:
    """One built-in template file (package data, a few KiB), read once per process: every
    plan asks for its recipe's tag, some several times."""
    return resources.files(TEMPLATE_PACKAGE).joinpath("templates", name).read_bytes()

