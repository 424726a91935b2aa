"""``up`` as one domain call, and the plan ``render`` / ``up --dry-run`` print.

Any front end (the CLI, a future API, a test) builds an :class:`UpRequest` and calls
:func:`up` once: the model is placed in the store, its memory checked (before any engine is
contacted), the deployment planned (the planner's KV cache figures go into its labels), the
engine opened, the lifecycle run, the backend's post-start hook run, the server's own KV
cache figure read from its log and compared with the plan's (``deploy.kv_check``), the engine
closed. Progress goes to the reporter; the result says what happened.
:func:`render_deployment` plans the same deployment without fetching anything and returns the
files ``render`` writes (without the planned KV figures: the plan depends on the memory of the
machine that runs it, and a rendered file runs elsewhere).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from llmdeploy.core.launch import RenderedFile
from llmdeploy.core.plan import DeploymentPlan
from llmdeploy.core.registry import DEFAULT_ACCESS, RegistryAccess
from llmdeploy.core.reporting import NullReporter, Reporter
from llmdeploy.core.run_spec import ContainerInfo
from llmdeploy.core.sizes import format_bytes
from llmdeploy.deploy import ready_record
from llmdeploy.deploy.images import ImageReady, PullPolicy, write_files
from llmdeploy.deploy.plan import plan_deployment
from llmdeploy.deploy.ready_time import TimeToReady
from llmdeploy.engines.selection import EngineChoice, render_traits
from llmdeploy.errors import RenderError
from llmdeploy.models.store import ModelStore, StoredModel
from llmdeploy.paths import model_store_dir
from llmdeploy.profiles.schema import BackendSpec, Profile

# what only a real `up` needs is imported when it runs: `up --dry-run` and `render` do not
# pay for the engine lifecycle, the health poller or the memory planner
if TYPE_CHECKING:
    from llmdeploy.core.kv_report import KvCheck
    from llmdeploy.core.labels import DeploymentLabels
    from llmdeploy.deploy.health import HealthResult
    from llmdeploy.deploy.lifecycle import AfterHealthy
    from llmdeploy.engines.base import Engine
    from llmdeploy.planner.preflight import Preflight


@dataclass(frozen=True)
class UpRequest:
    """What a user asks of ``up``: a validated profile and how to start it.

    ``base_dir``: the profile file's folder (a relative ``build.containerfile`` is read from
    it); ``deployment``: another name than the profile's; ``ignore_fit``: start even when the
    memory planner says the server cannot; ``registry``: TLS and credentials for pulling the
    profile's image.
    """

    profile: Profile
    engine: EngineChoice
    base_dir: Path | None = None
    deployment: str | None = None
    pull: PullPolicy = "missing"
    force_build: bool = False
    keep_on_failure: bool = False
    ignore_fit: bool = False
    registry: RegistryAccess = DEFAULT_ACCESS
    warm_up: bool = False  # a one-token chat request once healthy (deploy.warm_up)


@dataclass(frozen=True)
class UpResult:
    """What ``up`` did: the plan (with the image used), the container, where the image and
    the model came from, the memory check, the planned vs the server's KV cache, and the time
    it took (seconds)."""

    plan: DeploymentPlan
    engine: str
    container: ContainerInfo
    image: ImageReady | None  # None when an identical deployment was already running
    model: StoredModel
    fit: Preflight
    health: HealthResult | None
    unchanged: bool
    replaced: bool
    elapsed_s: float
    kv_cache: KvCheck | None = None
    ready: TimeToReady = field(default_factory=TimeToReady)  # deploy.ready_time


def up(
    request: UpRequest, reporter: Reporter | None = None, engine: Engine | None = None
) -> UpResult:
    """Start the deployment ``request`` describes and wait until it is healthy.

    ``engine``: an engine to use instead of opening ``request.engine`` (tests, embedding).
    Raises the error of the step that failed (ModelError, PlanError, EngineError,
    DeploymentError, ...); whatever this call created is removed first. The time to ready
    is recorded for ``status`` (``deploy.ready_record``) once the deployment is healthy.
    """
    from llmdeploy.deploy.kv_check import planned_kv
    from llmdeploy.deploy.lifecycle import UpOptions, start
    from llmdeploy.engines.selection import open_engine

    report = reporter or NullReporter()
    started = time.monotonic()
    try:
        report.phase("model", f"Resolving model {request.profile.model.ref}")
        stored = place_model(request.profile)
        model_s = time.monotonic() - started
        report.detail(
            f"{stored.path} ({format_bytes(stored.size_bytes)}, "
            + ("unchanged, nothing copied)" if stored.reused else "placed in the store)")
        )
        if stored.notes:  # e.g. an https:// download without a checksum to verify it by
            report.end_phase("warned", "; ".join(stored.notes))
        plan_started = time.monotonic()
        fit = _check_fit(request, stored, report)
        memory_plan_s = time.monotonic() - plan_started
        plan = plan_deployment(
            request.profile,
            model_dir=stored.directory,
            model_filename=stored.filename,
            deployment=request.deployment,
            base_dir=request.base_dir,
            data_root=data_root(),
            planned_kv=planned_kv(fit.report),
        )
        report.phase("engine", f"Connecting to {request.engine.describe()}")
        opened = engine is None
        eng = open_engine(request.engine) if engine is None else engine
    except BaseException:
        report.finish(success=False)
        raise
    try:
        result = start(
            eng,
            plan,
            UpOptions(
                pull=request.pull,
                force_build=request.force_build,
                keep_on_failure=request.keep_on_failure,
                access=request.registry,
                warm_up=request.warm_up,
                model_s=model_s,
                memory_plan_s=memory_plan_s,
            ),
            report,
            after_healthy=post_start_hook(request.profile.backend),
        )
        kv = compare_kv(eng, result.container.id, result.container.deployment_labels, report)
        elapsed_s = time.monotonic() - started
        ready = replace(result.ready, total_s=elapsed_s)
        if not result.unchanged:
            ready_record.write(result.container.id, eng.name, ready)
    finally:
        if opened:
            eng.close()
    return UpResult(
        plan=result.plan,
        engine=eng.name,
        container=result.container,
        image=result.image,
        model=stored,
        fit=fit,
        health=result.health,
        unchanged=result.unchanged,
        replaced=result.replaced,
        elapsed_s=elapsed_s,
        kv_cache=kv,
        ready=ready,
    )


def compare_kv(
    engine: Engine, container: str, labels: DeploymentLabels | None, report: Reporter
) -> KvCheck | None:
    """The healthy server's own KV cache figure beside the plan's, as one phase: ``warned``
    when they differ by more than 10 %, ``skipped`` when the server reports none. Never fails
    ``up``: the server is running and healthy whatever its log says."""
    from llmdeploy.deploy.kv_check import check_running

    if labels is None:
        return None
    report.phase("kv-cache", "Comparing the server's KV cache with the plan")
    check = check_running(engine, container, labels)
    if check.differs:
        report.end_phase("warned", check.summary())
    elif check.actual_value is None:
        report.end_phase("skipped", "; ".join(check.notes) or check.summary())
    else:
        report.detail(check.summary())
    report.finish(success=True)
    return check


def post_start_hook(options: BackendSpec) -> AfterHealthy:
    """The backend's post-start step for a started plan (Ollama creates the served model)."""
    from llmdeploy.backends.base import RunningServer
    from llmdeploy.backends.registry import get_backend

    backend = get_backend(options.kind)

    def hook(plan: DeploymentPlan, reporter: Reporter) -> None:
        backend.after_healthy(RunningServer(plan=plan, options=options), reporter)

    return hook


