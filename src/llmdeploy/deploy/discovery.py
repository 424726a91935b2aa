"""Find running deployments by name, profile or backend (used by chat, logs and bench)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from llmdeploy.core.labels import DEFAULT_API_PATH, DeploymentLabels
from llmdeploy.core.run_spec import ContainerInfo
from llmdeploy.engines.base import Engine
from llmdeploy.errors import DeploymentNotFoundError


@dataclass(frozen=True)
class DeploymentEndpoint:
    """How to reach a running deployment, read from its container's labels."""

    deployment: str
    engine: str
    container_id: str
    base_url: str  # http://host:port
    api: str  # openai | ollama
    served_model: str
    metrics_path: str | None
    backend: str
    profile: str
    api_path: str = DEFAULT_API_PATH  # the OpenAI-compatible API's base path on base_url

    @property
    def api_base_url(self) -> str:
        """``http://host:port/v1``: where OpenAI-compatible clients (chat, bench) send requests."""
        return self.base_url + self.api_path


def endpoint_of(engine: Engine, container: ContainerInfo) -> DeploymentEndpoint:
    record = container.deployment_labels
    if record is None:  # find_in only returns llmdeploy's containers
        raise ValueError(f"{container.name} is not a container llmdeploy manages")
    return DeploymentEndpoint(
        deployment=record.deployment,
        engine=engine.name,
        container_id=container.id,
        base_url=record.endpoint,
        api=record.api,
        served_model=record.served_model,
        metrics_path=record.metrics_path,
        backend=record.backend,
        profile=record.profile,
        api_path=record.api_path,
    )


def find_in(
    engines: list[Engine],
    *,
    name: str | None = None,
    profile: str | None = None,
    backend: str | None = None,
    running_only: bool = True,
) -> list[tuple[Engine, ContainerInfo]]:
    wanted = DeploymentLabels.selector(deployment=name, profile=profile, backend=backend)
    found = []
    for engine in engines:
        for container in engine.list(wanted):
            if container.running or not running_only:
                found.append((engine, container))
    return found


def pick_one(
    matches: list[tuple[Engine, ContainerInfo]], what: str
) -> tuple[Engine, ContainerInfo]:
    if not matches:
        raise DeploymentNotFoundError(
            f"no running deployment{what}",
            hint="start one with `llmdeploy up --profile NAME`; see `llmdeploy status`",
        )
    if len(matches) > 1:
        names = sorted(_name_of(c) for _, c in matches)
        raise DeploymentNotFoundError(
            f"{len(matches)} running deployments match{what}: {', '.join(names)}",
            hint="name one with --deployment NAME (or --profile NAME)",
        )
    return matches[0]


def describe_filter(name: str | None, profile: str | None, backend: str | None) -> str:
    parts = [
        f"{k} {v!r}"
        for k, v in (("named", name), ("of profile", profile), ("with backend", backend))
        if v
    ]
    return (" " + " and ".join(parts)) if parts else ""


def find_deployment(
    *, profile: str | None = None, backend: str | None = None, name: str | None = None
) -> DeploymentEndpoint:
    """The one running deployment matching the filters, across every engine that answers.

    When none matches and an installed engine could not be reached, the error says so: the
    deployment may be running there.
    """
    from llmdeploy.engines.selection import reachable_engines

    found = reachable_engines()
    engines = found.engines
    try:
        engine, container = pick_one(
            find_in(engines, name=name, profile=profile, backend=backend),
            describe_filter(name, profile, backend),
        )
        return endpoint_of(engine, container)
    except DeploymentNotFoundError as exc:
        if found.unreachable:
            exc.message += " (not reachable: " + "; ".join(found.warnings()) + ")"
        raise
    finally:
        for engine in engines:
            engine.close()


def find_deployments(
    names: Sequence[str | None], *, profile: str | None = None
) -> list[DeploymentEndpoint]:
    """One running deployment per name, in order (None: the only one running, filtered by
    ``profile``), looked up with one connection per engine (``chat -d a,b``).

    Raises DeploymentNotFoundError for the first name with none or several matches, saying
    which engines could not be looked in."""
    from llmdeploy.engines.selection import reachable_engines

    found = reachable_engines()
    try:
        endpoints = []
        for name in names:
            try:
                engine, container = pick_one(
                    find_in(found.engines, name=name, profile=profile),
                    describe_filter(name, profile, None),
                )
            except DeploymentNotFoundError as exc:
                if found.unreachable:
                    exc.message += " (not reachable: " + "; ".join(found.warnings()) + ")"
                raise
            endpoints.append(endpoint_of(engine, container))
        return endpoints
    finally:
        for engine in found.engines:
            engine.close()


def deployments_mounting(
    engines: list[Engine], folders: list[Path]
) -> list[tuple[Engine, ContainerInfo]]:
    """llmdeploy's containers (any state) that bind-mount one of ``folders`` (or a folder in
    them): removing those folders would break the deployment."""
    wanted = [folder.resolve() for folder in folders]
    found = []
    for engine in engines:
        for container in engine.list(DeploymentLabels.selector()):
            sources = [Path(m.source).resolve() for m in container.mounts]
            if any(src == f or f in src.parents for src in sources for f in wanted):
                found.append((engine, container))
    return found


def _name_of(container: ContainerInfo) -> str:
    record = container.deployment_labels
    return record.deployment if record else container.name


def refuse_if_mounted(folders: list[Path]) -> list[str]:
    """Refuse (ModelError) to remove store folders a deployment on any reachable engine mounts;
    return one warning per engine that could not be looked in.

    The store's ``remove`` calls it before deleting anything (``models rm`` without --force).
    """
    from llmdeploy.engines.selection import reachable_engines
    from llmdeploy.errors import ModelError

    reach = reachable_engines()
    try:
        users = deployments_mounting(reach.engines, folders)
    finally:
        reach.close()
    if users:
        names = sorted({_name_of(c) for _, c in users})
        raise ModelError(
            f"{folders[0].name} is mounted by deployment {', '.join(names)} "
            f"({users[0][1].state}); it was left in place",
            hint=f"take it down first (llmdeploy down {names[0]}), or pass --force",
        )
    return [f"{line}; a deployment there may still use this model" for line in reach.warnings()]
