"""What a backend tells the engine layer: image defaults, argv, env, ports, health, metrics.

Backends describe; they never start anything. ``describe`` is a pure function of the
resolved profile and the place the model is mounted at.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from llmdeploy.core.launch import BuildRecipe, ModelMount, ServerLaunch
from llmdeploy.core.model_ref import ModelRef
from llmdeploy.core.plan import DeploymentPlan
from llmdeploy.core.reporting import Reporter
from llmdeploy.profiles.schema import BackendSpec, Profile


@dataclass(frozen=True)
class RunningServer:
    """A healthy server, for backends that must prepare it further (e.g. load a model).

    ``options``: the profile's ``backend`` section, which the backend describes itself by.
    """

    plan: DeploymentPlan
    options: BackendSpec

    @property
    def base_url(self) -> str:
        return self.plan.endpoint

    @property
    def served_model(self) -> str:
        return self.plan.launch.served_model

    @property
    def model(self) -> ModelMount:
        return self.plan.model

    @property
    def model_ref(self) -> ModelRef:
        return self.plan.model_ref

    @property
    def host_model_path(self) -> Path:
        return self.plan.host_model_path


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
