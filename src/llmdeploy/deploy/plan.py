"""Turn a resolved profile into a DeploymentPlan: the RunSpec, image choice and endpoint.

Pure: given the profile and where the model lives on the host, no engine is touched.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from llmdeploy.backends.base import Backend
from llmdeploy.backends.registry import get_backend
from llmdeploy.constants import (
    CONTAINER_NAME_PREFIX,
    LABEL_ACCELERATOR,
    LABEL_API,
    LABEL_BACKEND,
    LABEL_DEPLOYMENT,
    LABEL_ENDPOINT,
    LABEL_HEALTH_PATH,
    LABEL_MANAGED,
    LABEL_METRICS_PATH,
    LABEL_MODEL,
    LABEL_PROFILE,
    LABEL_SERVED_MODEL,
    LABEL_SPEC_HASH,
    MODEL_MOUNT_DIR,
)
from llmdeploy.core.launch import BuildRecipe, ModelMount, ServerLaunch
from llmdeploy.core.run_spec import BindMount, GpuRequest, PortMapping, RunSpec
from llmdeploy.profiles.schema import Profile


@dataclass(frozen=True)
class ImageChoice:
    """Which image to run: the profile's reference, and the local build to fall back on."""

    image: str  # what the profile names (prebuilt), or the build tag
    build_tag: str | None  # tag of the local build, None when the profile cannot build
    recipe: BuildRecipe | None
    custom_containerfile: Path | None
    build_args: dict[str, str]


@dataclass(frozen=True)
class DeploymentPlan:
    deployment: str
    profile: Profile
    launch: ServerLaunch
    run: RunSpec  # image is the preferred image; lifecycle swaps in the one actually used
    images: ImageChoice
    endpoint: str  # http://host:port
    spec_hash: str

    @property
    def api_base_url(self) -> str:
        return self.endpoint + self.launch.api_base_path

    def with_image(self, image: str) -> DeploymentPlan:
        return replace(self, run=replace(self.run, image=image))


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
) -> DeploymentPlan:
    backend: Backend = get_backend(profile.backend.kind)
    mount = ModelMount(container_dir=MODEL_MOUNT_DIR, filename=model_filename)
    launch = backend.describe(profile, mount)
    name = deployment or profile.name
    images = _image_choice(profile, backend, base_dir)
    endpoint = endpoint_url(profile.server.host, profile.server.port)
    labels = {
        LABEL_MANAGED: "true",
        LABEL_DEPLOYMENT: name,
        LABEL_PROFILE: profile.name,
        LABEL_MODEL: str(profile.model.ref),
        LABEL_SERVED_MODEL: launch.served_model,
        LABEL_BACKEND: profile.backend.kind,
        LABEL_ACCELERATOR: profile.accelerator,
        LABEL_ENDPOINT: endpoint,
        LABEL_HEALTH_PATH: launch.health_path,
        LABEL_API: launch.api,
    }
    if launch.metrics_path:
        labels[LABEL_METRICS_PATH] = launch.metrics_path
    mounts = [BindMount(source=str(model_dir), target=MODEL_MOUNT_DIR, read_only=True)]
    if launch.data_dir is not None:
        if data_root is None:
            raise ValueError("this backend keeps data: plan_deployment needs data_root")
        host_data = data_root / name / profile.backend.kind
        mounts.append(BindMount(source=str(host_data), target=launch.data_dir, read_only=False))
    gpu = None
    if profile.accelerator == "cuda":
        gpu = GpuRequest(vendor="nvidia")
    elif profile.accelerator == "rocm":
        gpu = GpuRequest(vendor="amd")
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
    run = replace(run, labels={**labels, LABEL_SPEC_HASH: spec_hash})
    return DeploymentPlan(
        deployment=name,
        profile=profile,
        launch=launch,
        run=run,
        images=images,
        endpoint=endpoint,
        spec_hash=spec_hash,
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
    image = profile.image or build_tag or backend.default_image(profile)
    return ImageChoice(
        image=image,
        build_tag=build_tag,
        recipe=recipe,
        custom_containerfile=custom,
        build_args=build_args,
    )


def _hash(run: RunSpec, images: ImageChoice) -> str:
    payload = {
        "run": asdict(run),
        "build_tag": images.build_tag,
        "recipe": asdict(images.recipe) if images.recipe else None,
        "build_args": images.build_args,
    }
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
