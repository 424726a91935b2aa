"""The saved report: a versioned pydantic model that every output format renders.

Raw per-request timestamps are stored first; summaries are derived from them (and can be
re-derived, e.g. with other SLOs, by :func:`llmdeploy.bench.metrics.summarize`).

Times in a :class:`RequestRecord` are seconds on the client's monotonic clock, relative to
the run origin (``BenchReport.origin`` is meaningless outside the run, only differences are).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmdeploy.bench.config import BenchConfig, LoadSpec
from llmdeploy.errors import BenchError

SCHEMA_VERSION = 1

__all__ = [
    "SCHEMA_VERSION",
    "BenchReport",
    "Distribution",
    "EnvironmentInfo",
    "GoodputSummary",
    "RequestRecord",
    "ServerView",
    "StageResult",
    "StageSummary",
    "load_report",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


TokenSource = Literal["usage", "chunks", "none"]


class RequestRecord(_Model):
    """One request as the client saw it."""

    index: int
    warmup: bool = False
    scheduled_s: float | None = None  # planned send time (rate modes)
    start_s: float  # just before the connection is taken and the request written
    end_s: float  # last byte of the response (or the failure)
    token_times_s: list[float] = Field(default_factory=list)  # arrival of each content chunk
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    token_source: TokenSource = "none"
    error: str | None = None  # cause: connect, disconnect, timeout, http_<status>, ...
    error_detail: str | None = None
    malformed_events: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def ttft_s(self) -> float | None:
        return self.token_times_s[0] - self.start_s if self.token_times_s else None

    @property
    def e2e_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def tpot_s(self) -> float | None:
        ttft = self.ttft_s
        n = self.output_tokens
        if ttft is None or n is None or n < 2:
            return None
        return (self.e2e_s - ttft) / (n - 1)


class Distribution(_Model):
    """Statistics of one latency metric, in milliseconds."""

    count: int
    mean: float
    median: float
    p90: float
    p95: float
    p99: float
    max: float
    min: float


class GoodputSummary(_Model):
    slo: dict[str, float]
    good_requests: int
    requests_per_s: float
    ratio: float  # good / all measured requests (failed ones count as not good)


class StageSummary(_Model):
    requests: int  # measured requests (warm-up excluded), failed ones included
    ok: int
    failed: int
    warmup_excluded: int
    errors_by_cause: dict[str, int] = Field(default_factory=dict)
    error_rate: float
    duration_s: float  # first measured start -> last measured end
    ttft_ms: Distribution | None = None
    itl_ms: Distribution | None = None
    tpot_ms: Distribution | None = None
    e2e_ms: Distribution | None = None
    schedule_lag_ms: Distribution | None = None
    prompt_tokens: int = 0
    output_tokens: int = 0
    output_tokens_per_s: float = 0.0
    total_tokens_per_s: float = 0.0
    requests_per_s: float = 0.0
    concurrency: float = 0.0  # time-averaged requests in flight (Little's law)
    token_sources: dict[str, int] = Field(default_factory=dict)
    goodput: GoodputSummary | None = None


class ServerView(_Model):
    """The server's own metrics (Prometheus) around one stage."""

    url: str
    families: list[str] = Field(default_factory=list)  # e.g. ["llamacpp"], ["vllm"]
    before: dict[str, float] = Field(default_factory=dict)
    after: dict[str, float] = Field(default_factory=dict)
    delta: dict[str, float] = Field(default_factory=dict)  # counters: after - before
    peak: dict[str, float] = Field(default_factory=dict)  # gauges: max seen while running
    derived: dict[str, float] = Field(default_factory=dict)  # e.g. server_ttft_mean_ms
    error: str | None = None


class StageResult(_Model):
    name: str
    load: LoadSpec
    started_s: float
    ended_s: float
    aborted: str | None = None
    records: list[RequestRecord]
    summary: StageSummary
    server: ServerView | None = None


class EnvironmentInfo(_Model):
    hostname: str
    platform: str
    python: str
    cpu_count: int
    llmdeploy_version: str
    event_loop: str
    http_client: str = "llmdeploy raw asyncio HTTP/1.1"


class BenchReport(_Model):
    schema_version: int = SCHEMA_VERSION
    tool: str = "llmdeploy bench"
    created_at: str
    config: BenchConfig
    environment: EnvironmentInfo
    model: str
    stages: list[StageResult]
    gates: list[str] = Field(default_factory=list)  # failed --fail-on checks, if any

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.model_dump_json(indent=1), encoding="utf-8")


def load_report(path: str | Path) -> BenchReport:
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BenchError(f"cannot read report {p}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise BenchError(f"report {p} is not JSON: {exc}") from exc
    version = raw.get("schema_version") if isinstance(raw, dict) else None
    if version != SCHEMA_VERSION:
        raise BenchError(
            f"report {p} has schema_version {version!r}; this llmdeploy reads {SCHEMA_VERSION}",
            hint="re-run the benchmark with this llmdeploy version",
        )
    try:
        return BenchReport.model_validate(raw)
    except ValidationError as exc:
        raise BenchError(f"report {p} is not a valid llmdeploy bench report: {exc}") from exc
