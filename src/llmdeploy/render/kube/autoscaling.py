"""Autoscaling of the Kubernetes export: a KEDA ScaledObject on the server's load, or an HPA.

What ``profile.scale`` asks for:

- ``autoscaler: keda``, ``metric: queue`` (the default): a KEDA ScaledObject with a Prometheus
  trigger on the requests **in flight** (running + waiting) summed over the replicas, target
  ``T`` per replica (KEDA's ``AverageValue``: replicas = ceil(in flight / T)). In flight rather
  than waiting alone: it grows with the load (Little's law: arrival rate x latency), so the
  replica count it asks for is stable; the waiting count drops to 0 as soon as there are enough
  replicas, so a target on it alone asks for fewer replicas right after every scale-out and the
  deployment flaps. It is also what ``llmdeploy bench`` measures: the concurrency a stage held.
- ``autoscaler: keda``, ``metric: cpu``: a ScaledObject with KEDA's CPU trigger.
- ``autoscaler: hpa``: an ``autoscaling/v2`` HorizontalPodAutoscaler on CPU utilisation (no
  add-on needed; a queue metric would need a custom-metrics adapter).
- ``autoscaler: none``, or as many minimum as maximum replicas: no autoscaling object.

A server without Prometheus metrics (Ollama; llama.cpp with ``backend.metrics: false``) cannot
scale on its queue: the export falls back to an HPA on CPU and says so in the file.

Target ``T`` (requests in flight per replica), first found of: ``--from-bench`` (the highest
concurrency that met the run's SLOs, see :mod:`llmdeploy.bench.capacity`), ``scale.target``,
the server's batch slots (llama.cpp ``parallel``, vLLM ``max_num_seqs``: scale out when requests
start to wait), else :data:`DEFAULT_QUEUE_TARGET`.

Timing: ``scale_out_after_s`` is the HPA's scale-up stabilization window (it adds replicas only
for a load that held that long), ``scale_in_idle_s`` its scale-down window and KEDA's
``cooldownPeriod`` (the last replica before zero), ``cooldown_s`` the period of a one-pod
scale-down policy (one replica removed per period).
"""

from __future__ import annotations

from typing import Any

from llmdeploy.core.launch import RenderedFile
from llmdeploy.core.sizes import format_gib
from llmdeploy.errors import ProfileError
from llmdeploy.profiles.targets import ScaleSpec
from llmdeploy.render.inputs import ExportInputs
from llmdeploy.render.kube import names
from llmdeploy.render.kube.observability_metrics import (
    batch_slots,
    in_flight_query,
    server_metrics,
)
from llmdeploy.render.kube.observability_yaml import manifest_file

DEFAULT_QUEUE_TARGET = 5.0  # requests in flight per replica when nothing else says
DEFAULT_CPU_TARGET = 70  # percent
# where KEDA asks Prometheus: the Service the Prometheus Operator creates for its Prometheus
# servers (kube-prometheus-stack in the "monitoring" namespace)
PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090"
POLLING_INTERVAL_S = 15
MAX_WINDOW_S = 3600  # the HPA API's bound on stabilization windows
MAX_POLICY_PERIOD_S = 1800  # ... and on a policy's period
ANNOTATION_TARGET = "io.llmdeploy.scale-target"
ANNOTATION_COLD_START = "io.llmdeploy.cold-start"

__all__ = ["DEFAULT_QUEUE_TARGET", "PROMETHEUS_URL", "autoscaling_files", "queue_target"]


