"""``status``: every deployment llmdeploy manages, read from its container's labels.

For a running deployment the KV cache the planner expected (a label) is shown beside the one
the server logged (read again from its log, ``deploy.kv_check``), and the time to ready of
the ``up`` that started it (``deploy.ready_record``; the labels' part of it for a container
without a record).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from llmdeploy.core.kv_report import KvCheck
from llmdeploy.core.labels import DeploymentLabels
from llmdeploy.core.route import ROUTER_KIND
from llmdeploy.core.run_spec import ContainerInfo
from llmdeploy.deploy import ready_record
from llmdeploy.deploy.health import probe
from llmdeploy.deploy.kv_check import check_running
from llmdeploy.deploy.ready_time import TimeToReady
from llmdeploy.engines.base import Engine


@dataclass(frozen=True)
class DeploymentStatus:
    """One deployment's container, its labels, whether it answers its health check, and its
    planned vs actual KV cache (None when not running: a stopped server has no cache)."""

    container: ContainerInfo
    labels: DeploymentLabels
    healthy: bool | None  # None when not running
    health_detail: str
    uptime_s: float | None
    kv_cache: KvCheck | None = None
    ready: TimeToReady | None = None

    @property
    def deployment(self) -> str:
        return self.labels.deployment

    def to_dict(self) -> dict[str, object]:
        """The row ``status --json`` prints."""
        container = self.container
        return {
            "deployment": self.deployment,
            "engine": container.engine,
            "container": container.name,
            "state": container.state,
            "healthy": self.healthy,
            "health": self.health_detail,
            "endpoint": self.labels.endpoint,
            "api_base_url": self.labels.api_base_url,
            "uptime_s": round(self.uptime_s, 1) if self.uptime_s is not None else None,
            "image": container.image,
            "model": self.labels.model,
            "served_model": self.labels.served_model,
            "exit_code": container.exit_code if not container.running else None,
            "kv_cache": self.kv_cache.to_dict() if self.kv_cache else None,
            "time_to_ready": self.ready.to_dict() if self.ready else None,
        }


def status(engines: list[Engine], deployment: str | None = None) -> list[DeploymentStatus]:
    """Every llmdeploy container (of ``deployment`` when given) on ``engines``, health probed
    (1 s timeout each) and the server's KV cache figure read from the log for the running
    ones."""
    rows = []
    for engine in engines:
        containers = engine.list(DeploymentLabels.selector(deployment=deployment))
        if deployment is None:  # all of this engine's: records of the others are stale
            ready_record.prune(engine.name, [c.id for c in containers])
        for container in containers:
            record = container.deployment_labels
            if record is None:
                continue
            healthy: bool | None = None
            detail = container.state
            kv: KvCheck | None = None
            if container.running:
                healthy, detail = probe(record.health_url, timeout_s=1.0)
                if record.backend != ROUTER_KIND:  # a router (route --run) has no KV cache
                    kv = check_running(engine, container.id, record)
            rows.append(
                DeploymentStatus(
                    container=container,
                    labels=record,
                    healthy=healthy,
                    health_detail=detail,
                    uptime_s=_uptime(container) if container.running else None,
                    kv_cache=kv,
                    ready=ready_record.read(container.id)
                    or TimeToReady.from_labels(container.labels),
                )
            )
    return rows


def _uptime(container: ContainerInfo) -> float | None:
    if not container.started_at:
        return None
    text = container.started_at
    # Docker: 2024-01-01T00:00:00.123456789Z ; Podman: 2024-01-01T00:00:00.123456789+00:00
    text = text.replace("Z", "+00:00")
    if "." in text:
        head, rest = text.split(".", 1)
        frac = "".join(ch for ch in rest if ch.isdigit())[:6]
        tz = rest[len("".join(ch for ch in rest if ch.isdigit())) :]
        text = f"{head}.{frac}{tz}"
    try:
        started = datetime.fromisoformat(text)
    except ValueError:
        return None
    if started.tzinfo is None:
        started = started.replace(tzinfo=timezone.utc)
    return max(0.0, (datetime.now(timezone.utc) - started).total_seconds())
