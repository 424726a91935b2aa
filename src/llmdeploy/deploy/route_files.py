"""Where ``route --run`` keeps a router's configuration when the user named no folder, and
its removal with the router (``down``): a folder the user named with ``--output`` is theirs
and stays."""

from __future__ import annotations

import shutil
from pathlib import Path

from llmdeploy.constants import LABEL_BACKEND
from llmdeploy.core.route import ROUTER_KIND
from llmdeploy.core.run_spec import ContainerInfo
from llmdeploy.paths import cache_dir


def routes_cache() -> Path:
    """``~/.cache/llmdeploy/routes``: one folder per router started without ``--output``."""
    return cache_dir() / "routes"


def default_config_dir(name: str) -> Path:
    """The configuration folder of router ``name`` when no ``--output`` was given."""
    return routes_cache() / name


def forget_cached_config(container: ContainerInfo) -> list[Path]:
    """Delete the configuration folder a removed router ``container`` mounted, when it is
    one of :func:`routes_cache`'s; returns what was deleted (nothing for a model server or
    a folder of the user's)."""
    if container.labels.get(LABEL_BACKEND) != ROUTER_KIND:
        return []
    root = routes_cache().resolve()
    deleted = []
    for mount in container.mounts:
        source = Path(mount.source).resolve()
        if source.parent == root and source.is_dir():
            shutil.rmtree(source, ignore_errors=True)
            deleted.append(source)
    return deleted
