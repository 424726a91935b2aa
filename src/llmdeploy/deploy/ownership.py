"""Which containers llmdeploy may stop, replace or remove: only its own, for this deployment.

A container is ours for deployment D when it carries ``io.llmdeploy.managed=true`` and
``io.llmdeploy.deployment=D``. A container that merely has the name ``llmdeploy-D`` (made by
hand or by another tool) is never touched: ``up`` stops with a :class:`NameConflictError`
that names it, as ``podman run`` and ``docker run`` refuse a taken name.
"""

from __future__ import annotations

from llmdeploy.constants import LABEL_DEPLOYMENT, LABEL_MANAGED
from llmdeploy.core.run_spec import ContainerInfo
from llmdeploy.errors import NameConflictError


def owned_by(container: ContainerInfo, deployment: str) -> bool:
    """True when the container carries llmdeploy's labels for ``deployment``."""
    labels = container.labels
    return labels.get(LABEL_MANAGED) == "true" and labels.get(LABEL_DEPLOYMENT) == deployment


def name_conflict(container: ContainerInfo, deployment: str, engine: str) -> NameConflictError:
    """The error for a container that holds the deployment's name but is not ours."""
    other = container.labels.get(LABEL_DEPLOYMENT)
    whose = (
        f"llmdeploy deployment {other!r}"
        if container.labels.get(LABEL_MANAGED) == "true" and other
        else "something other than llmdeploy (it has no io.llmdeploy labels)"
    )
    return NameConflictError(
        f"the container name {container.name!r} is already in use in {engine} by "
        f"container {container.id[:12]} ({container.state}, image {container.image or '?'}), "
        f"made by {whose}; llmdeploy leaves it alone",
        hint=f"start this deployment under another name: --deployment {deployment}-2 "
        "(or remove that container yourself if you no longer need it)",
    )
