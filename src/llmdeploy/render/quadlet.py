"""Quadlet units: the deployment as a systemd service that Podman's Quadlet generator builds.

Output (file names from the container's name, ``llmdeploy-<deployment>``):

- ``<name>.container``: the RunSpec ``up`` starts, key by key (image, Exec argv, environment,
  secrets by reference, published port, read-only weights, dropped capabilities, SELinux
  label, limits, GPU devices, labels), a health check, and the service's restart policy;
- ``<name>-<n>.volume`` for each writable mount of the RunSpec (Ollama's models): a named
  volume Podman creates, so no host folder has to exist first;
- the backend's extra files (Ollama's Modelfile), for the one-time steps the unit's comments
  print.

The weights stay where ``llmdeploy models pull`` put them: the store entry is bind-mounted
read-only, as ``up`` does (a single-host export: run it on the host that serves).

Which Podman: Quadlet arrived in 4.4; these units use keys up to 4.7 (``HealthCmd``,
``SecurityLabelDisable``, ``Secret`` from 4.5; ``ShmSize``, ``PidsLimit`` from 4.7).
``PodmanArgs=`` carries what Quadlet 4.7 has no key for (``--cpus``, ``--memory``,
``--ipc``, ``--group-add``, ``--entrypoint``, a user name), and every ulimit: Quadlet before
5.0 keeps only the last ``Ulimit=`` line.
"""

from __future__ import annotations

import shlex

from llmdeploy.core.engine_traits import PODMAN
from llmdeploy.core.launch import RenderedFile
from llmdeploy.core.plan import DeploymentPlan
from llmdeploy.core.run_spec import RunSpec
from llmdeploy.render.healthcheck import health_check
from llmdeploy.render.inputs import ExportInputs
from llmdeploy.render.single_host import (
    after_start_notes,
    image_notes,
    named_volumes,
    publish_value,
    volume_labels,
    weights_notes,
)
from llmdeploy.render.unit_file import UnitFile, UnitSection

MIN_PODMAN = "4.7"
# systemd's start covers pulling the image (Quadlet runs `podman run`, which pulls); the model
# load is covered by the health check's start period, not by this
START_TIMEOUT_S = 900
RESTART_DELAY_S = 10


def unit_name(plan: DeploymentPlan) -> str:
    """The systemd service's name without ``.service``: the container's name."""
    return plan.run.name


def render_quadlet(inputs: ExportInputs) -> list[RenderedFile]:
    """The ``.container`` unit, one ``.volume`` unit per writable mount, the backend's extra
    files. RenderError when a value cannot be written in a unit file."""
    plan = inputs.plan
    name = unit_name(plan)
    volumes = named_volumes(plan.run, prefix=f"{name}-")
    files = [RenderedFile(f"{name}.container", _container_unit(inputs, volumes).text())]
    for target, volume in volumes.items():
        files.append(RenderedFile(f"{volume}.volume", _volume_unit(plan, volume, target).text()))
    files += plan.launch.extra_files
    return files


def _container_unit(inputs: ExportInputs, volumes: dict[str, str]) -> UnitFile:
    plan, spec = inputs.plan, inputs.plan.run
    unit = UnitFile(header=_header(inputs))
    description = f"llmdeploy {plan.deployment}: {plan.backend} serving {plan.launch.served_model}"
    unit.section("Unit").raw("Description", description)
    box = unit.section("Container", reader="exec")
    box.raw("ContainerName", spec.name).raw("Image", spec.image)
    if spec.args:
        box.words("Exec", *spec.args)
    for key, value in sorted(spec.env.items()):
        box.assignment("Environment", key, value)
    _secrets(box, spec)
    for port in spec.ports:
        box.raw("PublishPort", publish_value(port))
    for mount in spec.mounts:
        source = f"{volumes[mount.target]}.volume" if mount.target in volumes else mount.source
        box.raw("Volume", f"{source}:{mount.target}:{'ro' if mount.read_only else 'rw'}")
    _hardening(box, spec)
    _resources(box, spec)
    for key, value in sorted(spec.labels.items()):
        box.assignment("Label", key, value)
    check = health_check(inputs)
    box.comment(
        "Health: the first of curl, wget, python3, bash the image has asks the readiness path;",
        f"failures count after a start period for a cold start ({check.start_period_s} s);",
        "an unhealthy server is killed and systemd restarts it.",
    )
    (
        box.raw("HealthCmd", check.command)
        .raw("HealthInterval", f"{check.interval_s}s")
        .raw("HealthTimeout", f"{check.timeout_s}s")
        .raw("HealthRetries", str(check.retries))
        .raw("HealthStartPeriod", f"{check.start_period_s}s")
        .raw("HealthOnFailure", "kill")
    )
    (
        unit.section("Service")
        .comment("Starting includes pulling the image when it is not there yet.")
        .raw("TimeoutStartSec", str(START_TIMEOUT_S))
        .raw("Restart", "on-failure")
        .raw("RestartSec", str(RESTART_DELAY_S))
    )
    unit.section("Install").raw("WantedBy", "default.target")
    return unit


