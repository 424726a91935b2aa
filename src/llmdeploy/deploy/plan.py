"""Turn a resolved profile into a DeploymentPlan (core/plan.py): the RunSpec, image choice,
labels, endpoint and health check.

Pure: given the profile and where the model lives on the host, no engine is touched. This is
the one place that reads the profile for a deployment; every later step reads the plan.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace
from pathlib import Path

from llmdeploy.backends.base import Backend
from llmdeploy.backends.registry import get_backend
from llmdeploy.constants import CONTAINER_NAME_PREFIX, MODEL_MOUNT_DIR
from llmdeploy.core.kv_report import PlannedKv
from llmdeploy.core.labels import DeploymentLabels
from llmdeploy.core.launch import BuildRecipe, ModelMount
from llmdeploy.core.plan import DeploymentPlan, HealthSpec, ImageChoice
from llmdeploy.core.run_spec import BindMount, GpuRequest, GpuVendor, PortMapping, RunSpec
from llmdeploy.profiles.schema import Profile

# which vendor's GPUs an accelerator asks for
GPU_VENDORS: dict[str, GpuVendor] = {"cuda": "nvidia", "rocm": "amd", "xpu": "intel"}


def container_name(deployment: str) -> str:
    return f"{CONTAINER_NAME_PREFIX}{deployment}"


def endpoint_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def plan_deployment(
    profile: Profile,
    *,
    model_dir: Path,
    model_filename: str,
    deployment: str | None = None,
    base_dir: Path | None = None,
    data_root: Path | None = None,
    planned_kv: PlannedKv | None = None,
) -> DeploymentPlan:
    """The plan of ``profile`` with the model mounted from ``model_dir`` / ``model_filename``.

    ``planned_kv``: the planner's KV cache figures, recorded in the container's labels; they
    are left out of the spec hash (a planner update must not replace a running server).
    """
    backend: Backend = get_backend(profile.backend.kind)
    mount = ModelMount(container_dir=MODEL_MOUNT_DIR, filename=model_filename)
    launch = backend.describe(profile, mount)
    name = deployment or profile.name
    images = _image_choice(profile, backend, base_dir)
    endpoint = endpoint_url(profile.server.host, profile.server.port)
    record = DeploymentLabels(
        deployment=name,
        profile=profile.name,
        model=str(profile.model.ref),
        served_model=launch.served_model,
        backend=profile.backend.kind,
        accelerator=profile.accelerator,
        endpoint=endpoint,
        health_path=launch.health_path,
        api=launch.api,
        api_path=launch.api_base_path,
        metrics_path=launch.metrics_path,
    )
    labels = record.to_labels()
    mounts = [BindMount(source=str(model_dir), target=MODEL_MOUNT_DIR, read_only=True)]
    if launch.data_dir is not None:
        if data_root is None:
            raise ValueError("this backend keeps data: plan_deployment needs data_root")
        host_data = data_root / name / profile.backend.kind
        mounts.append(BindMount(source=str(host_data), target=launch.data_dir, read_only=False))
    vendor = GPU_VENDORS.get(profile.accelerator)
    gpu = GpuRequest(vendor=vendor, count=profile.gpu_count) if vendor else None
    resources = profile.resources
    run = RunSpec(
        name=container_name(name),
        image=images.image,
        args=launch.args,
        env={**launch.env, **profile.env},
        secret_env={**launch.secret_env, **{name: name for name in profile.secret_env}},
        labels=labels,
        ports=(
            PortMapping(
                host_ip=profile.server.host,
                host_port=profile.server.port,
                container_port=launch.container_port,
            ),
        ),
        mounts=tuple(mounts),
        cap_drop=("ALL",),
        cap_add=tuple(dict.fromkeys([*launch.cap_add, *profile.security.cap_add])),
        no_new_privileges=profile.security.no_new_privileges,
        # always decided by the profile, never by this host: a rendered file runs elsewhere, and
        # `up` must start the very RunSpec `render` writes (same spec hash)
        label_disable=profile.security.selinux == "disable",
        read_only_rootfs=profile.security.read_only_rootfs,
        user=profile.security.user,
        gpu=gpu,
        cpus=resources.cpus,
        memory=resources.memory,
        shm_size=resources.shm_size or launch.shm_size,
        ipc_mode="host" if launch.ipc_host else None,
        pids_limit=resources.pids_limit,
        ulimits=dict(resources.ulimits),
    )
    spec_hash = _hash(run, images)
    record = replace(record, spec_hash=spec_hash, planned_kv=planned_kv)
    return DeploymentPlan(
        deployment=name,
        profile_name=profile.name,
        backend=profile.backend.kind,
        accelerator=profile.accelerator,
        model_ref=profile.model.ref,
        model=mount,
        host_model_dir=model_dir,
        launch=launch,
        run=replace(run, labels=record.to_labels()),
        images=images,
        labels=record,
        health=HealthSpec(
            url=record.health_url,
            timeout_s=profile.health.timeout_s,
            interval_s=profile.health.interval_s,
        ),
    )


def _image_choice(profile: Profile, backend: Backend, base_dir: Path | None) -> ImageChoice:
    recipe: BuildRecipe | None = None
    custom: Path | None = None
    build_tag: str | None = None
    build_args: dict[str, str] = {}
    if profile.build is not None:
        recipe = backend.build_recipe(profile)
        build_args = {"BASE_IMAGE": recipe.variables["base_image"], **profile.build.args}
        if profile.build.containerfile:
            custom = Path(profile.build.containerfile)
            if not custom.is_absolute() and base_dir is not None:
                custom = base_dir / custom
        build_tag = profile.build.tag or recipe.default_tag
    upstream = backend.default_image(profile)
    image = profile.image or build_tag or upstream
    return ImageChoice(
        image=image,
        build_tag=build_tag,
        recipe=recipe,
        custom_containerfile=custom,
        build_args=build_args,
        build_stands_in=image in (build_tag, upstream),
    )


def _hash(run: RunSpec, images: ImageChoice) -> str:
    payload = {
        "run": run.as_record(),
        "build_tag": images.build_tag,
        "recipe": asdict(images.recipe) if images.recipe else None,
        "build_args": images.build_args,
    }
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
