"""README.txt beside the manifests: how to apply them, the Secret to create, what each needs.

The values of secrets are never rendered: the README names the Secret, its keys and the
environment variables ``up`` reads them from, and gives the ``kubectl create secret`` line.
"""

from __future__ import annotations

from importlib import resources

import yaml

from llmdeploy.constants import ENV_HF_TOKEN
from llmdeploy.core.launch import RenderedFile
from llmdeploy.render.containerfile import render_template
from llmdeploy.render.inputs import ExportInputs
from llmdeploy.render.kube import names, probes, weights
from llmdeploy.render.kube.cluster import GPU_RESOURCES, PROGRESS_SLACK_S, replicas
from llmdeploy.render.kube.yamldoc import storage_quantity

README = "README.txt"
_TEMPLATE = "kube-README.txt.j2"

# kind -> what the cluster needs for it (beyond a plain Kubernetes)
KIND_NEEDS = {
    "ScaledObject": "KEDA (keda.sh/v1alpha1) and a Prometheus it can query",
    "TriggerAuthentication": "KEDA",
    "HorizontalPodAutoscaler": "metrics-server (CPU utilisation)",
    "ServiceMonitor": "the Prometheus Operator (monitoring.coreos.com/v1 CRDs)",
    "PodMonitor": "the Prometheus Operator (monitoring.coreos.com/v1 CRDs)",
    "PrometheusRule": "the Prometheus Operator (monitoring.coreos.com/v1 CRDs)",
    "PodDisruptionBudget": "nothing (node drains honour it)",
    "Service": "nothing",
    "ConfigMap": "nothing",
}


def _needs(inputs: ExportInputs, files: list[RenderedFile]) -> list[tuple[str, str]]:
    gpu = inputs.plan.run.gpu
    rows = []
    for item in files:
        kinds = [
            doc.get("kind", "?")
            for doc in yaml.safe_load_all(item.content)
            if isinstance(doc, dict)
        ]
        needs = []
        for kind in kinds:
            if kind == "Deployment" and item.path.startswith("route-"):
                need = "the router's image in a registry and its Secret (see ROUTER)"
            elif kind == "Deployment":
                need = "nothing"
                if gpu is not None:
                    need = f"GPU nodes with the {GPU_RESOURCES[gpu.vendor]} device plugin"
            elif kind == "PersistentVolumeClaim":
                need = "a storage class that provisions ReadWriteMany volumes"
            elif kind == "ConfigMap" and "grafana" in item.content.lower():
                need = "Grafana's dashboard sidecar (it picks up the labelled ConfigMap)"
            else:
                need = KIND_NEEDS.get(kind, "its CRD")
            needs.append(f"{kind}: {need}")
        rows.append((item.path, "; ".join(needs)))
    return rows


def _weights_text(inputs: ExportInputs) -> str:
    ref = inputs.profile.model.ref
    k8s = inputs.profile.kubernetes
    if weights.image_volume(inputs):
        return (
            f"  The model is the OCI artifact {weights.image_reference(inputs)} ({ref} as "
            "pulled on the exporting machine), mounted read-only at /models as an image "
            "volume: the node's runtime pulls it once per node. Image volumes are beta and on "
            "by default since Kubernetes 1.35 (feature gate ImageVolume before); the runtime "
            "must mount OCI artifacts: CRI-O does, containerd mounts only container images "
            "(containerd#11381). The node pulls from the registry with the cluster's image "
            "pull credentials."
        )
    if not weights.fetches(inputs):
        return (
            f"  Ollama pulls {ref} into each pod's own volume when it starts (one download per "
            "pod; Ollama's store is not shared between servers)."
        )
    size = storage_quantity(weights.weights_bytes(inputs))
    where = f"storage class {k8s.storage_class}" if k8s.storage_class else "the default class"
    if weights.shared(inputs):
        volume = (
            f"  One ReadWriteMany claim, {names.weights_claim_name(inputs)} ({size}, {where}), "
            "filled once and shared by every replica on any node."
        )
    else:
        volume = (
            f"  A generic ephemeral volume per pod ({size}, {where}): each pod downloads the "
            "weights again (any storage class works; scale-out waits for the download)."
        )
    return (
        f"{volume}\n  The init container fetch-weights fetches {ref} into the folder "
        f"{weights.volume_key(ref)} and does nothing when its marker file is there; the server "
        "mounts that folder read-only at /models."
    )


def _autoscaled(inputs: ExportInputs) -> str:
    scale = inputs.profile.scale
    if replicas(inputs) is not None:
        return ""
    return f"{scale.autoscaler}, {scale.min_replicas} to {scale.max_replicas}"


def _router(inputs: ExportInputs) -> dict[str, object]:
    """The ROUTER section's values (a profile with a ``fallback:``): empty without one."""
    spec, recipe = inputs.route_in_cluster, inputs.route_recipe
    if spec is None or recipe is None:
        return {"router": "", "router_keys": [], "router_image": "", "router_line": ""}
    return {
        "router": f"llmdeploy-{spec.name}",
        "router_keys": list(spec.secret_envs),
        "router_image": recipe.default_tag,
        "router_line": f"model {spec.public_model} at http://llmdeploy-{spec.name}:{spec.port}"
        f"/v1: {spec.edge.api_base} first, {spec.cloud.api_base} as its fallback",
    }


def readme(inputs: ExportInputs, files: list[RenderedFile]) -> RenderedFile:
    plan = inputs.plan
    namespace = names.namespace(inputs)
    secret_keys = [(name, host) for name, host in plan.run.secret_env.items()]
    optional = [ENV_HF_TOKEN] if inputs.profile.model.ref.scheme == "hf" else []
    api_key = next((host for name, host in plan.run.secret_env.items() if "API_KEY" in name), None)
    fetch = weights.fetch_container(inputs)
    variables: dict[str, object] = {
        "deployment": plan.deployment,
        "profile": plan.profile_name,
        "backend": plan.backend,
        "accelerator": plan.accelerator
        + (f" x{inputs.profile.gpu_count}" if plan.run.gpu is not None else ""),
        "model_ref": str(plan.model_ref),
        "served_model": plan.launch.served_model,
        "namespace": namespace or "",
        "ns": f" -n {namespace}" if namespace else "",
        "name": names.base_name(inputs),
        "rollout_timeout_s": probes.startup_budget_s(inputs) + PROGRESS_SLACK_S,
        "port": plan.launch.container_port,
        "api_path": plan.launch.api_base_path,
        "api_key": api_key or "",
        "shared_claim": names.weights_claim_name(inputs)
        if weights.fetches(inputs) and weights.shared(inputs)
        else "",
        "secret": names.secret_name(inputs),
        "autoscaled": _autoscaled(inputs),
        "secret_keys": secret_keys,
        "optional_keys": optional,
        "image": plan.run.image,
        "local_image": plan.run.image.startswith("localhost/"),
        "fetch_image": fetch["image"] if fetch and fetch["image"] != plan.run.image else "",
        "weights": _weights_text(inputs),
        "needs": _needs(inputs, files),
        **_router(inputs),
    }
    text = resources.files("llmdeploy.render").joinpath("templates", _TEMPLATE).read_text("utf-8")
    return RenderedFile(README, render_template(text, variables, name=_TEMPLATE))
