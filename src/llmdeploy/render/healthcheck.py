"""The container health check of the single-host exports (Quadlet, compose).

The engine runs the check inside the container, so it can only use what the image has. The
images llmdeploy runs differ: llama.cpp's upstream server images and vLLM's have ``curl``; the
images llmdeploy builds (llama.cpp and vLLM on the CPU) have ``python3`` but no ``curl``;
Ollama's has neither, only ``bash``. One shell command therefore tries, in order, the first
tool the image has: ``curl``, ``wget``, ``python3``, and bash's ``/dev/tcp`` — each fails on
anything but a 2xx answer (llama.cpp answers 503 while the model loads), so the check means
"the model can serve" on every image with ``/bin/sh``. No ``$`` or ``%`` appears in it, so
neither compose interpolation nor systemd specifiers can touch it.

Timings: the probes section of the profile (period, failures), and a start period long enough
for a cold start (:func:`startup_budget_s`) during which failures do not count.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from llmdeploy.errors import RenderError
from llmdeploy.render.inputs import ExportInputs

CHECK_TIMEOUT_S = 10  # one check; each tool gives up after TOOL_TIMEOUT_S
TOOL_TIMEOUT_S = 5
SERVER_START_S = 30  # the server's own start (imports, warm-up) on top of loading the weights
_MIB = 1024 * 1024
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*$")


@dataclass(frozen=True)
class HealthCheck:
    """``command`` for ``/bin/sh -c`` inside the container, and when to run it (seconds)."""

    command: str
    interval_s: int
    timeout_s: int
    retries: int
    start_period_s: int


def health_check(inputs: ExportInputs) -> HealthCheck:
    """The check of the server's readiness path on its container port.

    A backend with one-time steps after the first start (Ollama: create the served model) is
    checked on its liveness path instead: on one host nobody runs those steps before the user
    does (compose and Quadlet print them), and a readiness check that cannot pass until then
    would mark the server unhealthy, and under Quadlet kill it in a loop. On Kubernetes the
    steps run in the ``postStart`` hook, so its readiness probe keeps the readiness path.
    """
    plan, probes = inputs.plan, inputs.profile.probes
    default = plan.launch.liveness_path if plan.launch.post_start else plan.launch.readiness_path
    path = probes.ready_path or default
    return HealthCheck(
        command=health_command(plan.launch.container_port, path),
        interval_s=probes.period_s,
        timeout_s=CHECK_TIMEOUT_S,
        retries=probes.failure_threshold,
        start_period_s=startup_budget_s(inputs),
    )


def health_command(port: int, path: str) -> str:
    """A POSIX shell command that succeeds when ``http://127.0.0.1:PORT/PATH`` answers 2xx.

    RenderError when ``path`` holds characters that would need quoting (only plain URL path
    characters are accepted, so the nested quotes below stay simple).
    """
    if not _SAFE_PATH.match(path):
        raise RenderError(
            f"health path {path!r}: only letters, digits and . _ ~ / - are allowed in the "
            "health check of an export"
        )
    url = f"http://127.0.0.1:{port}{path}"
    t = TOOL_TIMEOUT_S
    tcp = (
        f"exec 3<>/dev/tcp/127.0.0.1/{port} && "
        f'printf "GET {path} HTTP/1.0\\r\\n\\r\\n" >&3 && head -n 1 <&3 | grep -q \" 2[0-9][0-9] \"'
    )
    return (
        f"if command -v curl >/dev/null 2>&1; then curl -fsS -m {t} -o /dev/null {url}; "
        f"elif command -v wget >/dev/null 2>&1; then wget -q -T {t} -O /dev/null {url}; "
        f"elif command -v python3 >/dev/null 2>&1; then python3 -c "
        f"'import urllib.request as u; u.urlopen(\"{url}\", timeout={t})'; "
        f"else bash -c '{tcp}'; fi"
    )


def startup_budget_s(inputs: ExportInputs) -> int:
    """Seconds a cold start may take before failed checks count.

    The profile's ``probes.startup_timeout_s`` when set; else the longer of what ``up`` waits
    (``health.timeout_s``) and twice (weights / ``probes.load_bandwidth_mib_s`` +
    SERVER_START_S) when the weights' size is known.
    """
    probes = inputs.profile.probes
    if probes.startup_timeout_s is not None:
        return probes.startup_timeout_s
    budget = inputs.plan.health.timeout_s
    if inputs.weights_bytes:
        load_s = inputs.weights_bytes / (probes.load_bandwidth_mib_s * _MIB)
        budget = max(budget, 2 * (load_s + SERVER_START_S))
    return math.ceil(budget)