def _check_fit(request: UpRequest, stored: StoredModel, report: Reporter) -> Preflight:
    """The memory planner's verdict; refuses (PlanError) what cannot start unless told not to."""
    from llmdeploy.planner.preflight import preflight

    report.phase("plan", "Checking that the model fits")
    check = preflight(request.profile, stored.path)
    if check.report is None:
        report.end_phase("skipped", check.note)
    elif check.report.starts is False:
        if not request.ignore_fit:
            check.refuse_if_cannot_start()
        report.end_phase("warned", f"{check.note}; starting anyway (--ignore-fit)")
    elif check.report.fits is None:
        report.end_phase("skipped", check.note)  # the target's memory is unknown
    elif not check.report.fits:
        report.end_phase("warned", check.note)
    else:
        report.detail(check.note)
    return check


def place_model(profile: Profile) -> StoredModel:
    """The model in the store (hard link, one copy, or a download), and its derived format."""
    from llmdeploy.models.oci.credentials import RegistryAccess

    access = RegistryAccess(
        tls_verify=profile.model.tls_verify, creds_env=profile.model.creds_env
    )
    stored = ModelStore(model_store_dir()).ensure(profile.model.ref, registry=access)
    if profile.model.convert == "hf":
        from llmdeploy.models.derive import ensure_hf_folder

        stored = ensure_hf_folder(stored)
    return stored