def _secrets(box: UnitSection, spec: RunSpec) -> None:
    """Each secret as a Podman secret of the same name as the host variable, given to the
    container as an environment variable; the value never appears in the unit."""
    for key, host_var in sorted(spec.secret_env.items()):
        box.comment(
            f"Secret {host_var}: create it once, as the user that runs the unit:",
            f'  printf %s "${host_var}" | podman secret create {host_var} -',
        )
        box.words("Secret", f"{host_var},type=env,target={key}")


def _hardening(box: UnitSection, spec: RunSpec) -> None:
    for cap in spec.cap_drop:
        box.raw("DropCapability", cap)
    for cap in spec.cap_add:
        box.raw("AddCapability", cap)
    if spec.no_new_privileges:
        box.raw("NoNewPrivileges", "true")
    if spec.label_disable:
        box.raw("SecurityLabelDisable", "true")
    if spec.read_only_rootfs:
        # VolatileTmp keeps `podman run --read-only`'s tmpfs mounts (Quadlet drops them otherwise)
        box.raw("ReadOnly", "true").raw("VolatileTmp", "true")
    if spec.user:
        user, _, group = spec.user.partition(":")
        if user.isdigit() and (not group or group.isdigit()):
            box.raw("User", user)
            if group:
                box.raw("Group", group)
        else:  # Quadlet before 5.0 reads User= as a number only
            box.words("PodmanArgs", "--user", spec.user)


def _resources(box: UnitSection, spec: RunSpec) -> None:
    if spec.gpu is not None:
        # the flags `podman run` gets: CDI names for NVIDIA, device nodes + video for AMD/Intel
        flags = PODMAN.gpu_cli_flags(spec.gpu)
        for flag, value in zip(flags[::2], flags[1::2], strict=True):
            if flag == "--device":
                box.raw("AddDevice", value)
            else:
                box.words("PodmanArgs", flag, value)
    if spec.cpus is not None:
        box.words("PodmanArgs", "--cpus", f"{spec.cpus:g}")
    if spec.memory:
        box.words("PodmanArgs", "--memory", spec.memory)
    if spec.shm_size:
        box.raw("ShmSize", spec.shm_size)
    if spec.ipc_mode:
        box.words("PodmanArgs", "--ipc", spec.ipc_mode)
    if spec.pids_limit is not None:
        box.raw("PidsLimit", str(spec.pids_limit))
    for name, limit in sorted(spec.ulimits.items()):
        box.words("PodmanArgs", "--ulimit", f"{name}={limit}")
    if spec.entrypoint is not None:
        box.words("PodmanArgs", "--entrypoint", shlex.join(spec.entrypoint))


def _volume_unit(plan: DeploymentPlan, volume: str, target: str) -> UnitFile:
    unit = UnitFile(header=[f"Generated by llmdeploy: {plan.deployment}'s data at {target}."])
    unit.section("Unit").raw("Description", f"llmdeploy {plan.deployment}: {target}")
    section = unit.section("Volume", reader="exec").raw("VolumeName", volume)
    for key, value in volume_labels(plan).items():
        section.assignment("Label", key, value)
    return unit


def _header(inputs: ExportInputs) -> list[str]:
    plan = inputs.plan
    name = unit_name(plan)
    return [
        f"Generated by llmdeploy from profile {plan.profile_name!r}: the deployment",
        f"{plan.deployment!r} as a systemd service (Quadlet, Podman >= {MIN_PODMAN}).",
        "Copy the files of this folder to ~/.config/containers/systemd/ (your user) or",
        "/etc/containers/systemd/ (root), then:",
        "  systemctl --user daemon-reload && systemctl --user start " + name,
        f"(root: the same without --user). It answers on {plan.api_base_url}",
        *weights_notes(plan, converted=inputs.profile.model.convert is not None),
        *image_notes(plan, "Image="),
        *after_start_notes(plan, PODMAN, "podman"),
    ]
