"""Names and labels every Kubernetes object of one export shares.

Objects are named after the deployment (``llmdeploy-<deployment>``, the container name ``up``
uses); every object carries the recommended ``app.kubernetes.io/*`` labels plus llmdeploy's
own ``io.llmdeploy.*`` labels (the same record ``up`` puts on containers) and the profile's
``kubernetes.labels``; ``selector_labels`` is the stable subset Deployments, Services,
PodDisruptionBudgets and ServiceMonitors select on.
"""

from __future__ import annotations

import hashlib

from llmdeploy import __version__
from llmdeploy.constants import (
    LABEL_ACCELERATOR,
    LABEL_BACKEND,
    LABEL_DEPLOYMENT,
    LABEL_MANAGED,
    LABEL_PROFILE,
)
from llmdeploy.render.inputs import ExportInputs

PORT_NAME = "http"  # the Service's and the container's port name (ServiceMonitor uses it)


def base_name(inputs: ExportInputs) -> str:
    """``llmdeploy-<deployment>``: the Deployment's, Service's, ... name."""
    return inputs.plan.run.name


def namespace(inputs: ExportInputs) -> str | None:
    return inputs.profile.kubernetes.namespace


def selector_labels(inputs: ExportInputs) -> dict[str, str]:
    """What selectors match on: stable across model versions, so a rollout keeps the Service."""
    return {
        "app.kubernetes.io/name": "llmdeploy",
        "app.kubernetes.io/instance": inputs.plan.deployment,
    }


def common_labels(inputs: ExportInputs) -> dict[str, str]:
    """Labels on every object: the selector labels, the recommended ones, llmdeploy's own keys
    (those of its record whose values are valid label values: not the model reference or the
    host endpoint) and the profile's extra labels."""
    plan = inputs.plan
    record = plan.labels
    labels = {
        **selector_labels(inputs),
        "app.kubernetes.io/component": "inference-server",
        "app.kubernetes.io/part-of": "llmdeploy",
        "app.kubernetes.io/managed-by": "llmdeploy",
        "app.kubernetes.io/version": __version__,
        LABEL_MANAGED: "true",
        LABEL_DEPLOYMENT: record.deployment,
        LABEL_PROFILE: record.profile,
        LABEL_BACKEND: record.backend,
        LABEL_ACCELERATOR: record.accelerator,
    }
    labels.update(inputs.profile.kubernetes.labels)
    return labels


def metadata(inputs: ExportInputs, name: str, **extra_labels: str) -> dict[str, object]:
    """An object's metadata: name, namespace (when the profile sets one), labels, annotations."""
    meta: dict[str, object] = {"name": name, "labels": {**common_labels(inputs), **extra_labels}}
    if namespace(inputs):
        meta["namespace"] = namespace(inputs)
    if inputs.profile.kubernetes.annotations:
        meta["annotations"] = dict(inputs.profile.kubernetes.annotations)
    return meta


def secret_name(inputs: ExportInputs) -> str:
    """The Secret the user creates (never rendered): one key per secret variable."""
    return f"{base_name(inputs)}-secrets"


def weights_claim_name(inputs: ExportInputs) -> str:
    """The shared weights PersistentVolumeClaim (``kubernetes.weights_volume: shared``)."""
    return f"{base_name(inputs)}-weights"


def files_config_name(inputs: ExportInputs) -> str:
    """The ConfigMap holding the backend's extra files (Ollama's Modelfile)."""
    return f"{base_name(inputs)}-files"


def volume_name(prefix: str, name: str) -> str:
    """``prefix + name``, kept a DNS label (at most 63 characters: a hash replaces the tail)."""
    full = prefix + name
    if len(full) <= 63:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    return f"{full[:54].rstrip('-')}-{digest}"
