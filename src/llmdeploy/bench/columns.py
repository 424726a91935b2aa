"""The metrics of a stage and the summary table, each defined once.

:data:`METRICS` names every number of a stage summary that has a name: what ``--fail-on``
checks, the CSV's columns and ``compare --json``'s keys. Each :class:`Metric` says its unit,
how to get its value from a :class:`~llmdeploy.bench.report.StageSummary` (None when it was
not measured) and which way is better.

:data:`SUMMARY_COLUMNS` is the summary table every output renders: the console table, the
HTML page and ``bench compare`` (which leaves out the cells that are not one number). Cell
text comes from :meth:`Column.cell`, so every output formats a number the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llmdeploy.bench.report import StageSummary

__all__ = [
    "LATENCIES",
    "METRICS",
    "STATS",
    "SUMMARY_COLUMNS",
    "Column",
    "Metric",
    "format_number",
    "metric_value",
]

# latency distributions of a summary: (name in metric keys, StageSummary field, label)
LATENCIES = (
    ("ttft", "ttft_ms", "TTFT"),
    ("itl", "itl_ms", "ITL"),
    ("tpot", "tpot_ms", "TPOT"),
    ("e2e", "e2e_ms", "E2E"),
    ("schedule_lag", "schedule_lag_ms", "send lag"),
)
# statistics of a distribution, as metric keys name them (p50 is another name for median)
STATS = ("mean", "median", "p50", "p90", "p95", "p99", "max", "min")


@dataclass(frozen=True)
class Metric:
    """One named number of a stage: ``key`` (e.g. ``ttft_p99_ms``), its unit, its value."""

    key: str
    unit: str
    value: Callable[[StageSummary], float | None]
    higher_is_better: bool


def _latency(field: str, stat: str) -> Callable[[StageSummary], float | None]:
    attr = "median" if stat == "p50" else stat

    def value(s: StageSummary) -> float | None:
        dist = getattr(s, field)
        return None if dist is None else float(getattr(dist, attr))

    return value


def _scalar(field: str) -> Callable[[StageSummary], float | None]:
    return lambda s: float(getattr(s, field))


def _goodput(field: str) -> Callable[[StageSummary], float | None]:
    return lambda s: None if s.goodput is None else float(getattr(s.goodput, field))


def _client_cpu(s: StageSummary) -> float | None:
    return None if s.client is None else s.client.max_cpu_percent


def _client_lag(s: StageSummary) -> float | None:
    return None if s.client is None else s.client.max_loop_lag_p99_ms


def _client_limited(s: StageSummary) -> float | None:
    return None if s.client is None else float(s.client.client_limited)


def _client_rate_error(s: StageSummary) -> float | None:
    return None if s.client is None else s.client.rate_error


def _client_workers(s: StageSummary) -> float | None:
    return None if s.client is None or not s.client.workers else float(len(s.client.workers))


_METRIC_LIST = [
    *(
        Metric(f"{name}_{stat}_ms", "ms", _latency(field, stat), higher_is_better=False)
        for name, field, _ in LATENCIES
        for stat in STATS
    ),
    Metric("output_tokens_per_s", "tok/s", _scalar("output_tokens_per_s"), True),
    Metric("total_tokens_per_s", "tok/s", _scalar("total_tokens_per_s"), True),
    Metric("requests_per_s", "req/s", _scalar("requests_per_s"), True),
    Metric("concurrency", "requests", _scalar("concurrency"), True),
    Metric("error_rate", "fraction", _scalar("error_rate"), False),
    Metric("errors", "requests", _scalar("failed"), False),
    Metric("requests", "requests", _scalar("requests"), True),
    Metric("goodput_per_s", "req/s", _goodput("requests_per_s"), True),
    Metric("goodput_ratio", "fraction", _goodput("ratio"), True),
    # the client's self-check (llmdeploy.bench.selfcheck): highest worker, and the verdict
    Metric("client_cpu_percent", "% of a core", _client_cpu, False),
    Metric("client_loop_lag_p99_ms", "ms", _client_lag, False),
    Metric("client_rate_error", "fraction", _client_rate_error, True),
    Metric("client_limited", "0/1", _client_limited, False),
    Metric("client_workers", "processes", _client_workers, True),
]
METRICS: dict[str, Metric] = {m.key: m for m in _METRIC_LIST}


def metric_value(summary: StageSummary, key: str) -> float | None:
    """The value of metric ``key`` in one stage summary (None when not measured).
    KeyError for a name that is not in :data:`METRICS`."""
    return METRICS[key].value(summary)


def format_number(value: float | None, digits: int = 2) -> str:
    """``-`` for None; thousands without decimals; below 1, three significant digits."""
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) < 1 and value != 0:
        return f"{value:.3g}"
    return f"{value:.{digits}f}"


@dataclass(frozen=True)
class Column:
    """One row of the summary table (one line per metric, one cell per stage).

    ``metric`` is the number behind the cell (what ``compare`` takes deltas of); ``text``
    writes a cell that is more than that number; ``alert`` marks a cell that reports a
    problem; an ``optional`` column is left out when no stage has a value."""

    label: str
    metric: Metric | None = None
    digits: int = 2
    percent: bool = False
    text: Callable[[StageSummary], str] | None = None
    alert: Callable[[StageSummary], bool] | None = None
    optional: bool = False

    def value(self, summary: StageSummary) -> float | None:
        return None if self.metric is None else self.metric.value(summary)

    def cell(self, summary: StageSummary) -> str:
        if self.text is not None:
            return self.text(summary)
        value = self.value(summary)
        if self.percent and value is not None:
            return f"{value:.1%}"
        return format_number(value, self.digits)

    def alerts(self, summary: StageSummary) -> bool:
        return self.alert is not None and self.alert(summary)


def _goodput_text(s: StageSummary) -> str:
    g = s.goodput
    return "-" if g is None else f"{g.requests_per_s:.2f}/s ({g.ratio:.0%})"


def _limited_text(s: StageSummary) -> str:
    if s.client is None:
        return "-"
    return "YES" if s.client.client_limited else "no"


def _rate_error_text(s: StageSummary) -> str:
    if s.client is None or s.client.rate_error is None:
        return "-"
    return f"{s.client.rate_error:+.2%}"


def _latency_columns() -> list[Column]:
    columns = []
    for name, _, label in LATENCIES[:4]:
        for stat, stat_label in (("mean", "mean"), ("p50", "p50"), ("p90", "p90"),
                                 ("p99", "p99"), ("max", "max")):
            if name in ("itl", "tpot") and stat == "p90":
                continue
            columns.append(Column(f"{label} {stat_label} ms", METRICS[f"{name}_{stat}_ms"]))
    return columns


SUMMARY_COLUMNS: tuple[Column, ...] = (
    Column(
        "ok / requests",
        text=lambda s: f"{s.ok}/{s.requests}",
        alert=lambda s: s.failed > 0,
    ),
    Column("error rate", METRICS["error_rate"], percent=True, alert=lambda s: s.failed > 0),
    Column("requests/s", METRICS["requests_per_s"]),
    Column("output tok/s", METRICS["output_tokens_per_s"], digits=1),
    Column("total tok/s", METRICS["total_tokens_per_s"], digits=1),
    Column("concurrency", METRICS["concurrency"]),
    *_latency_columns(),
    Column("goodput", METRICS["goodput_per_s"], text=_goodput_text, optional=True),
    Column("client workers", METRICS["client_workers"], digits=0, optional=True),
    Column("client CPU % (max/worker)", METRICS["client_cpu_percent"], digits=0,
           optional=True),
    Column("client loop lag p99 ms", METRICS["client_loop_lag_p99_ms"], optional=True),
    Column("client rate error", METRICS["client_rate_error"], text=_rate_error_text,
           optional=True),
    Column("client-limited", METRICS["client_limited"], text=_limited_text,
           alert=lambda s: s.client is not None and s.client.client_limited, optional=True),
)
