"""The saved report: a versioned pydantic model that every output format renders.

Raw per-request timestamps are stored first; summaries are derived from them (and can be
re-derived, e.g. with other SLOs, by :func:`llmdeploy.bench.metrics.summarize`).

Times in a :class:`RequestRecord` are seconds on the client's monotonic clock, relative to
the run origin (``BenchReport.origin`` is meaningless outside the run, only differences are).

Schema versions: 2 added cached prompt tokens, the first server message per error cause,
downgrades (request fields dropped because the server refused them) and the API source; 3
added the conversation and turn of each request (multi-turn workloads), per-turn summaries,
the prompt tokens the workload made cacheable on purpose, and the client's self-check per
stage (``StageSummary.client``: CPU use and event-loop lag per worker process, send lag,
delivered rate, the client-limited verdict). Older reports are read as version 3 with those
fields empty.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmdeploy.bench.config import BenchConfig, LoadSpec
from llmdeploy.bench.text_files import read_text
from llmdeploy.errors import BenchError

SCHEMA_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)

__all__ = [
    "SCHEMA_VERSION",
    "BenchReport",
    "ClientCheck",
    "Distribution",
    "Downgrade",
    "EnvironmentInfo",
    "GoodputSummary",
    "LagStats",
    "RequestRecord",
    "ServerView",
    "StageResult",
    "StageSummary",
    "TurnSummary",
    "WorkerUsage",
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
    cached_tokens: int | None = None  # prompt tokens the server served from its cache
    error: str | None = None  # cause: connect, http_<status>, empty_response, ...
    error_detail: str | None = None  # the server's own message where it sent one
    malformed_events: int = 0
    conversation: int | None = None  # multi-turn workloads: the conversation's number
    turn: int | None = None  # and the turn in it (0 = the first)

    @property
    def ok(self) -> bool:
        """The request succeeded (the runner records an error cause for every failure,
        including a 200 answer that carried no generated text)."""
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


class TurnSummary(_Model):
    """Turn ``turn`` (0 = the first) of every conversation of a stage: successful measured
    requests, their TTFT, and the prompt tokens the server counted and served from cache."""

    turn: int
    requests: int
    ok: int
    ttft_ms: Distribution | None = None
    prompt_tokens: int = 0
    cached_prompt_tokens: int | None = None


class LagStats(_Model):
    """Lateness of a timer or a send, in milliseconds: median, 99th percentile, maximum."""

    p50: float
    p99: float
    max: float
    samples: int


class WorkerUsage(_Model):
    """What one client process spent on a stage, measured in that process: CPU seconds
    (user + system, ``time.process_time``) over its stage window, that as % of one core,
    and the lateness of a timer it ran every few milliseconds (event-loop lag)."""

    worker: int
    pid: int
    requests: int  # work items this process sent
    wall_s: float
    cpu_s: float
    cpu_percent: float  # cpu_s / wall_s * 100: 100 is one core fully busy
    loop_lag_ms: LagStats | None = None


class ClientCheck(_Model):
    """The client certifying itself for one stage (definitions and thresholds in
    docs/bench.md, constants in :mod:`llmdeploy.bench.selfcheck`).

    ``send_lag_ms``: actual send - planned send of measured requests (rate stages).
    ``delivered_rate_per_s``: (n - 1) / (last actual send - first planned send) over the n
    measured requests; ``planned_rate_per_s``: (n - 1) / (last planned - first planned
    send), the target itself for constant arrivals; ``rate_error`` = delivered / planned - 1
    (never above 0: a request never leaves before its planned time).
    ``cap_waits``: sends held back by ``--max-concurrency`` (then send lag is the cap's,
    not the client's). ``client_limited``: a threshold was passed; ``reasons`` says which."""

    workers: list[WorkerUsage] = Field(default_factory=list)
    send_lag_ms: LagStats | None = None
    cap_waits: int = 0
    target_rate_per_s: float | None = None
    planned_rate_per_s: float | None = None
    delivered_rate_per_s: float | None = None
    rate_error: float | None = None
    client_limited: bool = False
    reasons: list[str] = Field(default_factory=list)
    # after the last process's share ended: its results' trip to the runner, the merge, the
    # records and the summary
    report_build_s: float | None = None

    @property
    def max_cpu_percent(self) -> float | None:
        return max((w.cpu_percent for w in self.workers), default=None)

    @property
    def max_loop_lag_p99_ms(self) -> float | None:
        lags = [w.loop_lag_ms.p99 for w in self.workers if w.loop_lag_ms is not None]
        return max(lags, default=None)


class StageSummary(_Model):
    requests: int  # measured requests (warm-up excluded), failed ones included
    ok: int
    failed: int
    warmup_excluded: int
    errors_by_cause: dict[str, int] = Field(default_factory=dict)
    error_messages: dict[str, str] = Field(default_factory=dict)  # cause -> first message
    error_rate: float
    duration_s: float  # first measured start -> last measured end
    ttft_ms: Distribution | None = None
    itl_ms: Distribution | None = None
    tpot_ms: Distribution | None = None
    e2e_ms: Distribution | None = None
    schedule_lag_ms: Distribution | None = None
    prompt_tokens: int = 0
    output_tokens: int = 0
    cached_prompt_tokens: int | None = None  # None: the server reported no cache numbers
    output_tokens_per_s: float = 0.0
    total_tokens_per_s: float = 0.0
    requests_per_s: float = 0.0
    concurrency: float = 0.0  # time-averaged requests in flight (Little's law)
    token_sources: dict[str, int] = Field(default_factory=dict)
    goodput: GoodputSummary | None = None
    by_turn: list[TurnSummary] = Field(default_factory=list)  # multi-turn workloads
    client: ClientCheck | None = None  # the client's self-check (None in old reports)


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
    # prompt tokens of the measured successful requests that the workload made cacheable on
    # purpose (shared prefixes seen before, a conversation's history, trace blocks seen
    # before); None when the workload shares nothing on purpose
    expected_cached_prompt_tokens: int | None = None


class EnvironmentInfo(_Model):
    hostname: str
    platform: str
    python: str
    cpu_count: int
    llmdeploy_version: str
    event_loop: str
    http_client: str = "llmdeploy raw asyncio HTTP/1.1"


class Downgrade(_Model):
    """An optional request field the server refused, dropped for the whole run."""

    field: str  # e.g. "stream_options", "ignore_eos"
    status: int  # the HTTP status of the refusal
    server_message: str | None = None
    effect: str  # what the run measures differently without it


class BenchReport(_Model):
    schema_version: int = SCHEMA_VERSION
    tool: str = "llmdeploy bench"
    created_at: str
    config: BenchConfig
    environment: EnvironmentInfo
    model: str
    stages: list[StageResult]
    downgrades: list[Downgrade] = Field(default_factory=list)
    gates: list[str] = Field(default_factory=list)  # failed --fail-on checks, if any

    def save(self, path: str | Path) -> None:
        """Write the JSON report; BenchError when the file cannot be written."""
        write_text(path, self.model_dump_json(indent=1), "report")


def write_text(path: str | Path, text: str, what: str) -> None:
    """Write an output file; an OS error becomes a BenchError naming the file."""
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise BenchError(f"cannot write {what} {path}: {exc.strerror or exc}") from exc


def load_report(path: str | Path) -> BenchReport:
    """Read a saved report. Every bad file (missing, a folder, binary, not UTF-8, not JSON,
    truncated, another schema) is a BenchError naming the file, never a traceback."""
    p = Path(path)
    text = read_text(p, "report", "pass a JSON report written by llmdeploy bench --output")
    try:
        raw = json.loads(text)
    except RecursionError as exc:
        raise BenchError(f"report {p} is not a bench report: JSON nested too deeply") from exc
    except json.JSONDecodeError as exc:
        stripped = text.strip()
        truncated = stripped[:1] in ("{", "[") and exc.pos >= len(text.rstrip())
        what = "truncated (the JSON ends early)" if truncated else "not JSON"
        raise BenchError(
            f"report {p} is {what}: {exc}",
            hint="pass a JSON report written by llmdeploy bench --output",
        ) from exc
    if not isinstance(raw, dict) or "schema_version" not in raw:
        raise BenchError(
            f"report {p} is not an llmdeploy bench report (no schema_version)",
            hint="pass a JSON report written by llmdeploy bench --output",
        )
    version = raw.get("schema_version")
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        readable = ", ".join(str(v) for v in READABLE_VERSIONS)
        raise BenchError(
            f"report {p} has schema_version {version!r}; this llmdeploy reads {readable}",
            hint="re-run the benchmark with this llmdeploy version",
        )
    raw["schema_version"] = SCHEMA_VERSION  # versions 2 and 3 only added fields with defaults
    try:
        return BenchReport.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or '(top level)'}: {e['msg']}"
            for e in exc.errors()[:3]
        )
        more = f" (and {exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
        raise BenchError(
            f"report {p} is not a valid llmdeploy bench report: {problems}{more}",
            hint="pass a JSON report written by llmdeploy bench --output",
        ) from exc