def autoscaling_files(inputs: ExportInputs) -> list[RenderedFile]:
    """``scaledobject.yaml`` (KEDA) or ``hpa.yaml``, or nothing when nothing scales.

    ProfileError naming the ``scale.*`` field for timings the HPA API cannot express, and for
    scale to zero on a server without a queue metric.
    """
    scale = inputs.profile.scale
    if scale.autoscaler == "none" or scale.min_replicas == scale.max_replicas:
        return []
    _check_windows(scale)
    metrics = server_metrics(inputs)
    if scale.autoscaler == "keda" and scale.metric == "queue" and metrics is not None:
        target, source = queue_target(inputs)
        query = in_flight_query(metrics, inputs)
        trigger = {
            "type": "prometheus",
            "name": "requests-in-flight",
            "metricType": "AverageValue",
            "metadata": {
                "serverAddress": PROMETHEUS_URL,
                "query": query,
                "threshold": _number(target),
            },
        }
        notes = [
            "Adds replicas when the requests in flight (running + waiting) per replica exceed "
            f"{_number(target)}.",
            f"Target from {source}.",
            *_scale_to_zero_notes(inputs),
        ]
        return [_scaled_object(inputs, trigger, notes, target_note=f"{_number(target)}: {source}")]
    if scale.min_replicas == 0:
        raise ProfileError(
            "scale.min_replicas is 0 (scale to zero), but "
            f"{_no_queue_reason(inputs)}: nothing could wake the deployment up",
            hint="keep scale.min_replicas at 1 or more for this server",
        )
    cpu = _cpu_target(scale)
    notes = _cpu_notes(inputs)
    if scale.autoscaler == "keda" and scale.metric == "cpu":
        trigger = {
            "type": "cpu",
            "name": "cpu-utilisation",
            "metricType": "Utilization",
            "metadata": {"value": str(cpu)},
        }
        return [_scaled_object(inputs, trigger, notes, target_note=f"{cpu}% CPU")]
    return [_hpa(inputs, cpu, notes)]


def queue_target(inputs: ExportInputs) -> tuple[float, str]:
    """(requests in flight per replica that trigger a scale-out, where that figure came from)."""
    if inputs.queue_target is not None:
        return inputs.queue_target, inputs.queue_target_source or "llmdeploy bench (--from-bench)"
    scale = inputs.profile.scale
    if scale.target is not None and scale.metric == "queue":
        return scale.target, "the profile's scale.target"
    slots = batch_slots(inputs)
    if slots is not None:
        field = "parallel" if inputs.profile.backend.kind == "llamacpp" else "max_num_seqs"
        return float(slots), (
            f"the server's batch slots (backend.{field}): scale out once requests start to wait; "
            "--from-bench sets a target measured against your SLOs"
        )
    return DEFAULT_QUEUE_TARGET, (
        f"llmdeploy's default ({_number(DEFAULT_QUEUE_TARGET)}; backend.max_num_seqs unset); "
        "--from-bench sets a target measured against your SLOs"
    )


def _scaled_object(
    inputs: ExportInputs, trigger: dict[str, Any], notes: list[str], *, target_note: str
) -> RenderedFile:
    scale = inputs.profile.scale
    name = names.base_name(inputs)
    metadata = names.metadata(inputs, name)
    metadata["annotations"] = {
        **dict(inputs.profile.kubernetes.annotations),
        ANNOTATION_TARGET: target_note,
        **_cold_start_annotation(inputs),
    }
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "pollingInterval": POLLING_INTERVAL_S,
        "cooldownPeriod": scale.scale_in_idle_s,
        "minReplicaCount": scale.min_replicas,
        "maxReplicaCount": scale.max_replicas,
        "advanced": {"horizontalPodAutoscalerConfig": {"behavior": _behavior(scale)}},
        "triggers": [trigger],
    }
    doc = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": metadata,
           "spec": spec}
    needs = ["KEDA ScaledObject: needs KEDA (https://keda.sh) in the cluster."]
    if trigger["type"] == "prometheus":
        needs.append(f"It asks the Prometheus at {PROMETHEUS_URL} (serverAddress).")
    comments = [
        *needs,
        *notes,
        "KEDA creates and owns the HorizontalPodAutoscaler of the Deployment.",
    ]
    return manifest_file("scaledobject.yaml", doc, comments)


def _hpa(inputs: ExportInputs, cpu: int, notes: list[str]) -> RenderedFile:
    scale = inputs.profile.scale
    name = names.base_name(inputs)
    metadata = names.metadata(inputs, name)
    metadata["annotations"] = {
        **dict(inputs.profile.kubernetes.annotations),
        ANNOTATION_TARGET: f"{cpu}% CPU",
    }
    doc = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": scale.min_replicas,
            "maxReplicas": scale.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": cpu},
                    },
                }
            ],
            "behavior": _behavior(scale),
        },
    }
    comments = [
        "HorizontalPodAutoscaler on CPU utilisation: needs the metrics server (metrics.k8s.io)",
        "and CPU requests on the server container.",
        *notes,
    ]
    return manifest_file("hpa.yaml", doc, comments)


