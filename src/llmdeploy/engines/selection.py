"""Pick and connect an engine: by name, or ``auto`` (Podman, then Docker)."""

from __future__ import annotations

import os
import shutil

from llmdeploy.constants import ENV_ENGINE
from llmdeploy.engines.base import Engine
from llmdeploy.errors import EngineUnavailableError

ENGINE_NAMES = ("podman", "docker")


def connect(name: str) -> Engine:
    if name == "podman":
        from llmdeploy.engines.podman_engine import PodmanEngine

        return PodmanEngine()
    if name == "docker":
        from llmdeploy.engines.docker_engine import DockerEngine

        return DockerEngine()
    raise EngineUnavailableError(f"unknown engine {name!r}", hint="use podman, docker or auto")


def open_engine(requested: str) -> Engine:
    """Connect to the requested engine; ``auto`` tries Podman, then Docker.

    ``LLMDEPLOY_ENGINE`` overrides the profile's choice.
    """
    choice = os.environ.get(ENV_ENGINE) or requested
    if choice != "auto":
        if shutil.which(choice) is None and choice == "podman":
            raise EngineUnavailableError(
                "Podman is not installed",
                hint="apt-get install podman runc, run scripts/setup-host.sh, "
                "or set engine: docker in the profile",
            )
        return connect(choice)
    problems = []
    for name in ENGINE_NAMES:
        if name == "podman" and shutil.which("podman") is None:
            problems.append("podman: not installed")
            continue
        try:
            return connect(name)
        except EngineUnavailableError as exc:
            problems.append(f"{name}: {exc.message}")
    raise EngineUnavailableError(
        "no container engine is usable (" + "; ".join(problems) + ")",
        hint="run `llmdeploy doctor`, or scripts/setup-host.sh to install Podman and Docker",
    )


def available_engines() -> list[Engine]:
    """Every engine that answers now (for status across engines)."""
    engines: list[Engine] = []
    for name in ENGINE_NAMES:
        if name == "podman" and shutil.which("podman") is None:
            continue
        try:
            engines.append(connect(name))
        except EngineUnavailableError:
            continue
    return engines
