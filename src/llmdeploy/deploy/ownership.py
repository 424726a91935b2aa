"""Which containers llmdeploy may stop, replace or remove: only its own, for this deployment.

A container is ours for deployment D when it carries ``io.llmdeploy.managed=true`` and
``io.llmdeploy.deployment=D``. A container that merely has the name ``llmdeploy-D`` (made by
hand or by another tool) is never touched: ``up`` stops with a :class:`NameConflictError`
that names it, as ``podman run`` and ``docker run`` refuse a taken name.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from llmdeploy.constants import LABEL_BACKEND, LABEL_DEPLOYMENT, LABEL_MANAGED
from llmdeploy.core.route import ROUTER_KIND
from llmdeploy.core.run_spec import ContainerInfo
from llmdeploy.errors import NameConflictError

if TYPE_CHECKING:
    from llmdeploy.core.run_spec import RunSpec
    from llmdeploy.engines.base import Engine


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


def kind_conflict(
    container: ContainerInfo, deployment: str, engine: str, *, router: bool
) -> NameConflictError | None:
    """The error when our container for ``deployment`` is of the other kind: a router
    (``route --run``) where a model server is being started (``router`` False), or a model
    server where a router is. ``up`` replaces a changed deployment of its own kind only: a
    route named like its own edge would otherwise delete the model it routes to."""
    theirs = container.labels.get(LABEL_BACKEND, "")
    if (theirs == ROUTER_KIND) == router:
        return None
    what = f"a router ({theirs})" if theirs == ROUTER_KIND else f"a model server ({theirs or '?'})"
    flag = "--name" if router else "--deployment"
    return NameConflictError(
        f"deployment {deployment!r} in {engine} is {what}; "
        f"{'route --run' if router else 'up'} replaces only a deployment of its own kind",
        hint=f"choose another name ({flag} {deployment}-2), or `llmdeploy down {deployment}` "
        "first if it is no longer needed",
    )


def remove_created(
    engine: Engine, run: RunSpec, deployment: str, created: ContainerInfo | None
) -> None:
    """Remove the container a failed start created, by ID; never one it did not make.

    When ``engine.run`` was interrupted before it returned the new container's ID, the
    container under ``run.name`` is removed only if it carries ``deployment``'s labels and
    exactly ``run``'s (spec hash included): it can only be the one being created. Errors
    are swallowed: the failure that ended the start matters more."""
    with contextlib.suppress(Exception):
        if created is not None:
            engine.remove(created.id)
            return
        found = engine.inspect(run.name)
        if found is not None and owned_by(found, deployment) and found.labels == run.labels:
            engine.remove(found.id)
