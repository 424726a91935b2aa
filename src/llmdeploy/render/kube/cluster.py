"""Dialect ``kubernetes``: the Deployment, its Service and PodDisruptionBudget, the weights claim.

The Deployment rolls out with ``maxUnavailable: 0``: a new pod (a new model version, a new
image) must pass its readiness probe before an old one goes ("model version rotation"); a
cluster without room for one extra pod stalls the rollout rather than dropping capacity. Pods
spread across nodes (and zones, where nodes are labelled) without blocking scheduling. The
replica count is left to the autoscaler when one manages it (``scale.autoscaler`` keda or hpa
with ``min_replicas < max_replicas``), so ``kubectl apply`` never resets it.

GPUs are requested through the device plugins' extended resources (``nvidia.com/gpu``,
``amd.com/gpu``, ``gpu.intel.com/i915``), with a toleration of the taint clusters commonly put
on such nodes (the resource name, ``NoSchedule``).
"""

from __future__ import annotations

from llmdeploy.constants import LABEL_MODEL, LABEL_SERVED_MODEL, LABEL_SPEC_HASH
from llmdeploy.render.inputs import ExportInputs
from llmdeploy.render.kube import names, poststart, probes, weights, workload
from llmdeploy.render.kube.yamldoc import Doc

GPU_RESOURCES = {"nvidia": "nvidia.com/gpu", "amd": "amd.com/gpu", "intel": "gpu.intel.com/i915"}
TERMINATION_GRACE_S = 60  # in-flight generations finish after SIGTERM
PRE_STOP_S = 5  # endpoints drop the pod before the server stops accepting
PROGRESS_SLACK_S = 600  # image pull and weights download, on top of the startup window


def gpu_limits(inputs: ExportInputs) -> dict[str, int]:
    gpu = inputs.plan.run.gpu
    if gpu is None:
        return {}
    return {GPU_RESOURCES[gpu.vendor]: inputs.profile.gpu_count}


def replicas(inputs: ExportInputs) -> int | None:
    """The Deployment's count; None when an autoscaler owns it."""
    scale = inputs.profile.scale
    if scale.autoscaler != "none" and scale.min_replicas < scale.max_replicas:
        return None
    return scale.min_replicas


def server(inputs: ExportInputs, scratch_mounts: list[Doc]) -> Doc:
    launch = inputs.plan.launch
    mounts = weights.server_mounts(inputs) + scratch_mounts
    if launch.extra_files:
        mounts.append({"name": workload.FILES_VOLUME, "mountPath": workload.FILES_DIR,
                       "readOnly": True})
    container = workload.server_container(inputs, mounts=mounts, gpu_limits=gpu_limits(inputs))
    container["startupProbe"] = probes.startup_probe(inputs)
    container["readinessProbe"] = probes.readiness_probe(inputs)
    container["livenessProbe"] = probes.liveness_probe(inputs)
    lifecycle: Doc = {}
    script = poststart.setup_script(launch, files_dir=workload.FILES_DIR)
    if script:
        lifecycle["postStart"] = {"exec": {"command": ["/bin/sh", "-c", script]}}
    lifecycle["preStop"] = {"sleep": {"seconds": PRE_STOP_S}}
    container["lifecycle"] = lifecycle
    return container


def pod_spec(inputs: ExportInputs) -> Doc:
    k8s = inputs.profile.kubernetes
    scratch_volumes, scratch_mounts = workload.scratch_volumes(inputs)
    volumes = weights.pod_volumes(inputs) + scratch_volumes
    if inputs.plan.launch.extra_files:
        volumes.append(
            {"name": workload.FILES_VOLUME, "configMap": {"name": names.files_config_name(inputs)}}
        )
    spec: Doc = {
        "automountServiceAccountToken": False,
        # no Service environment variables: a Service named "vllm" would set VLLM_PORT, which
        # vLLM reads as its own setting
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": TERMINATION_GRACE_S,
        "securityContext": {
            "fsGroup": weights.FETCH_UID,
            "fsGroupChangePolicy": "OnRootMismatch",
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if k8s.node_selector:
        spec["nodeSelector"] = dict(k8s.node_selector)
    tolerations = [t.model_dump(exclude_none=True) for t in k8s.tolerations]
    tolerations += [
        {"key": name, "operator": "Exists", "effect": "NoSchedule"} for name in gpu_limits(inputs)
    ]
    if tolerations:
        spec["tolerations"] = tolerations
    spec["topologySpreadConstraints"] = [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": names.selector_labels(inputs)},
            "matchLabelKeys": ["pod-template-hash"],
        }
        for key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone")
    ]
    fetch = weights.fetch_container(inputs)
    if fetch is not None:
        spec["initContainers"] = [fetch]
    spec["containers"] = [server(inputs, scratch_mounts)]
    spec["volumes"] = volumes
    return spec


def deployment(inputs: ExportInputs) -> Doc:
    plan = inputs.plan
    spec: Doc = {}
    count = replicas(inputs)
    if count is not None:
        spec["replicas"] = count
    spec.update(
        revisionHistoryLimit=5,
        progressDeadlineSeconds=probes.startup_budget_s(inputs) + PROGRESS_SLACK_S,
        selector={"matchLabels": names.selector_labels(inputs)},
        strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
    )
    annotations = {
        **inputs.profile.kubernetes.annotations,
        LABEL_MODEL: str(plan.model_ref),
        LABEL_SERVED_MODEL: plan.launch.served_model,
        LABEL_SPEC_HASH: plan.spec_hash,
    }
    spec["template"] = {
        "metadata": {"labels": names.common_labels(inputs), "annotations": annotations},
        "spec": pod_spec(inputs),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": names.metadata(inputs, names.base_name(inputs)),
        "spec": spec,
    }


def service(inputs: ExportInputs) -> Doc:
    port = inputs.plan.launch.container_port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": names.metadata(inputs, names.base_name(inputs)),
        "spec": {
            "type": inputs.profile.kubernetes.service_type,
            "selector": names.selector_labels(inputs),
            "ports": [
                {"name": names.PORT_NAME, "port": port, "targetPort": names.PORT_NAME,
                 "protocol": "TCP"}
            ],
        },
    }


def disruption_budget(inputs: ExportInputs) -> Doc:
    """At most one pod evicted at a time (a node drain never takes every replica at once; with
    one replica the drain proceeds, at the cost of a cold start elsewhere)."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": names.metadata(inputs, names.base_name(inputs)),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": names.selector_labels(inputs)}},
    }
