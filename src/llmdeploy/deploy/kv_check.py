"""Planned vs actual KV cache of a deployment: the plan's figure from the container's labels,
the server's own from its log.

Labels cannot change once a container exists (Docker and Podman have no call for it), so the
two figures are kept apart: the planned ones go into the labels when ``up`` creates the
container (:func:`planned_kv`), the server's is read again from the container's log whenever
``up`` or ``status`` shows it (:func:`check_running`): the log is the server's own record, it
needs no state of ours that could drift or be left behind by ``down``, and it also serves
containers started by hand from ``render``'s command line. The reader streams the log from
the start and stops at the line it needs (a few hundred lines in).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from llmdeploy.core.kv_report import TOLERANCE, KvCheck, PlannedKv, ServerKv, compared_unit
from llmdeploy.core.labels import DeploymentLabels
from llmdeploy.engines.base import Engine

if TYPE_CHECKING:  # the planner is imported by whoever made the report
    from llmdeploy.planner.report import FitReport


def planned_kv(report: FitReport | None) -> PlannedKv | None:
    """The figures of ``report`` a container records: llama.cpp / Ollama the cache they allocate
    (``kv_cache_required_bytes``, ``kv_cache_tokens`` cells); vLLM the memory counted for its
    cache and the tokens it holds (``kv_capacity_tokens``; None when the target is unknown)."""
    if report is None:
        return None
    if report.backend == "vllm":
        return PlannedKv(bytes=report.kv_cache_bytes, tokens=report.kv_capacity_tokens)
    return PlannedKv(bytes=report.kv_cache_required_bytes, tokens=report.kv_cache_tokens)


def check_running(engine: Engine, container: str, labels: DeploymentLabels) -> KvCheck:
    """The planned figure (``labels``) beside the one the server logged in ``container``.

    Never raises: a log that cannot be read, or has no such line, gives ``server=None`` and
    a note saying why.
    """
    unit = compared_unit(labels.backend)
    notes: list[str] = []
    planned = labels.planned_kv
    if planned is None:
        notes.append(
            "no planned figure on the container (the model could not be sized when it was "
            "created, or it was created without llmdeploy's plan labels)"
        )
    elif planned.value(unit) is None:
        notes.append(f"the plan has no {unit} figure (vLLM's capacity needs the target's memory)")
    server, why = read_from_log(engine, container, labels.backend)
    if why:
        notes.append(why)
    check = KvCheck(labels.backend, unit, planned, server, tuple(notes))
    if check.differs:
        off = (
            f"the server's figure is more than {TOLERANCE:.0%} off the plan: the planner's rules "
            "do not match this model or server version (docs/planner.md, 'Planned vs actual')"
        )
        check = replace(check, notes=(*check.notes, off))
    return check


def read_from_log(engine: Engine, container: str, backend: str) -> tuple[ServerKv | None, str]:
    """The server's KV figure from ``container``'s log, or None and why not."""
    from llmdeploy.backends.server_figures import LOOKED_FOR, MAX_LOG_LINES, read_server_kv

    lines = None
    try:
        lines = engine.logs(container)
        server = read_server_kv(backend, lines)
    except Exception as exc:  # an engine error must not end `up` or `status`
        return None, f"not reported: its log could not be read ({exc})"
    finally:
        close = getattr(lines, "close", None)
        if callable(close):
            close()  # stop streaming the rest of the log
    if server is None:
        what, when = LOOKED_FOR.get(backend, ("KV cache", f"{backend} has no reader"))
        return None, (
            f"not reported: no {what} line in the first {MAX_LOG_LINES} lines of its log ({when})"
        )
    return server, ""
