"""``route --run``: LiteLLM's proxy as a container llmdeploy manages.

The container carries llmdeploy's labels (backend ``litellm``), so ``status`` lists it,
``chat -d NAME`` talks to it and ``down NAME`` removes it; like ``up``: a name held by a
container that is not ours is refused, the same route running healthy is left alone, a
changed one is replaced, the port is checked first, the image is built locally from the
host's wheelhouse when missing (``render/route_config.py``: ``router_recipe``), and any
failure after the container was created removes it (its log lines are in the error).

Networking: the container shares the host's network (``--network host``) and LiteLLM binds
the route's address itself (127.0.0.1 by default). Deployments publish their ports on the
host's 127.0.0.1; from a container's own network namespace that address is the container
itself, and the engines' host aliases (host.containers.internal, host-gateway) reach the
host's other addresses, not its loopback. Host networking is the one setup that reaches
them with Podman and Docker alike, and binding 127.0.0.1 keeps the router as private as the
deployments behind it. The configuration is mounted read-only; every capability is dropped.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from llmdeploy import __version__
from llmdeploy.constants import ENV_BASE_IMAGE
from llmdeploy.core.labels import DeploymentLabels
from llmdeploy.core.plan import ImageChoice
from llmdeploy.core.reporting import NullReporter, Reporter
from llmdeploy.core.route import (
    ROUTER_READY_PATH,
    RouteSpec,
)
from llmdeploy.core.run_spec import ContainerInfo, RunSpec
from llmdeploy.deploy.health import HealthResult, probe, running_container, wait_healthy
from llmdeploy.deploy.images import ImageReady, ensure_image, write_files
from llmdeploy.deploy.ownership import kind_conflict, name_conflict, owned_by, remove_created
from llmdeploy.deploy.plan import container_name
from llmdeploy.deploy.ports import port_in_use, port_is_free
from llmdeploy.engines.base import Engine
from llmdeploy.errors import InterruptedByUser, UsageError
from llmdeploy.render.route_config import (
    render_route,
    router_recipe,
    router_run_spec,
    with_spec_hash,
)

START_TIMEOUT_S = 120.0  # LiteLLM's proxy imports for ~5-10 s on these machines
POLL_INTERVAL_S = 0.25


@dataclass(frozen=True)
class RouteRunResult:
    """What ``route --run`` did: the container, the image (None when the same route was
    already running), the folder holding its configuration, the wait for readiness."""

    spec: RouteSpec
    engine: str
    container: ContainerInfo
    image: ImageReady | None
    config_dir: Path
    health: HealthResult | None
    unchanged: bool
    replaced: bool
    elapsed_s: float


def router_image_choice(base_image: str | None = None) -> ImageChoice:
    """The router's image: the local build of the pinned LiteLLM (never pulled); its base is
    ``base_image``, else ``$LLMDEPLOY_BASE_IMAGE``, else the Debian Python image."""
    from llmdeploy.backends.base import DEFAULT_BASE_IMAGE

    base = base_image or os.environ.get(ENV_BASE_IMAGE) or DEFAULT_BASE_IMAGE
    recipe = router_recipe(base, __version__)
    return ImageChoice(
        image=recipe.default_tag,
        build_tag=recipe.default_tag,
        recipe=recipe,
        custom_containerfile=None,
        build_args={"BASE_IMAGE": base},
    )


def missing_secrets(spec: RouteSpec) -> list[str]:
    """The variables the router reads a key from that are unset here (names only)."""
    return [name for name in spec.secret_envs if not os.environ.get(name)]


def run_route(
    engine: Engine,
    spec: RouteSpec,
    config_dir: Path,
    reporter: Reporter | None = None,
) -> RouteRunResult:
    """Start the router for ``spec`` with its configuration written into ``config_dir`` and
    wait until it is ready. Raises UsageError (a key variable unset), NameConflictError,
    PortInUseError, ImageError, DeploymentError (it exited or never became ready: its log
    lines are in the error); whatever this call created is removed first."""
    report = reporter or NullReporter()
    started = time.monotonic()
    try:
        return _run(engine, spec, config_dir, report, started)
    except BaseException:
        report.finish(success=False)
        raise


def _run(
    engine: Engine, spec: RouteSpec, config_dir: Path, report: Reporter, started: float
) -> RouteRunResult:
    unset = missing_secrets(spec)
    if unset:
        raise UsageError(
            f"the router reads its keys from the environment, and {', '.join(unset)} "
            f"{'is' if len(unset) == 1 else 'are'} not set",
            hint=f"export {unset[0]}=... first"
            + (" (the router's own key: e.g. sk- and 32 random hex digits)"
               if unset[0] == spec.master_key_env else "")
            + "; values are never written or printed",
        )
    files = render_route(spec)
    config = files[0].content
    choice = router_image_choice()
    name = container_name(spec.name)
    report.phase("existing", f"Looking for an existing {name} in {engine.name}")
    existing = engine.inspect(name)
    replaced = False
    health_url = spec.endpoint + ROUTER_READY_PATH
    if existing is not None:
        if not owned_by(existing, spec.name):
            raise name_conflict(existing, spec.name, engine.name)
        conflict = kind_conflict(existing, spec.name, engine.name, router=True)
        if conflict is not None:
            raise conflict
        wanted = with_spec_hash(router_run_spec(spec, existing.image, str(config_dir)), config)
        theirs = existing.deployment_labels
        same = theirs is not None and theirs.spec_hash == _spec_hash(wanted)
        if same and existing.running and probe(health_url)[0]:
            report.detail(f"{name} already runs this route and is ready")
            report.finish(success=True)
            return RouteRunResult(spec, engine.name, existing, None, config_dir, None,
                                  unchanged=True, replaced=False,
                                  elapsed_s=time.monotonic() - started)
        report.phase("replace", f"Replacing the previous {name}")
        engine.remove(existing.id)
        replaced = True
    report.phase("port", f"Checking that {spec.host}:{spec.port} is free")
    if not port_is_free(spec.host, spec.port):
        raise port_in_use(
            engine, spec.host, spec.port, spec.endpoint,
            otherwise="pick another with --port (the router's own port; not a deployment's)",
        )  # fmt: skip
    image = ensure_image(engine, choice, pull="never", reporter=report)
    report.phase("config", f"Writing the router's configuration into {config_dir}")
    config_dir.mkdir(parents=True, exist_ok=True)
    write_files(config_dir, files)
    run = with_spec_hash(router_run_spec(spec, image.image, str(config_dir)), config)
    report.phase("start", f"Starting {name} from {image.image}")
    created: ContainerInfo | None = None
    try:
        created = engine.run(run)
        report.phase("health", f"Waiting for {health_url}")
        health = wait_healthy(engine, created.id, health_url, timeout_s=START_TIMEOUT_S,
                              interval_s=POLL_INTERVAL_S)
        container = running_container(engine, created.id)
    except KeyboardInterrupt as exc:
        report.finish(success=False)
        remove_created(engine, run, spec.name, created)
        raise InterruptedByUser(f"interrupted: {name} was stopped and removed") from exc
    except BaseException:
        report.finish(success=False)
        remove_created(engine, run, spec.name, created)
        raise
    report.finish(success=True)
    return RouteRunResult(spec, engine.name, container, image, config_dir, health,
                          unchanged=False, replaced=replaced,
                          elapsed_s=time.monotonic() - started)


def _spec_hash(run: RunSpec) -> str:
    record = DeploymentLabels.from_labels(run.labels)
    return record.spec_hash if record is not None else ""
