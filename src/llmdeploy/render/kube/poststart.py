"""The backend's post-start steps (Ollama: pull, create the served model) inside the pod.

``up`` runs ``ServerLaunch.post_start`` through the backend's API once the server is healthy;
``render`` prints them as ``exec`` lines. In a pod they run as one shell script: on Kubernetes
as the server container's ``postStart`` hook (the container is not Running, so not probed or
served, until it finished), under ``podman kube play`` (no lifecycle hooks) in a sidecar
container sharing the pod's network. The server is still starting when the script begins, so
each step is retried until it succeeds or :data:`STEP_DEADLINE_S` passes. The files the steps
read (``launch.extra_files``: the Modelfile) come from a ConfigMap mounted at ``files_dir``.
"""

from __future__ import annotations

import shlex

from llmdeploy.core.launch import ServerLaunch
from llmdeploy.render.inputs import ExportInputs
from llmdeploy.render.kube import names
from llmdeploy.render.kube.yamldoc import Doc

STEP_DEADLINE_S = 300
RETRY_S = 2


def setup_script(launch: ServerLaunch, *, files_dir: str) -> str | None:
    """The steps as a POSIX shell script; None when the backend has none."""
    if not launch.post_start:
        return None
    tries = STEP_DEADLINE_S // RETRY_S
    lines = [
        "set -eu",
        "step() {",
        "  n=0",
        '  until "$@"; do',
        "    n=$((n + 1))",
        f'    if [ "$n" -ge {tries} ]; then echo "llmdeploy: failed: $*" >&2; return 1; fi',
        f"    sleep {RETRY_S}",
        "  done",
        "}",
    ]
    for index, item in enumerate(launch.post_start, start=1):
        command = " ".join(shlex.quote(arg) for arg in item.argv)
        lines.append(f"# {item.description}")
        if item.stdin_file:
            # a function's redirection is applied at each call: every retry reads the file anew
            source = shlex.quote(f"{files_dir}/{item.stdin_file}")
            lines += [f"step_{index}() {{ {command} < {source}; }}", f"step step_{index}"]
        else:
            lines.append(f"step {command}")
    return "\n".join(lines) + "\n"


def files_config_map(inputs: ExportInputs) -> Doc | None:
    """The backend's extra files as a ConfigMap; None when there are none."""
    files = inputs.plan.launch.extra_files
    if not files:
        return None
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": names.metadata(inputs, names.files_config_name(inputs)),
        "data": {item.path: item.content for item in files},
    }
