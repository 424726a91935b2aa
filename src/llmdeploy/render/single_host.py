"""What the single-host exports (Quadlet, compose) share: the published-port text, the named
volumes that replace writable mounts, the labels on those volumes and the notes at the top of
each file (where the weights come from, the image without a registry, one-time steps).
"""

from __future__ import annotations

from llmdeploy.constants import LABEL_BACKEND, LABEL_DEPLOYMENT, LABEL_MANAGED, LABEL_PROFILE
from llmdeploy.core.engine_traits import EngineTraits
from llmdeploy.core.plan import DeploymentPlan
from llmdeploy.core.run_spec import PortMapping, RunSpec
from llmdeploy.render.bundle import post_start_lines


def publish_value(port: PortMapping) -> str:
    """``HOST_IP:HOST_PORT:CONTAINER_PORT[/udp]`` as ``podman run --publish`` takes it (an IPv6
    address in brackets)."""
    host = f"[{port.host_ip}]" if ":" in port.host_ip else port.host_ip
    suffix = "" if port.protocol == "tcp" else f"/{port.protocol}"
    return f"{host}:{port.host_port}:{port.container_port}{suffix}"


def named_volumes(spec: RunSpec, prefix: str) -> dict[str, str]:
    """Mount target -> volume name (``PREFIX-data-N``) for each writable mount: a backend's
    state (Ollama's models) lives in a volume the engine creates, not in a host folder that
    would have to exist first; the read-only weights stay a bind mount of the store entry."""
    writable = [mount for mount in spec.mounts if not mount.read_only]
    return {mount.target: f"{prefix}data-{i}" for i, mount in enumerate(writable, start=1)}


def volume_labels(plan: DeploymentPlan) -> dict[str, str]:
    """The labels that say whose a volume is (managed, deployment, profile, backend)."""
    labels = plan.labels.to_labels()
    keep = (LABEL_BACKEND, LABEL_DEPLOYMENT, LABEL_MANAGED, LABEL_PROFILE)
    return {key: labels[key] for key in sorted(keep)}


def weights_notes(plan: DeploymentPlan, *, converted: bool) -> list[str]:
    """Where the read-only weights come from on the host that runs the export (``converted``:
    the store entry is a conversion ``up`` makes, not what ``models pull`` fetches)."""
    if converted:
        fetch = f"llmdeploy up --profile {plan.profile_name} (pulls and converts them)"
    else:
        fetch = f"llmdeploy models pull {plan.model_ref}"
    return [
        f"The weights: {plan.host_model_dir} on this host, mounted read-only",
        f"(fetch them first: {fetch}).",
    ]


def image_notes(plan: DeploymentPlan, key: str) -> list[str]:
    """How to get the image without a registry, when the profile can build it."""
    build_tag = plan.images.build_tag
    if not build_tag or build_tag == plan.run.image:
        return []
    return [
        f"Image: {plan.run.image}. Without a registry, build {build_tag}",
        f"(llmdeploy render --profile {plan.profile_name} --out DIR; see DIR/commands.sh)",
        f"and set {key} to it.",
    ]


def after_start_notes(plan: DeploymentPlan, traits: EngineTraits, label: str) -> list[str]:
    """The backend's one-time steps after the first start (Ollama: create the model), as the
    shell commands ``llmdeploy render`` prints."""
    steps = [line for line in post_start_lines(plan, traits) if not line.startswith("#")]
    if not steps:
        return []
    return [f"Once, after the first start ({label}; kept in the volume):",
            *("  " + step for step in steps)]
