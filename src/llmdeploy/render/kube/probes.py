"""Probes that mean "the model can serve", and a startup window long enough for a cold load.

- startup: the readiness path, probed every 10 s for as long as a cold start may take:
  ``probes.startup_timeout_s``, else (weights / ``probes.load_bandwidth_mib_s`` + the server's
  own start, ``ServerLaunch.start_s``) doubled. Readiness and liveness wait for it.
- readiness: ``ServerLaunch.readiness_path`` (each backend's "can serve": llama.cpp's /health is
  503 while loading, vLLM serves nothing before its engine is up, Ollama's /v1/models/NAME is 404
  until the post-start steps created the model), every ``probes.period_s``, out after
  ``probes.failure_threshold`` failures.
- liveness: ``ServerLaunch.liveness_path``, with twice the failures and a longer timeout: a
  server busy with long generations is taken out of the Service, not restarted.
"""

from __future__ import annotations

import math

from llmdeploy.core.sizes import MIB, to_bytes
from llmdeploy.render.inputs import ExportInputs
from llmdeploy.render.kube.names import PORT_NAME
from llmdeploy.render.kube.yamldoc import Doc

STARTUP_PERIOD_S = 10
READY_TIMEOUT_S = 5
LIVE_TIMEOUT_S = 10


def load_bytes(inputs: ExportInputs) -> int | None:
    """What the server reads at start: the weights, else the declared volume size."""
    if inputs.weights_bytes:
        return inputs.weights_bytes
    size = inputs.profile.kubernetes.weights_size
    return to_bytes(size) if size else None


def startup_budget_s(inputs: ExportInputs) -> int:
    """Seconds a cold start may take before the startup probe gives up."""
    probes = inputs.profile.probes
    if probes.startup_timeout_s is not None:
        return probes.startup_timeout_s
    weights = load_bytes(inputs) or 0
    load_s = weights / (probes.load_bandwidth_mib_s * MIB)
    return math.ceil((load_s + inputs.plan.launch.start_s) * 2)


def _http(path: str) -> Doc:
    return {"httpGet": {"path": path, "port": PORT_NAME}}


def startup_probe(inputs: ExportInputs) -> Doc:
    budget = startup_budget_s(inputs)
    return {
        **_http(inputs.plan.launch.readiness_path),
        "periodSeconds": STARTUP_PERIOD_S,
        "timeoutSeconds": READY_TIMEOUT_S,
        "failureThreshold": max(1, math.ceil(budget / STARTUP_PERIOD_S)),
    }


def readiness_probe(inputs: ExportInputs) -> Doc:
    probes = inputs.profile.probes
    return {
        **_http(inputs.plan.launch.readiness_path),
        "periodSeconds": probes.period_s,
        "timeoutSeconds": READY_TIMEOUT_S,
        "failureThreshold": probes.failure_threshold,
    }


def liveness_probe(inputs: ExportInputs) -> Doc:
    probes = inputs.profile.probes
    return {
        **_http(inputs.plan.launch.liveness_path),
        "periodSeconds": probes.period_s,
        "timeoutSeconds": LIVE_TIMEOUT_S,
        "failureThreshold": probes.failure_threshold * 2,
    }
