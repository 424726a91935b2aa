"""The deployment plan: everything every step after planning needs, in one value.

``deploy.plan.plan_deployment`` builds it from a profile; from then on nothing reads the
profile again: the lifecycle starts ``run``, waits on ``health``, runs the backend's post-start
steps; the renderers print ``run``, ``images`` and ``launch.extra_files``; future exporters
(Kubernetes, Quadlet, compose) are more renderers of the same value.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from llmdeploy.core.labels import DeploymentLabels
from llmdeploy.core.launch import BuildRecipe, ModelMount, ServerLaunch
from llmdeploy.core.model_ref import ModelRef
from llmdeploy.core.run_spec import RunSpec


@dataclass(frozen=True)
class ImageChoice:
    """Which image to run: the profile's reference, and the local build to fall back on.

    ``build_stands_in``: the local build may replace ``image`` (it is the build tag itself,
    or the backend's upstream server image, which the local build runs the same argv as).
    An image the user named otherwise (``image: registry.example/llm/edge:1.2``, maybe one
    with the weights baked in) is pulled, never swapped for a local build.
    """

    image: str  # what the profile names (prebuilt), or the build tag
    build_tag: str | None  # tag of the local build, None when the profile cannot build
    recipe: BuildRecipe | None
    custom_containerfile: Path | None
    build_args: dict[str, str]
    build_stands_in: bool = True


@dataclass(frozen=True)
class HealthSpec:
    """How ``up`` decides the server is ready: poll ``url`` every ``interval_s`` seconds, give up
    after ``timeout_s`` seconds."""

    url: str
    timeout_s: float
    interval_s: float


@dataclass(frozen=True)
class DeploymentPlan:
    """One deployment, fully decided: what runs, from which image, where it answers.

    ``run.image`` is the preferred image; ``up`` swaps in the one it really used
    (:meth:`with_image`). ``host_model_dir`` is the store entry mounted read-only at
    ``model.container_dir``; ``host_model_path`` the file in it (the folder for a model that
    is a folder).
    """

    deployment: str
    profile_name: str
    backend: str
    accelerator: str
    model_ref: ModelRef
    model: ModelMount
    host_model_dir: Path
    launch: ServerLaunch
    run: RunSpec
    images: ImageChoice
    labels: DeploymentLabels
    health: HealthSpec

    @property
    def endpoint(self) -> str:
        """``http://host:port`` where the server answers on the host."""
        return self.labels.endpoint

    @property
    def api_base_url(self) -> str:
        """``http://host:port/v1``: the OpenAI-compatible API's base URL."""
        return self.labels.api_base_url

    @property
    def spec_hash(self) -> str:
        return self.labels.spec_hash

    @property
    def host_port(self) -> int:
        return self.run.ports[0].host_port

    @property
    def host_ip(self) -> str:
        return self.run.ports[0].host_ip

    @property
    def host_model_path(self) -> Path:
        return self.host_model_dir / self.model.filename if self.model.filename else (
            self.host_model_dir
        )

    def with_image(self, image: str) -> DeploymentPlan:
        return replace(self, run=replace(self.run, image=image))

    def without_model_mount(self) -> DeploymentPlan:
        """The plan for an image that carries the weights at ``model.container_dir``
        (``llmdeploy build --bake``): the same argv, no bind mount there."""
        mounts = tuple(m for m in self.run.mounts if m.target != self.model.container_dir)
        return replace(self, run=replace(self.run, mounts=mounts))