def planned_model_location(profile: Profile) -> tuple[Path, str]:
    """Where the model will be mounted from (directory, file), without fetching anything."""
    directory, filename = ModelStore(model_store_dir()).locate(profile.model.ref)
    if profile.model.convert == "hf":
        from llmdeploy.models.derive import converted_dir

        return converted_dir(directory), ""
    return directory, filename


def plan_without_fetching(
    profile: Profile, *, base_dir: Path | None = None, deployment: str | None = None
) -> DeploymentPlan:
    """The plan of ``render`` and ``up --dry-run``: nothing is downloaded or copied."""
    model_dir, filename = planned_model_location(profile)
    return plan_deployment(
        profile,
        model_dir=model_dir,
        model_filename=filename,
        deployment=deployment,
        base_dir=base_dir,
        data_root=data_root(),
    )


def render_deployment(
    profile: Profile,
    engine: EngineChoice,
    *,
    base_dir: Path | None = None,
    deployment: str | None = None,
) -> list[RenderedFile]:
    """The files ``render`` writes for the engine ``engine`` names (``auto``: the first
    installed), from the plan ``up`` would follow; nothing is fetched or started."""
    from llmdeploy.render.bundle import render_bundle

    plan = plan_without_fetching(profile, base_dir=base_dir, deployment=deployment)
    return render_bundle(plan, render_traits(engine))


def dry_run_commands(
    profile: Profile,
    engine: EngineChoice,
    *,
    base_dir: Path | None = None,
    deployment: str | None = None,
) -> str:
    """What ``up --dry-run`` prints: the ``commands.sh`` of :func:`render_deployment`
    (the same lines, without rendering the build context's templates)."""
    from llmdeploy.render.bundle import commands_file

    plan = plan_without_fetching(profile, base_dir=base_dir, deployment=deployment)
    return commands_file(plan, render_traits(engine)).content


def render_into(
    out_dir: Path,
    profile: Profile,
    engine: EngineChoice,
    *,
    base_dir: Path | None = None,
    deployment: str | None = None,
) -> list[RenderedFile]:
    """Write :func:`render_deployment`'s files into ``out_dir`` (created when missing).

    Raises RenderError naming the folder when it cannot be written.
    """
    files = render_deployment(profile, engine, base_dir=base_dir, deployment=deployment)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_files(out_dir, files)
    except OSError as exc:
        raise RenderError(
            f"--out {out_dir}: cannot write the rendered files there: "
            f"{exc.strerror or exc} ({exc.filename or out_dir})",
            hint="choose a directory you can write to (it is created when missing)",
        ) from exc
    return files


def data_root() -> Path:
    """Where backends that keep state (Ollama's models) get their per-deployment folder."""
    return ModelStore(model_store_dir()).data_root