def _behavior(scale: ScaleSpec) -> dict[str, Any]:
    """The HPA behaviour both autoscalers use (KEDA passes it to the HPA it creates)."""
    scale_down: dict[str, Any] = {"stabilizationWindowSeconds": scale.scale_in_idle_s}
    if scale.cooldown_s > 0:
        scale_down["policies"] = [{"type": "Pods", "value": 1, "periodSeconds": scale.cooldown_s}]
    return {
        "scaleUp": {"stabilizationWindowSeconds": scale.scale_out_after_s},
        "scaleDown": scale_down,
    }


def _check_windows(scale: ScaleSpec) -> None:
    limits = {
        "scale.scale_out_after_s": (scale.scale_out_after_s, MAX_WINDOW_S),
        "scale.scale_in_idle_s": (scale.scale_in_idle_s, MAX_WINDOW_S),
        "scale.cooldown_s": (scale.cooldown_s, MAX_POLICY_PERIOD_S),
    }
    for field, (value, limit) in limits.items():
        if value > limit:
            raise ProfileError(
                f"{field} is {value} s; Kubernetes' HorizontalPodAutoscaler accepts at most "
                f"{limit} s there",
                hint=f"set {field} to {limit} or less",
            )


def _cpu_target(scale: ScaleSpec) -> int:
    if scale.metric == "cpu" and scale.target is not None:
        return max(1, round(scale.target))
    return DEFAULT_CPU_TARGET


def _cpu_notes(inputs: ExportInputs) -> list[str]:
    scale = inputs.profile.scale
    notes = [f"Scales on CPU utilisation: {_cpu_target(scale)}% of the CPU request per replica."]
    if scale.metric == "queue":
        why = (
            _no_queue_reason(inputs)
            if server_metrics(inputs) is None
            else "the queue metric needs KEDA (scale.autoscaler: keda)"
        )
        notes.append(f"Not on the queue: {why}.")
        if inputs.queue_target is not None:
            notes.append("The --from-bench target is not used by a CPU autoscaler.")
    if inputs.profile.accelerator != "cpu":
        notes.append(
            "On a GPU server the CPU is mostly idle under load: this scales late, if at all."
        )
    return notes


def _no_queue_reason(inputs: ExportInputs) -> str:
    if inputs.profile.backend.kind == "ollama":
        return "Ollama exports no Prometheus metrics (no queue metric to scale on)"
    return "the server's metrics are off (backend.metrics: false), so there is no queue metric"


def _scale_to_zero_notes(inputs: ExportInputs) -> list[str]:
    if inputs.profile.scale.min_replicas > 0:
        return [f"At least {inputs.profile.scale.min_replicas} replica(s) stay warm."]
    idle = inputs.profile.scale.scale_in_idle_s
    return [
        f"Scale to zero (scale.min_replicas: 0): the last replica goes after {idle} s without",
        "requests (scale.scale_in_idle_s). The first request after that waits for "
        + _cold_start_text(inputs) + ".",
        "At zero replicas no server exports the queue metric, so this trigger cannot see new",
        "requests: something else must wake the deployment (kubectl scale, a second trigger on",
        "your gateway's request metric, or the KEDA HTTP add-on in front of the Service).",
    ]


def _cold_start_annotation(inputs: ExportInputs) -> dict[str, str]:
    if inputs.profile.scale.min_replicas > 0:
        return {}
    return {ANNOTATION_COLD_START: _cold_start_text(inputs)}


def _cold_start_text(inputs: ExportInputs) -> str:
    """What the first request after an idle period waits for."""
    parts = ["a cold start: pod scheduling, the image pull"]
    if inputs.profile.kubernetes.weights_volume == "per-pod":
        parts.append("the weights download (per-pod volume)")
    weights = inputs.weights_bytes
    bandwidth = inputs.profile.probes.load_bandwidth_mib_s
    if weights:
        seconds = weights / (bandwidth * 2**20)
        took = f"about {seconds:.0f} s" if seconds >= 1 else "under 1 s"
        parts.append(
            f"loading {format_gib(weights)} of weights ({took} at {bandwidth:g} MiB/s, "
            "probes.load_bandwidth_mib_s)"
        )
    else:
        parts.append("loading the weights")
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _number(value: float) -> str:
    """A threshold as KEDA reads it (a string): ``4``, ``2.5``."""
    return f"{value:.2f}".rstrip("0").rstrip(".")
