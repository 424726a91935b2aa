"""Dialect ``podman``: the same workload as one file ``podman kube play`` runs on an edge box.

A Pod (after a ConfigMap when the backend has files) whose server container is the one the
Kubernetes dialect runs (argv, environment, resources, security), plus what one host needs:

- the weights from this machine's model store, the folder ``up`` mounts (``plan.run.mounts``),
  as a read-only ``hostPath`` of type Directory (``podman kube play`` fails clearly when it is
  missing: ``llmdeploy models pull REF`` puts it there); the server's data folder (Ollama's
  models) as the same ``hostPath`` ``up`` uses, created when missing. No init container pulls
  anything: an edge box may be offline;
- the port published on ``server.host:server.port`` (127.0.0.1 by default: ``hostIP``);
- GPUs as CDI device requests in ``resources.limits`` (``nvidia.com/gpu=0``..., and
  ``podman.io/device=/dev/kfd`` style for AMD and Intel), which ``podman kube play`` reads from
  Podman 5.4 on; older Podman ignores them (use ``llmdeploy up`` there);
- the backend's post-start steps (Ollama: create the model) in a sidecar container, since kube
  play runs no lifecycle hooks;
- ``security.selinux: disable`` as the SELinux type ``spc_t`` (Podman's ``label=disable``).

Not carried: ulimits and ``pids_limit`` (containers.conf's defaults apply), and liveness or
startup probes: kube play runs an httpGet probe as ``curl`` inside the container, which the
local llama.cpp and the Ollama images do not have, so a healthy server would be restarted. The
readiness probe stays (Podman ignores it; Kubernetes reads it).
"""

from __future__ import annotations

from llmdeploy.constants import MODEL_MOUNT_DIR
from llmdeploy.core.engine_traits import DEVICE_PATHS, PODMAN
from llmdeploy.core.launch import RenderedFile
from llmdeploy.render.inputs import ExportInputs
from llmdeploy.render.kube import names, poststart, probes, weights, workload
from llmdeploy.render.kube.yamldoc import Doc, dump

POD_FILE = "pod.yaml"
WEIGHTS_VOLUME = "weights"
DATA_VOLUME = "data"
SETUP = "setup"


def gpu_limits(inputs: ExportInputs) -> dict[str, int]:
    """CDI device names, one unit each (Podman reads the names, not the counts)."""
    gpu = inputs.plan.run.gpu
    if gpu is None:
        return {}
    if gpu.vendor == "nvidia":
        return dict.fromkeys(PODMAN.cdi_devices(gpu), 1)
    return {f"podman.io/device={path}": 1 for path in DEVICE_PATHS[gpu.vendor]}


def host_volumes(inputs: ExportInputs) -> tuple[list[Doc], list[Doc]]:
    """(volumes, mounts) for ``up``'s bind mounts: the weights read-only, the data folder."""
    volumes: list[Doc] = []
    mounts: list[Doc] = []
    for mount in inputs.plan.run.mounts:
        if mount.target == MODEL_MOUNT_DIR:
            if not weights.mounted(inputs):
                continue  # an ollama:// model: the server pulls it, nothing to mount
            name, kind = WEIGHTS_VOLUME, "Directory"
        else:
            name, kind = DATA_VOLUME, "DirectoryOrCreate"
        volumes.append({"name": name, "hostPath": {"path": mount.source, "type": kind}})
        entry: Doc = {"name": name, "mountPath": mount.target}
        if mount.read_only:
            entry["readOnly"] = True
        mounts.append(entry)
    return volumes, mounts


def _security(inputs: ExportInputs) -> Doc:
    context = workload.container_security(inputs)
    if inputs.plan.run.label_disable:
        context["seLinuxOptions"] = {"type": "spc_t"}
    return context


def pod(inputs: ExportInputs) -> Doc:
    run = inputs.plan.run
    launch = inputs.plan.launch
    volumes, mounts = host_volumes(inputs)
    scratch_volumes, scratch_mounts = workload.scratch_volumes(
        inputs, prefix=f"{names.base_name(inputs)}-"
    )
    volumes += scratch_volumes
    files_mounts: list[Doc] = []
    if launch.extra_files:
        volumes.append(
            {"name": workload.FILES_VOLUME, "configMap": {"name": names.files_config_name(inputs)}}
        )
        files_mounts.append(
            {"name": workload.FILES_VOLUME, "mountPath": workload.FILES_DIR, "readOnly": True}
        )
    server = workload.server_container(
        inputs, mounts=mounts + scratch_mounts + files_mounts, gpu_limits=gpu_limits(inputs)
    )
    port = server["ports"][0]
    port.update(hostIP=run.ports[0].host_ip, hostPort=run.ports[0].host_port)
    server["readinessProbe"] = probes.readiness_probe(inputs)
    server["securityContext"] = _security(inputs)
    containers = [server]
    script = poststart.setup_script(launch, files_dir=workload.FILES_DIR)
    if script:
        containers.append(
            {
                "name": SETUP,
                "image": run.image,
                "imagePullPolicy": "IfNotPresent",
                # the steps, then idle: the pod restarts containers that exit
                "command": ["/bin/sh", "-c", script + "while :; do sleep 3600; done\n"],
                "env": [{"name": k, "value": v} for k, v in run.env.items()],
                "volumeMounts": [m for m in mounts if m["name"] == WEIGHTS_VOLUME] + files_mounts,
                "securityContext": _security(inputs),
            }
        )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": names.metadata(inputs, names.base_name(inputs)),
        "spec": {"restartPolicy": "Always", "containers": containers, "volumes": volumes},
    }


def header(inputs: ExportInputs) -> list[str]:
    plan = inputs.plan
    lines = [
        f"llmdeploy export kube --dialect podman: deployment {plan.deployment} "
        f"(profile {plan.profile_name})",
        f"run:  podman kube play {POD_FILE}    stop: podman kube down {POD_FILE}",
        f"API:  {plan.api_base_url}",
    ]
    if weights.mounted(inputs):
        lines.append(
            f"weights: read-only from {plan.host_model_dir} "
            f"(put there by: llmdeploy models pull {plan.model_ref})"
        )
    if plan.run.secret_env:
        literals = " ".join(
            f'--from-literal={name}="${host}"' for name, host in plan.run.secret_env.items()
        )
        lines += [
            f"secret: create it once: kubectl create secret generic {names.secret_name(inputs)} "
            f"{literals} --dry-run=client -o yaml | podman kube play -",
        ]
    if plan.launch.extra_files:
        lines.append(
            f"Podman keeps the ConfigMap's volume after kube down: podman volume rm "
            f"{names.files_config_name(inputs)}"
        )
    if plan.run.gpu is not None:
        lines.append("GPUs: CDI device requests, which Podman >= 5.4 reads (with a host CDI spec)")
    return lines


def render_podman(inputs: ExportInputs) -> list[RenderedFile]:
    docs: list[Doc] = []
    config = poststart.files_config_map(inputs)
    if config is not None:
        docs.append(config)
    docs.append(pod(inputs))
    return [RenderedFile(POD_FILE, dump(docs, header=header(inputs)))]
