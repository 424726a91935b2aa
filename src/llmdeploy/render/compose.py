"""A compose file: the deployment for ``docker compose``, ``docker-compose`` and
``podman-compose``, built as data from the RunSpec ``up`` starts and dumped with PyYAML.

The form is the one every tool reads: no ``version:`` key (the Compose Specification, which
docker-compose reads since 1.27 and which enables GPU reservations), the weights' store entry
bind-mounted read-only (short syntax), the port published on the profile's address
(127.0.0.1 by default), ``cap_drop: [ALL]``, ``no-new-privileges``, ulimits, a health check that
works in every image llmdeploy runs (render/healthcheck.py), ``restart: unless-stopped`` and
the ``io.llmdeploy.*`` labels, so ``llmdeploy status``, ``chat`` and ``bench`` find it.

GPUs as ``docker run`` gets them: NVIDIA through ``deploy.resources.reservations.devices``
(driver nvidia; podman-compose >= 1.2 turns it into the same CDI devices ``podman run`` gets),
AMD and Intel as device nodes plus the ``video`` group.

Secrets by reference only: ``KEY: ${HOST_VAR:?...}`` is read from the shell or a ``.env`` file
beside the compose file when the tool starts, and stops it when unset. Every other ``$`` is
written ``$$`` so interpolation leaves values as they are. Writable mounts (Ollama's models)
become named volumes.
"""

from __future__ import annotations

from typing import Any

import yaml

from llmdeploy.core.engine_traits import DOCKER, PODMAN
from llmdeploy.core.launch import RenderedFile
from llmdeploy.core.run_spec import GpuRequest, RunSpec
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

COMPOSE_FILE = "compose.yaml"
RESTART_POLICY = "unless-stopped"


def render_compose(inputs: ExportInputs) -> list[RenderedFile]:
    """``compose.yaml`` and the backend's extra files (Ollama's Modelfile)."""
    plan = inputs.plan
    volumes = named_volumes(plan.run, prefix="")
    document: dict[str, Any] = {"services": {plan.deployment: _service(inputs, volumes)}}
    route_files: list[RenderedFile] = []
    if inputs.route is not None and inputs.route_recipe is not None:
        from llmdeploy.render.route_exports import compose_router

        router, route_files = compose_router(inputs.route, inputs.route_recipe, plan.deployment)
        document["services"][inputs.route.name] = router
    if volumes:
        labels = escape_interpolation(volume_labels(plan))
        document["volumes"] = {name: {"labels": labels} for name in volumes.values()}
    # wide lines: a folded health command reads as two commands to a person editing the file
    body = yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=4096)
    header = "".join(f"# {line}".rstrip() + "\n" for line in _header(inputs))
    return [RenderedFile(COMPOSE_FILE, header + body), *plan.launch.extra_files, *route_files]


