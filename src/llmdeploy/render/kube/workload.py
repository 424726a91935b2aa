"""The server container both dialects run: the same argv and environment as ``up``.

Everything here comes from the plan (``plan.run``: the RunSpec ``up`` starts; ``plan.launch``:
what the backend says about its server) and the profile; nothing depends on the exporting
machine. The dialects add what only they have: the Kubernetes pod its probes, weights fetcher,
device-plugin GPUs; the ``podman kube play`` pod its host paths, published port and CDI GPUs.

Security, per container: capabilities dropped (the backend's and the profile's ``cap_add``
back), no privilege escalation, seccomp RuntimeDefault, a non-root user where the image works
as one (``ServerLaunch.run_as_user``: llama.cpp; the vLLM and Ollama images keep state under
root's home, and AMD/Intel GPU device nodes need host groups whose ids vary, so those keep the
image's user) and a read-only root filesystem where the image allows it
(``ServerLaunch.read_only_root``, or ``security.read_only_rootfs``), with scratch ``emptyDir``
volumes at ``ServerLaunch.scratch_dirs``. ``security.user`` (numeric) overrides the user.
"""

from __future__ import annotations

from llmdeploy.core.sizes import GIB, to_bytes
from llmdeploy.errors import ProfileError
from llmdeploy.render.inputs import ExportInputs
from llmdeploy.render.kube import names
from llmdeploy.render.kube.names import PORT_NAME
from llmdeploy.render.kube.weights import secret_env
from llmdeploy.render.kube.yamldoc import Doc, cpu_quantity, memory_quantity

SERVER = "server"
SHM_VOLUME = "dshm"
FILES_VOLUME = "files"
FILES_DIR = "/etc/llmdeploy"  # the backend's extra files (Ollama's Modelfile), read-only
DEFAULT_CPU_REQUEST = "1"  # what the scheduler reserves when the profile sets no resources.cpus
SHM_GPU_BYTES = 2 * GIB  # /dev/shm for a GPU server that `up` runs with --ipc=host
SHM_PER_EXTRA_GPU_BYTES = GIB  # NCCL's buffers between tensor-parallel workers
GPU_VENDORS_WITH_HOST_GROUPS = ("amd", "intel")  # /dev/kfd, /dev/dri: group render/video


def server_user(inputs: ExportInputs) -> tuple[int, int] | None:
    """(uid, gid) the server runs as, None for the image's own user."""
    declared = inputs.profile.security.user
    if declared:
        uid, _, gid = declared.partition(":")
        if not uid.isdigit() or (gid and not gid.isdigit()):
            raise ProfileError(
                f"security.user {declared!r}: Kubernetes and podman kube play take numeric ids",
                hint="write it as UID or UID:GID, e.g. 10001:10001",
            )
        return int(uid), int(gid or uid)
    gpu = inputs.plan.run.gpu
    if gpu is not None and gpu.vendor in GPU_VENDORS_WITH_HOST_GROUPS:
        return None
    uid_default = inputs.plan.launch.run_as_user
    return None if uid_default is None else (uid_default, uid_default)


def read_only_root(inputs: ExportInputs) -> bool:
    return inputs.profile.security.read_only_rootfs or inputs.plan.launch.read_only_root


def container_security(inputs: ExportInputs) -> Doc:
    context: Doc = {}
    user = server_user(inputs)
    if user is not None:
        context.update(runAsUser=user[0], runAsGroup=user[1])
        if user[0] != 0:
            context["runAsNonRoot"] = True
    context["allowPrivilegeEscalation"] = not inputs.plan.run.no_new_privileges
    context["readOnlyRootFilesystem"] = read_only_root(inputs)
    capabilities: Doc = {"drop": ["ALL"]}
    if inputs.plan.run.cap_add:
        capabilities["add"] = list(inputs.plan.run.cap_add)
    context["capabilities"] = capabilities
    return context


def env(inputs: ExportInputs) -> list[Doc]:
    """``plan.run.env`` as values, ``plan.run.secret_env`` from the user's Secret."""
    plain: list[Doc] = [{"name": k, "value": v} for k, v in inputs.plan.run.env.items()]
    return plain + [secret_env(inputs, name) for name in inputs.plan.run.secret_env]


def shm_bytes(inputs: ExportInputs) -> int | None:
    """/dev/shm for servers that need more than the runtime's 64 MiB (vLLM)."""
    run = inputs.plan.run
    if run.shm_size:
        return to_bytes(run.shm_size)
    if run.ipc_mode == "host":
        extra_gpus = max(0, inputs.profile.gpu_count - 1)
        return SHM_GPU_BYTES + extra_gpus * SHM_PER_EXTRA_GPU_BYTES
    return None


def resources(inputs: ExportInputs, gpu_limits: dict[str, int]) -> Doc:
    """CPU and memory from the profile and the planner, GPUs as the dialect names them.

    Memory request: what the planner says one replica needs (CPU profiles: weights, KV cache
    and overhead live in RAM), at most the profile's ``resources.memory``, which is the limit;
    on a GPU the planner's figure is GPU memory, so only the profile's value is used.
    """
    profile = inputs.profile
    requests: Doc = {}
    limits: Doc = {}
    cpus = profile.resources.cpus
    requests["cpu"] = cpu_quantity(cpus) if cpus else DEFAULT_CPU_REQUEST
    if cpus:
        limits["cpu"] = cpu_quantity(cpus)
    limit = to_bytes(profile.resources.memory) if profile.resources.memory else None
    need = inputs.memory_bytes if profile.accelerator == "cpu" else None
    request = min(need, limit) if need and limit else (need or limit)
    if request:
        requests["memory"] = memory_quantity(request)
    if limit:
        limits["memory"] = memory_quantity(limit)
    limits.update(gpu_limits)
    return {"requests": requests, "limits": limits}


def scratch_volumes(inputs: ExportInputs, *, prefix: str = "") -> tuple[list[Doc], list[Doc]]:
    """(volumes, mounts): /dev/shm in memory, and scratch space on a read-only root.

    ``prefix``: put before the volumes' names (Podman 4.3 makes each emptyDir a named volume,
    shared by every pod that uses the name).
    """
    volumes: list[Doc] = []
    mounts: list[Doc] = []
    shm = shm_bytes(inputs)
    if shm:
        name = names.volume_name(prefix, SHM_VOLUME)
        size = memory_quantity(shm)
        volumes.append({"name": name, "emptyDir": {"medium": "Memory", "sizeLimit": size}})
        mounts.append({"name": name, "mountPath": "/dev/shm"})
    if read_only_root(inputs):
        for index, path in enumerate(inputs.plan.launch.scratch_dirs):
            name = names.volume_name(prefix, f"scratch-{index}")
            volumes.append({"name": name, "emptyDir": {}})
            mounts.append({"name": name, "mountPath": path})
    return volumes, mounts


def server_container(inputs: ExportInputs, *, mounts: list[Doc], gpu_limits: dict[str, int]) -> Doc:
    """The server: image, argv, environment, port, resources, mounts, security."""
    run = inputs.plan.run
    container: Doc = {"name": SERVER, "image": run.image, "imagePullPolicy": "IfNotPresent"}
    if run.entrypoint:
        container["command"] = list(run.entrypoint)
    container["args"] = list(run.args)
    container["ports"] = [
        {"name": PORT_NAME, "containerPort": inputs.plan.launch.container_port, "protocol": "TCP"}
    ]
    variables = env(inputs)
    if variables:
        container["env"] = variables
    container["resources"] = resources(inputs, gpu_limits)
    container["volumeMounts"] = mounts
    container["securityContext"] = container_security(inputs)
    return container
