"""What a backend tells the engine layer: image defaults, argv, env, ports, health, metrics.

Backends describe; they never start anything. ``describe`` is a pure function of the
resolved profile and the place the model is mounted at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from llmdeploy.core.launch import BuildRecipe, ModelMount, ServerLaunch
from llmdeploy.core.model_ref import ModelRef
from llmdeploy.core.reporting import Reporter
from llmdeploy.profiles.schema import Profile


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