def escape_interpolation(value: Any) -> Any:
    """``$`` -> ``$$`` in every string, so compose's interpolation leaves them as written."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, list):
        return [escape_interpolation(item) for item in value]
    if isinstance(value, dict):
        return {key: escape_interpolation(item) for key, item in value.items()}
    return value


def secret_reference(host_var: str) -> str:
    """``${HOST_VAR:?...}``: the value from the environment, an error when it is unset."""
    return f"${{{host_var}:?set {host_var} in the environment or in .env beside this file}}"


def _service(inputs: ExportInputs, volumes: dict[str, str]) -> dict[str, Any]:
    spec = inputs.plan.run
    service: dict[str, Any] = {"image": spec.image, "container_name": spec.name}
    if spec.entrypoint is not None:
        service["entrypoint"] = list(spec.entrypoint)
    if spec.args:
        service["command"] = list(spec.args)
    service = escape_interpolation(service)
    environment: dict[str, str] = escape_interpolation(dict(sorted(spec.env.items())))
    for key, host_var in sorted(spec.secret_env.items()):
        environment[key] = secret_reference(host_var)
    if environment:
        service["environment"] = environment
    service["ports"] = [publish_value(port) for port in spec.ports]
    service["volumes"] = escape_interpolation([
        f"{volumes.get(m.target, m.source)}:{m.target}:{'ro' if m.read_only else 'rw'}"
        for m in spec.mounts
    ])
    service.update(hardening(spec))
    service.update(_resources(spec))
    check = health_check(inputs)
    service["healthcheck"] = {
        "test": ["CMD-SHELL", check.command],
        "interval": f"{check.interval_s}s",
        "timeout": f"{check.timeout_s}s",
        "retries": check.retries,
        "start_period": f"{check.start_period_s}s",
    }
    service["restart"] = RESTART_POLICY
    service["labels"] = escape_interpolation(dict(sorted(spec.labels.items())))
    return service


def hardening(spec: RunSpec) -> dict[str, Any]:
    """The service keys of ``spec``'s hardening: dropped and added capabilities, security
    options, a read-only root filesystem, the user."""
    out: dict[str, Any] = {"cap_drop": list(spec.cap_drop)}
    if spec.cap_add:
        out["cap_add"] = list(spec.cap_add)
    options = []
    if spec.no_new_privileges:
        options.append("no-new-privileges")
    if spec.label_disable:
        options.append("label=disable")
    if options:
        out["security_opt"] = options
    if spec.read_only_rootfs:
        out["read_only"] = True
    if spec.user:
        out["user"] = spec.user
    return out


def _resources(spec: RunSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if spec.ulimits:
        out["ulimits"] = {name: _ulimit(limit) for name, limit in sorted(spec.ulimits.items())}
    if spec.shm_size:
        out["shm_size"] = spec.shm_size
    if spec.ipc_mode:
        out["ipc"] = spec.ipc_mode
    if spec.memory:
        out["mem_limit"] = spec.memory
    if spec.cpus is not None:
        out["cpus"] = spec.cpus
    if spec.pids_limit is not None:
        out["pids_limit"] = spec.pids_limit
    if spec.gpu is not None:
        out.update(_gpus(spec.gpu))
    return out


def _ulimit(limit: str) -> int | dict[str, int]:
    """``"4096:8192"`` -> ``{soft: 4096, hard: 8192}``; ``"4096"`` -> 4096 (both limits)."""
    soft, colon, hard = limit.partition(":")
    return {"soft": int(soft), "hard": int(hard)} if colon else int(soft)


def _gpus(gpu: GpuRequest) -> dict[str, Any]:
    """The GPU flags ``docker run`` gets, in compose's words."""
    flags = DOCKER.gpu_cli_flags(gpu)
    out: dict[str, Any] = {}
    for flag, value in zip(flags[::2], flags[1::2], strict=True):
        if flag == "--gpus":
            request: dict[str, Any] = {"driver": "nvidia", "capabilities": ["gpu"]}
            request["count"] = value if value == "all" else int(value)
            out["deploy"] = {"resources": {"reservations": {"devices": [request]}}}
        elif flag == "--device":
            out.setdefault("devices", []).append(f"{value}:{value}")
        else:  # --group-add
            out.setdefault("group_add", []).append(value)
    return out


def _header(inputs: ExportInputs) -> list[str]:
    plan, spec = inputs.plan, inputs.plan.run
    lines = [
        f"Generated by llmdeploy from profile {plan.profile_name!r}: the deployment",
        f"{plan.deployment!r} for docker compose (v2), docker-compose (>= 1.28) or podman-compose.",
        "  docker compose up -d      |  docker-compose up -d      |  podman-compose up -d",
        f"It answers on {plan.api_base_url} once healthy; `down` stops it.",
        *weights_notes(plan, converted=inputs.profile.model.convert is not None),
    ]
    for host_var in sorted(set(spec.secret_env.values())):
        lines.append(f"Secret: export {host_var}=... (or put it in .env here) before `up`.")
    lines += image_notes(plan, "image:")
    if spec.gpu is not None and spec.gpu.vendor == "nvidia":
        lines.append("GPUs: podman-compose passes them (as CDI devices) from version 1.2 on.")
    elif spec.gpu is not None:
        lines.append("GPUs: podman-compose applies group_add (video) from version 1.0.6 on.")
    if spec.ipc_mode:
        lines.append("podman-compose ignores ipc: (docker compose and docker-compose apply it).")
    if spec.pids_limit is not None:
        lines.append("podman-compose applies pids_limit from version 1.4 on.")
    lines += after_start_notes(plan, DOCKER, "docker")
    lines += after_start_notes(plan, PODMAN, "podman")
    if inputs.route is not None:
        from llmdeploy.render.route_exports import compose_header

        lines += compose_header(inputs.route)
    return lines
