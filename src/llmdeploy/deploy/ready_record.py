"""The time-to-ready record of a running container, kept where ``status`` finds it.

One small JSON file per container, ``<state dir>/deployments/<container id>.json``
(``paths.state_dir``: ``$XDG_STATE_HOME/llmdeploy``, default ``~/.local/state/llmdeploy``),
holding the engine's name and :meth:`TimeToReady.to_dict`. Keyed by the container's ID, a
record can only describe the container it was written for: a container made again under the
same name has a new ID and no record until its ``up`` writes one. ``down`` removes the
records of what it removes; :func:`prune` drops those of an engine's containers that are
gone (removed by hand), so records do not pile up. A record that cannot be read is treated
as absent: ``status`` must never fail because of it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from llmdeploy.deploy.ready_time import TimeToReady
from llmdeploy.paths import state_dir


def records_dir() -> Path:
    return state_dir() / "deployments"


def _path(container_id: str) -> Path:
    safe = "".join(ch for ch in container_id if ch.isalnum())
    if not safe:
        raise ValueError(f"not a container ID: {container_id!r}")
    return records_dir() / f"{safe}.json"


def write(container_id: str, engine: str, ready: TimeToReady) -> None:
    """Record ``ready`` for ``container_id`` (atomically: a reader sees the old file or the
    new one). An unwritable state directory loses the record, never the deployment."""
    folder = records_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".part")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"engine": engine, "time_to_ready": ready.to_dict()}, handle)
        os.replace(tmp, _path(container_id))
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def read(container_id: str) -> TimeToReady | None:
    """The record of ``container_id``, None when there is none (or it cannot be read)."""
    try:
        data = json.loads(_path(container_id).read_text(encoding="utf-8"))
        found = data["time_to_ready"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return TimeToReady.from_dict(found) if isinstance(found, dict) else None


def remove(container_id: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        _path(container_id).unlink()


def prune(engine: str, existing_ids: Iterable[str]) -> None:
    """Drop the records of ``engine``'s containers that are not in ``existing_ids`` (all of
    that engine's llmdeploy containers, as just listed)."""
    keep = {"".join(ch for ch in cid if ch.isalnum()) for cid in existing_ids}
    try:
        files = list(records_dir().glob("*.json"))
    except OSError:
        return
    for file in files:
        if file.stem in keep:
            continue
        try:
            owner = json.loads(file.read_text(encoding="utf-8")).get("engine")
        except (OSError, ValueError, AttributeError):
            continue
        if owner == engine:
            with contextlib.suppress(OSError):
                file.unlink()
