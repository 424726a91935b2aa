"""Profile sections for running past one machine: scaling, probes, Kubernetes settings.

``llmdeploy export`` reads them (Kubernetes, ``podman kube play``, Quadlet, compose); ``up`` on
one host ignores ``scale`` and ``kubernetes``. Every field is optional with a default a
production deployment can start from.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_SIZE_RE = re.compile(r"^\d+(\.\d+)?\s*([kKmMgGtT]i?[bB]?|[bB])?$")
# RFC 1123 label (namespaces, storage classes)
_DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# Kubernetes label keys: optional DNS prefix + name
_LABEL_KEY_RE = re.compile(
    r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_LABEL_VALUE_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScaleSpec(_Strict):
    """How many replicas run, and when there are more or fewer (Kubernetes exports).

    ``metric: queue`` scales on the requests in flight per replica, running + waiting (vLLM's
    ``vllm:num_requests_running`` + ``vllm:num_requests_waiting``, llama.cpp's
    ``llamacpp:requests_processing`` + ``llamacpp:requests_deferred``) through a KEDA Prometheus
    trigger; ``cpu`` on CPU utilisation through an HPA (docs/kubernetes-autoscaling.md).
    Replicas stay warm: the default minimum is 1. ``min_replicas: 0`` (scale to zero) is opt-in,
    KEDA only, and costs a cold start (image pull, weights load) on the first request after an
    idle period.
    """

    min_replicas: int = Field(default=1, ge=0, description="Replicas kept warm (0: scale to zero)")
    max_replicas: int = Field(default=1, ge=1, description="Upper bound of the autoscaler")
    autoscaler: Literal["keda", "hpa", "none"] = Field(
        default="keda",
        description="keda: ScaledObject on the queue metric (needs KEDA and Prometheus); hpa: a "
        "HorizontalPodAutoscaler on CPU (no add-ons); none: a fixed replica count",
    )
    metric: Literal["queue", "cpu"] = Field(
        default="queue",
        description="queue: requests in flight (running + waiting) per replica; cpu: CPU "
        "utilisation",
    )
    target: float | None = Field(
        default=None,
        gt=0,
        description="queue: requests in flight per replica that trigger a scale-out (default: "
        "from --from-bench, else the server's batch slots, else 5); cpu: utilisation percent "
        "(default 70)",
    )
    scale_out_after_s: int = Field(
        default=30, ge=0, description="The metric must stay above target this long (seconds)"
    )
    scale_in_idle_s: int = Field(
        default=300, ge=0, description="A replica goes after this long without load (seconds)"
    )
    cooldown_s: int = Field(
        default=300, ge=0, description="Seconds between two scale-in steps (stabilization)"
    )

    @model_validator(mode="after")
    def _bounds(self) -> ScaleSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) is above max_replicas ({self.max_replicas})"
            )
        if self.min_replicas == 0 and self.autoscaler != "keda":
            raise ValueError(
                "min_replicas 0 (scale to zero) needs autoscaler: keda (an HPA never goes below 1)"
            )
        if self.metric == "cpu" and self.autoscaler == "keda" and self.min_replicas == 0:
            raise ValueError("scale to zero needs metric: queue (CPU is 0 when nothing runs)")
        return self


class ProbeSpec(_Strict):
    """Kubernetes probes: ready means "the model can serve", not "the process is up".

    The startup probe allows a cold model load: by default the weights' size divided by
    ``load_bandwidth_mib_s`` plus the server's own start, doubled; readiness and liveness are
    split (a busy server stays alive while it is not ready).
    """

    startup_timeout_s: int | None = Field(
        default=None, gt=0, description="Longest a cold start may take; default: from the weights"
    )
    load_bandwidth_mib_s: float = Field(
        default=200.0, gt=0, description="How fast weights load from the volume (MiB/s)"
    )
    period_s: int = Field(default=10, gt=0, description="Seconds between readiness/liveness probes")
    failure_threshold: int = Field(default=3, gt=0)
    ready_path: str | None = Field(default=None, description="Readiness path; default: backend's")
    live_path: str | None = Field(default=None, description="Liveness path; default: backend's")

    @field_validator("ready_path", "live_path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"{value!r} is not an HTTP path (start it with /)")
        return value


class Toleration(_Strict):
    key: str | None = None
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class KubernetesSpec(_Strict):
    """Where and how the Kubernetes export runs. Everything optional."""

    namespace: str | None = Field(default=None, description="Namespace of every object")
    storage_class: str | None = Field(
        default=None, description="Storage class of the weights volume (default: the cluster's)"
    )
    weights_volume: Literal["shared", "per-pod"] = Field(
        default="shared",
        description="shared: one ReadWriteMany PersistentVolumeClaim filled once, for replicas on "
        "any node (needs an RWX storage class); per-pod: a generic ephemeral volume per pod, "
        "filled by each pod (one download per pod, works with any storage class)",
    )
    weights_size: str | None = Field(
        default=None, description="Size of the weights volume (default: the weights + 20%)"
    )
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    labels: dict[str, str] = Field(default_factory=dict, description="Added to every object")
    annotations: dict[str, str] = Field(default_factory=dict, description="Added to every object")
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"

    @field_validator("weights_volume", mode="before")
    @classmethod
    def _no_host_path(cls, value: object) -> object:
        if isinstance(value, str) and value.replace("_", "").replace("-", "").lower() in (
            "hostpath", "host", "local", "bind"
        ):
            raise ValueError(
                f"{value!r}: the Kubernetes dialect never puts weights on a node's own disk "
                "(hostPath): pods scheduled on other nodes would not find them. Use 'shared' "
                "(one ReadWriteMany claim) or 'per-pod' (an ephemeral volume each), or run on "
                "this machine with `export kube --dialect podman`, which mounts the store"
            )
        return value

    @field_validator("namespace", "storage_class")
    @classmethod
    def _dns_label(cls, value: str | None) -> str | None:
        if value is not None and not _DNS_LABEL_RE.match(value):
            raise ValueError(
                f"{value!r} is not a DNS label (lowercase letters, digits and '-', at most 63)"
            )
        return value

    @field_validator("weights_size")
    @classmethod
    def _size(cls, value: str | None) -> str | None:
        if value is not None and not _SIZE_RE.match(value.strip()):
            raise ValueError(f"not a size: {value!r} (use e.g. 20Gi, 500G)")
        return value

    @field_validator("labels", "node_selector")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if not _LABEL_KEY_RE.match(key):
                raise ValueError(f"{key!r} is not a Kubernetes label key")
            if not _LABEL_VALUE_RE.match(item):
                raise ValueError(f"{item!r} (for {key}) is not a Kubernetes label value")
        return value
