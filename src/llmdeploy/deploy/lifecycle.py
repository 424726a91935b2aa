"""start / down / status: the deployment lifecycle over one engine, reading only the plan.

``start`` checks the name is ours, the port is free and the image is in the engine, starts
the container and waits for health, then runs the backend's post-start hook. Any failure or
Ctrl-C after the container was created removes it (by ID), so nothing half-started is left
behind. ``deploy.up`` is the one entry point that places the model, plans, checks the memory
and calls ``start``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from llmdeploy.core.labels import DeploymentLabels
from llmdeploy.core.plan import DeploymentPlan
from llmdeploy.core.registry import DEFAULT_ACCESS, RegistryAccess
from llmdeploy.core.reporting import NullReporter, Reporter
from llmdeploy.core.run_spec import ContainerInfo
from llmdeploy.deploy import ready_record
from llmdeploy.deploy.health import HealthResult, probe, running_container, wait_healthy
from llmdeploy.deploy.images import ImageReady, PullPolicy, ensure_image
from llmdeploy.deploy.ownership import kind_conflict, name_conflict, owned_by, remove_created
from llmdeploy.deploy.plan import container_name
from llmdeploy.deploy.ports import port_in_use, port_is_free
from llmdeploy.deploy.ready_time import TimeToReady
from llmdeploy.engines.base import Engine
from llmdeploy.errors import ImageError, InterruptedByUser


@dataclass(frozen=True)
class UpOptions:
    """How to start: the pull policy, ``force_build`` (rebuild the image), whether a failed
    container stays for inspection, registry access for a pull, ``warm_up`` (a one-token
    chat request once healthy, ``deploy.warm_up``), ``model_s`` and ``memory_plan_s``, the
    seconds the caller spent placing the model and checking that it fits (recorded with the
    rest of the time to ready)."""

    pull: PullPolicy = "missing"
    force_build: bool = False
    keep_on_failure: bool = False
    access: RegistryAccess = DEFAULT_ACCESS  # TLS and credentials for a pull
    warm_up: bool = False
    model_s: float | None = None
    memory_plan_s: float | None = None


@dataclass(frozen=True)
class StartResult:
    plan: DeploymentPlan  # with the image really used
    container: ContainerInfo
    image: ImageReady | None  # None when an identical deployment was already running
    health: HealthResult | None
    unchanged: bool  # an identical deployment was already running and healthy
    replaced: bool  # an older deployment of the same name was removed
    elapsed_s: float
    ready: TimeToReady = field(default_factory=TimeToReady)  # measured here (no total_s)


AfterHealthy = Callable[[DeploymentPlan, Reporter], None]


def start(
    engine: Engine,
    plan: DeploymentPlan,
    options: UpOptions = UpOptions(),
    reporter: Reporter | None = None,
    *,
    after_healthy: AfterHealthy | None = None,
) -> StartResult:
    """Start the planned deployment and wait until it is healthy (see the module docstring).

    ``after_healthy`` (the backend's post-start step, e.g. Ollama creating the served model)
    runs once the health check passes; its failure removes the container like any other.
    The reporter's open phase is closed as failed by whatever error ends ``start``.
    """
    report = reporter or NullReporter()
    try:
        return _start(engine, plan, options, report, after_healthy)
    except BaseException:
        report.finish(success=False)
        raise


def _start(
    engine: Engine,
    plan: DeploymentPlan,
    options: UpOptions,
    report: Reporter,
    after_healthy: AfterHealthy | None,
) -> StartResult:
    started = time.monotonic()
    name = plan.run.name
    report.phase("existing", f"Looking for an existing {name} in {engine.name}")
    existing = engine.inspect(name)
    replaced = False
    if existing is not None:
        if not owned_by(existing, plan.deployment):
            raise name_conflict(existing, plan.deployment, engine.name)
        conflict = kind_conflict(existing, plan.deployment, engine.name, router=False)
        if conflict is not None:
            raise conflict
        theirs = existing.deployment_labels
        same = theirs is not None and theirs.spec_hash == plan.spec_hash
        healthy, health_detail = (
            probe(plan.health.url) if same and existing.running else (False, "")
        )
        if healthy:
            report.detail(f"{name} already runs this profile and is healthy")
            report.finish(success=True)
            return StartResult(
                plan=plan,
                container=existing,
                image=None,
                health=None,
                unchanged=True,
                replaced=False,
                elapsed_s=time.monotonic() - started,
                ready=TimeToReady(model_s=options.model_s,
                                  memory_plan_s=options.memory_plan_s),
            )
        if not same:
            why = (
                "what it runs differs from this profile (spec hash "
                f"{theirs.spec_hash if theirs else '?'} -> {plan.spec_hash})"
            )
        elif not existing.running:
            why = f"it is {existing.state}"
        else:
            why = f"it does not answer {plan.health.url} ({health_detail})"
        report.phase("replace", f"Replacing the previous {name}: {why}")
        engine.remove(existing.id)
        ready_record.remove(existing.id)
        replaced = True
    report.phase("port", f"Checking that {plan.host_ip}:{plan.host_port} is free")
    _check_port(engine, plan)
    image_started = time.monotonic()
    image = ensure_image(
        engine,
        plan.images,
        pull=options.pull,
        force_build=options.force_build,
        reporter=report,
        access=options.access,
    )
    ready = TimeToReady(
        image_s=time.monotonic() - image_started,
        model_s=options.model_s,
        memory_plan_s=options.memory_plan_s,
        image_source=image.source,
    )
    run_plan = plan.with_image(image.image)
    if image.baked:
        run_plan = _baked(run_plan, image)
    # what is known at create goes into the labels (not part of the spec hash)
    labels = {**run_plan.run.labels, **ready.create_labels()}
    run_plan = replace(run_plan, run=replace(run_plan.run, labels=labels))
    for mount in run_plan.run.mounts:
        if not mount.read_only:
            Path(mount.source).mkdir(parents=True, exist_ok=True)
    report.phase("start", f"Starting {name} from {image.image}")
    created: ContainerInfo | None = None
    try:
        run_started = time.monotonic()
        created = container = engine.run(run_plan.run)
        ready = replace(ready, container_start_s=time.monotonic() - run_started)
        report.phase("health", f"Waiting for {plan.health.url}")
        health = wait_healthy(
            engine,
            container.id,
            plan.health.url,
            timeout_s=plan.health.timeout_s,
            interval_s=plan.health.interval_s,
        )
        ready = replace(ready, server_load_s=health.elapsed_s)
        if after_healthy is not None:
            after_healthy(run_plan, report)
        if options.warm_up:
            from llmdeploy.deploy.warm_up import first_token_s

            report.phase("warm-up", f"Sending a one-token chat request to {plan.api_base_url}")
            ttft = first_token_s(plan.api_base_url, plan.launch.served_model)
            report.detail(f"first token after {ttft * 1000:.0f} ms")
            ready = replace(ready, first_token_s=ttft)
        # healthy means running too: the server answered and its container has not stopped
        container = running_container(engine, container.id)
    except KeyboardInterrupt as exc:
        report.finish(success=False)
        _cleanup(engine, run_plan, created, keep=False)
        raise InterruptedByUser(f"interrupted: {name} was stopped and removed", hint=None) from exc
    except BaseException:
        report.finish(success=False)
        _cleanup(engine, run_plan, created, keep=options.keep_on_failure)
        raise
    report.finish(success=True)
    return StartResult(
        plan=run_plan,
        container=container,
        image=image,
        health=health,
        unchanged=False,
        replaced=replaced,
        elapsed_s=time.monotonic() - started,
        ready=ready,
    )


def _baked(plan: DeploymentPlan, image: ImageReady) -> DeploymentPlan:
    """The plan for an image with the weights inside: nothing mounted at the model directory.

    Refuses (ImageError) an image that bakes another file than the one the argv names."""
    wanted = plan.model.filename or "."
    if image.baked_file != wanted:
        raise ImageError(
            f"{image.image} carries the model file {image.baked_file!r}, but the profile serves "
            f"{wanted!r} from {plan.model.container_dir}",
            hint="point image: at the image baked for this model, or rebuild it with "
            "`llmdeploy build --bake` from this profile",
        )
    return plan.without_model_mount()


def _cleanup(
    engine: Engine, plan: DeploymentPlan, created: ContainerInfo | None, *, keep: bool
) -> None:
    """Remove what this ``up`` created (``ownership.remove_created``), unless
    ``--keep-on-failure`` keeps a container it did create."""
    if keep and created is not None:
        return
    remove_created(engine, plan.run, plan.deployment, created)


def _check_port(engine: Engine, plan: DeploymentPlan) -> None:
    if not port_is_free(plan.host_ip, plan.host_port):
        raise port_in_use(
            engine, plan.host_ip, plan.host_port, plan.endpoint,
            otherwise="set server.port in the profile to a free port, or stop what listens "
            "there",
        )  # fmt: skip


def down(engine: Engine, deployment: str, timeout_s: int = 10) -> list[ContainerInfo]:
    """Stop and remove every container of a deployment; an absent deployment is fine.

    Only containers labelled as this deployment's are touched (found by label, removed by
    ID); a foreign container that happens to have the deployment's name is left alone.
    """
    found = [
        c
        for c in engine.list(DeploymentLabels.selector(deployment=deployment))
        if owned_by(c, deployment)
    ]
    named = engine.inspect(container_name(deployment))
    if named is not None and owned_by(named, deployment) and all(c.id != named.id for c in found):
        found.append(named)
    for container in found:
        if container.running:
            engine.stop(container.id, timeout_s=timeout_s)
        engine.remove(container.id)
        ready_record.remove(container.id)
    return found
