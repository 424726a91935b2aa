"""up / down / status: the deployment lifecycle over one engine.

``up`` ensures the model is in the store, the image is in the engine, starts the container
and waits for health. Any failure or Ctrl-C after the container was created removes it, so
nothing half-started is left behind.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from llmdeploy.backends.base import RunningServer
from llmdeploy.backends.registry import get_backend
from llmdeploy.constants import (
    LABEL_DEPLOYMENT,
    LABEL_ENDPOINT,
    LABEL_HEALTH_PATH,
    LABEL_MANAGED,
    LABEL_SPEC_HASH,
    MODEL_MOUNT_DIR,
)
from llmdeploy.core.launch import ModelMount
from llmdeploy.core.reporting import NullReporter, Reporter
from llmdeploy.core.run_spec import ContainerInfo
from llmdeploy.deploy.health import HealthResult, probe, wait_healthy
from llmdeploy.deploy.images import ImageReady, PullPolicy, ensure_image
from llmdeploy.deploy.ownership import name_conflict, owned_by
from llmdeploy.deploy.plan import DeploymentPlan, container_name, plan_deployment
from llmdeploy.deploy.ports import port_is_free
from llmdeploy.engines.base import Engine
from llmdeploy.errors import InterruptedByUser, PortInUseError
from llmdeploy.models.store import ModelStore, StoredModel
from llmdeploy.paths import model_store_dir
from llmdeploy.profiles.loader import ResolvedProfile
from llmdeploy.profiles.schema import Profile


@dataclass(frozen=True)
class UpOptions:
    deployment: str | None = None
    pull: PullPolicy = "missing"
    force_build: bool = False
    keep_on_failure: bool = False
    ignore_fit: bool = False  # start even when the memory planner says it cannot


@dataclass(frozen=True)
class UpResult:
    plan: DeploymentPlan
    container: ContainerInfo
    image: ImageReady | None
    model: StoredModel
    health: HealthResult | None
    unchanged: bool  # an identical deployment was already running and healthy
    replaced: bool  # an older deployment of the same name was removed
    elapsed_s: float


def prepare(
    resolved: ResolvedProfile, deployment: str | None = None
) -> tuple[DeploymentPlan, StoredModel]:
    """Resolve the model into the store and plan the deployment (no engine touched)."""
    stored = ModelStore(model_store_dir()).ensure(resolved.profile.model.ref)
    if resolved.profile.model.convert == "hf":
        from llmdeploy.models.derive import ensure_hf_folder

        stored = ensure_hf_folder(stored)
    plan = plan_deployment(
        resolved.profile,
        model_dir=stored.directory,
        model_filename=stored.filename,
        deployment=deployment,
        base_dir=resolved.base_dir,
        data_root=data_root(),
    )
    return plan, stored


def planned_model_location(profile: Profile) -> tuple[Path, str]:
    """Where the model will be mounted from (directory, file), without fetching anything."""
    directory, filename = ModelStore(model_store_dir()).locate(profile.model.ref)
    if profile.model.convert == "hf":
        return directory.parent / f"{directory.name}-hf-bfloat16", ""
    return directory, filename


def plan_without_fetching(
    resolved: ResolvedProfile, deployment: str | None = None
) -> DeploymentPlan:
    """The deployment plan of ``render`` and ``up --dry-run``: nothing is downloaded or copied."""
    model_dir, filename = planned_model_location(resolved.profile)
    return plan_deployment(
        resolved.profile,
        model_dir=model_dir,
        model_filename=filename,
        deployment=deployment,
        base_dir=resolved.base_dir,
        data_root=data_root(),
    )


def data_root() -> Path:
    """Where backends that keep state (Ollama's models) get their per-deployment folder."""
    return model_store_dir() / "_data"


def up(
    engine: Engine,
    plan: DeploymentPlan,
    stored: StoredModel,
    options: UpOptions = UpOptions(),
    reporter: Reporter | None = None,
) -> UpResult:
    """Start the deployment and wait until it is healthy (see the module docstring).

    The reporter's open phase is closed as failed by whatever error ends ``up``.
    """
    report = reporter or NullReporter()
    try:
        return _up(engine, plan, stored, options, report)
    except BaseException:
        report.finish(success=False)
        raise


def _up(
    engine: Engine,
    plan: DeploymentPlan,
    stored: StoredModel,
    options: UpOptions,
    report: Reporter,
) -> UpResult:
    started = time.monotonic()
    name = plan.run.name
    report.phase("existing", f"Looking for an existing {name} in {engine.name}")
    existing = engine.inspect(name)
    replaced = False
    if existing is not None:
        if not owned_by(existing, plan.deployment):
            raise name_conflict(existing, plan.deployment, engine.name)
        same = existing.labels.get(LABEL_SPEC_HASH) == plan.spec_hash
        health_url = plan.endpoint + plan.launch.health_path
        healthy, health_detail = probe(health_url) if same and existing.running else (False, "")
        if healthy:
            report.detail(f"{name} already runs this profile and is healthy")
            report.finish(success=True)
            return UpResult(
                plan=plan,
                container=existing,
                image=None,
                model=stored,
                health=None,
                unchanged=True,
                replaced=False,
                elapsed_s=time.monotonic() - started,
            )
        if not same:
            why = (
                "what it runs differs from this profile (spec hash "
                f"{existing.labels.get(LABEL_SPEC_HASH, '?')} -> {plan.spec_hash})"
            )
        elif not existing.running:
            why = f"it is {existing.state}"
        else:
            why = f"it does not answer {health_url} ({health_detail})"
        report.phase("replace", f"Replacing the previous {name}: {why}")
        engine.remove(existing.id)
        replaced = True
    from llmdeploy.planner.preflight import preflight

    report.phase("plan", "Checking that the model fits")
    check = preflight(plan.profile, stored.path)
    if check.report is None:
        report.end_phase("skipped", check.note)
    elif check.report.starts is False:
        if not options.ignore_fit:
            check.refuse_if_cannot_start()
        report.end_phase("warned", f"{check.note}; starting anyway (--ignore-fit)")
    elif check.report.fits is None:
        report.end_phase("skipped", check.note)  # the target's memory is unknown
    elif not check.report.fits:
        report.end_phase("warned", check.note)
    else:
        report.detail(check.note)
    listen = plan.profile.server
    report.phase("port", f"Checking that {listen.host}:{listen.port} is free")
    _check_port(engine, plan)
    image = ensure_image(
        engine, plan.images, pull=options.pull, force_build=options.force_build, reporter=report
    )
    run_plan = plan.with_image(image.image)
    for mount in run_plan.run.mounts:
        if not mount.read_only:
            Path(mount.source).mkdir(parents=True, exist_ok=True)
    report.phase("start", f"Starting {name} from {image.image}")
    created: ContainerInfo | None = None
    try:
        created = container = engine.run(run_plan.run)
        health_url = plan.endpoint + plan.launch.health_path
        report.phase("health", f"Waiting for {health_url}")
        health = wait_healthy(
            engine,
            container.id,
            health_url,
            timeout_s=plan.profile.health.timeout_s,
            interval_s=plan.profile.health.interval_s,
        )
        server = RunningServer(
            base_url=plan.endpoint,
            served_model=plan.launch.served_model,
            model=ModelMount(MODEL_MOUNT_DIR, stored.filename),
            model_ref=plan.profile.model.ref,
            profile=plan.profile,
            host_model_path=str(stored.path),
        )
        get_backend(plan.profile.backend.kind).after_healthy(server, report)
        container = engine.inspect(container.id) or container
    except KeyboardInterrupt as exc:
        report.finish(success=False)
        _cleanup(engine, run_plan, created, keep=False)
        raise InterruptedByUser(f"interrupted: {name} was stopped and removed", hint=None) from exc
    except BaseException:
        report.finish(success=False)
        _cleanup(engine, run_plan, created, keep=options.keep_on_failure)
        raise
    report.finish(success=True)
    return UpResult(
        plan=run_plan,
        container=container,
        image=image,
        model=stored,
        health=health,
        unchanged=False,
        replaced=replaced,
        elapsed_s=time.monotonic() - started,
    )


def _cleanup(
    engine: Engine, plan: DeploymentPlan, created: ContainerInfo | None, *, keep: bool
) -> None:
    """Remove what this ``up`` created, by ID; never a container it did not make.

    When ``run`` was interrupted before it returned the new container's ID, the container
    under the deployment's name is removed only if it carries this plan's labels and spec
    hash (it can only be the one this ``up`` was creating).
    """
    if keep and created is not None:
        return
    with contextlib.suppress(Exception):
        if created is not None:
            engine.remove(created.id)
            return
        found = engine.inspect(plan.run.name)
        if (
            found is not None
            and owned_by(found, plan.deployment)
            and found.labels.get(LABEL_SPEC_HASH) == plan.spec_hash
        ):
            engine.remove(found.id)


def _check_port(engine: Engine, plan: DeploymentPlan) -> None:
    port = plan.profile.server.port
    host = plan.profile.server.host
    if port_is_free(host, port):
        return
    holders = [
        c.labels.get(LABEL_DEPLOYMENT, c.name)
        for c in engine.list({LABEL_MANAGED: "true"})
        if c.labels.get(LABEL_ENDPOINT) == plan.endpoint and c.running
    ]
    hint = (
        f"deployment {holders[0]!r} uses it: `llmdeploy down {holders[0]}`"
        if holders
        else "set server.port in the profile to a free port, or stop what listens there"
    )
    raise PortInUseError(f"port {host}:{port} is already in use", hint=hint)


def down(engine: Engine, deployment: str, timeout_s: int = 10) -> list[ContainerInfo]:
    """Stop and remove every container of a deployment; an absent deployment is fine.

    Only containers labelled as this deployment's are touched (found by label, removed by
    ID); a foreign container that happens to have the deployment's name is left alone.
    """
    found = [
        c
        for c in engine.list({LABEL_MANAGED: "true", LABEL_DEPLOYMENT: deployment})
        if owned_by(c, deployment)
    ]
    named = engine.inspect(container_name(deployment))
    if named is not None and owned_by(named, deployment) and all(c.id != named.id for c in found):
        found.append(named)
    for container in found:
        if container.running:
            engine.stop(container.id, timeout_s=timeout_s)
        engine.remove(container.id)
    return found


@dataclass(frozen=True)
class DeploymentStatus:
    container: ContainerInfo
    healthy: bool | None  # None when not running
    health_detail: str
    uptime_s: float | None

    @property
    def deployment(self) -> str:
        return self.container.labels.get(LABEL_DEPLOYMENT, self.container.name)


def status(engines: list[Engine], deployment: str | None = None) -> list[DeploymentStatus]:
    wanted = {LABEL_MANAGED: "true"}
    if deployment:
        wanted[LABEL_DEPLOYMENT] = deployment
    rows = []
    for engine in engines:
        for container in engine.list(wanted):
            healthy: bool | None = None
            detail = container.state
            if container.running:
                url = container.labels.get(LABEL_ENDPOINT, "") + container.labels.get(
                    LABEL_HEALTH_PATH, "/health"
                )
                healthy, detail = probe(url, timeout_s=1.0)
            rows.append(
                DeploymentStatus(
                    container=container,
                    healthy=healthy,
                    health_detail=detail,
                    uptime_s=_uptime(container) if container.running else None,
                )
            )
    return rows


def _uptime(container: ContainerInfo) -> float | None:
    if not container.started_at:
        return None
    text = container.started_at
    # Docker: 2024-01-01T00:00:00.123456789Z ; Podman: 2024-01-01T00:00:00.123456789+00:00
    text = text.replace("Z", "+00:00")
    if "." in text:
        head, rest = text.split(".", 1)
        frac = "".join(ch for ch in rest if ch.isdigit())[:6]
        tz = rest[len("".join(ch for ch in rest if ch.isdigit())) :]
        text = f"{head}.{frac}{tz}"
    try:
        started = datetime.fromisoformat(text)
    except ValueError:
        return None
    if started.tzinfo is None:
        started = started.replace(tzinfo=timezone.utc)
    return max(0.0, (datetime.now(timezone.utc) - started).total_seconds())
