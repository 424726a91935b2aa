"""The one place that decides which container engine a command uses, and connects to it.

Precedence, for every command: ``--engine`` > ``$LLMDEPLOY_ENGINE`` > the profile's ``engine``
> ``auto``. ``auto`` means Podman, then Docker. An unknown name is a :class:`UsageError`
(exit 2) naming where it came from; the profile's value is already checked by its schema.

Commands that act on one engine (``up``, ``render``, ``up --dry-run``) call
:func:`choose_engine` then :func:`open_engine` (or :func:`render_traits`, which connects to
nothing); commands that look across engines (``status``, ``down``, ``logs``, ``chat``,
``bench``) call :func:`reachable_engines`, which also says which engines it could not reach
and why, so the command can warn instead of silently listing the others.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from llmdeploy.constants import ENV_DOCKER_HOST, ENV_ENGINE
from llmdeploy.core.engine_traits import DOCKER, PODMAN, EngineTraits
from llmdeploy.engines.addresses import configured_podman_address
from llmdeploy.engines.base import Engine
from llmdeploy.errors import EngineUnavailableError, UsageError

EngineName = Literal["podman", "docker"]
EngineRequest = Literal["podman", "docker", "auto"]
ENGINE_NAMES: tuple[EngineName, ...] = ("podman", "docker")
ENGINE_CHOICES: tuple[EngineRequest, ...] = ("podman", "docker", "auto")
ChoiceSource = Literal["--engine", "LLMDEPLOY_ENGINE", "profile", "default"]

_INSTALL_HINT = "run `llmdeploy doctor`, or scripts/setup-host.sh to install Podman and Docker"


@dataclass(frozen=True)
class EngineChoice:
    """Which engine was asked for, and by whom (for messages: "docker (from --engine)")."""

    requested: EngineRequest
    source: ChoiceSource

    @property
    def explicit(self) -> bool:
        """True unless nobody named an engine (then every reachable engine is fair game)."""
        return self.source != "default"

    def describe(self) -> str:
        return f"{self.requested} (from {self.source})"


def choose_engine(
    flag: str | None = None,
    profile_engine: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> EngineChoice:
    """Apply the precedence ``--engine`` > ``$LLMDEPLOY_ENGINE`` > profile > ``auto``.

    Raises UsageError (exit 2) for a name that is not podman, docker or auto.
    """
    env = os.environ if environ is None else environ
    candidates: tuple[tuple[str | None, ChoiceSource], ...] = (
        (flag, "--engine"),
        (env.get(ENV_ENGINE) or None, "LLMDEPLOY_ENGINE"),
        (profile_engine, "profile"),
    )
    for value, source in candidates:
        if value is None:
            continue
        name = value.strip().lower()
        if name not in ENGINE_CHOICES:
            where = "--engine" if source == "--engine" else f"${ENV_ENGINE}"
            if source == "profile":
                where = "engine: in the profile"
            raise UsageError(
                f"{where}: unknown engine {value!r}",
                hint="use podman, docker or auto",
            )
        return EngineChoice(name, source)
    return EngineChoice("auto", "default")


def installed(name: EngineName) -> bool:
    """Whether the engine's CLI is on PATH (Podman's API is reached through it when needed)."""
    return shutil.which(name) is not None


def auto_order() -> tuple[EngineName, ...]:
    """The engines ``auto`` tries, in order."""
    return ENGINE_NAMES


def render_engine(choice: EngineChoice) -> EngineName:
    """The engine whose commands ``render`` and ``up --dry-run`` print, connecting to nothing.

    An explicit engine is itself; ``auto`` is the first installed of Podman and Docker (what
    ``up`` would try first), and Podman on a host with neither.
    """
    if choice.requested != "auto":
        return choice.requested
    for name in auto_order():
        if installed(name):
            return name
    return "podman"


def render_traits(choice: EngineChoice) -> EngineTraits:
    return DOCKER if render_engine(choice) == "docker" else PODMAN


def connect(name: EngineName) -> Engine:
    """Connect to one engine; raise EngineUnavailableError saying why it cannot be reached."""
    if name == "podman":
        if not installed("podman") and not _podman_socket_configured():
            raise EngineUnavailableError(
                "Podman is not installed",
                hint="apt-get install podman runc, run scripts/setup-host.sh, "
                "or choose docker (--engine docker / engine: docker in the profile)",
            )
        from llmdeploy.engines.podman_engine import PodmanEngine

        return PodmanEngine()
    from llmdeploy.engines.docker_engine import DockerEngine

    return DockerEngine()


def open_engine(choice: EngineChoice) -> Engine:
    """Connect to the chosen engine; ``auto`` tries Podman, then Docker.

    Raises EngineUnavailableError naming the choice's source, or listing each engine's problem
    for ``auto``.
    """
    if choice.requested != "auto":
        try:
            return connect(choice.requested)
        except EngineUnavailableError as exc:
            if choice.source in ("--engine", "LLMDEPLOY_ENGINE"):
                exc.message = f"{exc.message} (engine {choice.describe()})"
            raise
    problems = []
    for name in auto_order():
        if name == "podman" and not installed("podman") and not _podman_socket_configured():
            problems.append("podman: not installed")
            continue
        try:
            return connect(name)
        except EngineUnavailableError as exc:
            problems.append(f"{name}: {exc.message}")
    raise EngineUnavailableError(
        "no container engine is usable (" + "; ".join(problems) + ")", hint=_INSTALL_HINT
    )


@dataclass
class Reachable:
    """The engines a cross-engine command can look in, and the ones it could not reach."""

    engines: list[Engine] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)  # engine -> why

    def close(self) -> None:
        for engine in self.engines:
            engine.close()

    def warnings(self) -> list[str]:
        return [f"{name} could not be reached: {why}" for name, why in self.unreachable.items()]


def reachable_engines(choice: EngineChoice | None = None) -> Reachable:
    """Connect to every engine the choice allows (all of them for ``auto``).

    An engine that is neither installed nor configured (no CLI, no socket variable) is
    skipped silently; one that is installed or configured but does not answer is listed in
    ``unreachable`` with the reason (naming ``DOCKER_HOST`` / ``CONTAINER_HOST`` when one of
    them points at a dead socket). An explicitly chosen engine that cannot be reached raises.
    """
    choice = choice or choose_engine()
    if choice.requested != "auto" and choice.explicit:
        return Reachable(engines=[open_engine(choice)])
    found = Reachable()
    for name in auto_order():
        if not _present(name):
            continue
        try:
            found.engines.append(connect(name))
        except EngineUnavailableError as exc:
            found.unreachable[name] = exc.message
    return found


def _present(name: EngineName) -> bool:
    if name == "podman":
        return installed("podman") or _podman_socket_configured()
    return (
        installed("docker")
        or shutil.which("dockerd") is not None
        or bool(os.environ.get(ENV_DOCKER_HOST))
    )


def _podman_socket_configured() -> bool:
    return configured_podman_address(os.environ) is not None
