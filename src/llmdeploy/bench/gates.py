"""``--fail-on`` gates: ``METRIC OP NUMBER`` checked against every stage of a report.

A gate *fails the run* when its condition is true (``ttft_p99_ms>800`` fails if any stage's
TTFT p99 exceeds 800 ms). A metric that could not be measured (say, no request succeeded)
also fails the gate: CI must not pass on missing data.

Metric names: ``{ttft,itl,tpot,e2e,schedule_lag}_{mean,median,p50,p90,p95,p99,max,min}_ms``,
``output_tokens_per_s``, ``total_tokens_per_s``, ``requests_per_s``, ``concurrency``,
``error_rate``, ``errors``, ``requests``, ``goodput_per_s``, ``goodput_ratio``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from llmdeploy.bench.report import BenchReport, StageSummary
from llmdeploy.errors import UsageError

__all__ = ["Gate", "check_gates", "metric_value", "parse_gates"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}
_EXPR = re.compile(r"^\s*([a-z0-9_]+)\s*(>=|<=|==|!=|>|<)\s*([-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?)\s*$")
_DIST = ("ttft", "itl", "tpot", "e2e", "schedule_lag")
_STATS = ("mean", "median", "p50", "p90", "p95", "p99", "max", "min")
_SCALARS = (
    "output_tokens_per_s",
    "total_tokens_per_s",
    "requests_per_s",
    "concurrency",
    "error_rate",
    "errors",
    "requests",
    "goodput_per_s",
    "goodput_ratio",
)
METRIC_NAMES = tuple(f"{d}_{s}_ms" for d in _DIST for s in _STATS) + _SCALARS


@dataclass(frozen=True)
class Gate:
    metric: str
    op: str
    threshold: float

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.threshold:g}"


def parse_gates(exprs: list[str]) -> list[Gate]:
    """Each item may hold several comma-separated expressions. UsageError for a bad one."""
    gates: list[Gate] = []
    for item in exprs:
        for expr in item.split(","):
            if not expr.strip():
                continue
            m = _EXPR.match(expr.strip().lower())
            if not m:
                raise UsageError(
                    f"bad --fail-on expression {expr.strip()!r}",
                    hint="use METRIC>NUMBER, e.g. 'ttft_p99_ms>800' or 'error_rate>0.01'",
                )
            metric, op, value = m.groups()
            if metric not in METRIC_NAMES:
                raise UsageError(
                    f"unknown metric {metric!r} in --fail-on",
                    hint="e.g. ttft_p99_ms, itl_p50_ms, tpot_mean_ms, e2e_max_ms, "
                    "requests_per_s, output_tokens_per_s, error_rate, goodput_ratio",
                )
            gates.append(Gate(metric, op, float(value)))
    return gates


def metric_value(summary: StageSummary, metric: str) -> float | None:
    """The value of a gate metric in one stage summary (None when not measured)."""
    if metric.endswith("_ms"):
        for d in _DIST:
            if metric.startswith(d + "_"):
                stat = metric[len(d) + 1 : -3]
                dist = getattr(summary, f"{d}_ms")
                if dist is None:
                    return None
                return float(getattr(dist, "median" if stat == "p50" else stat))
        return None
    if metric == "errors":
        return float(summary.failed)
    if metric == "requests":
        return float(summary.requests)
    if metric.startswith("goodput_"):
        if summary.goodput is None:
            return None
        g = summary.goodput
        return g.requests_per_s if metric == "goodput_per_s" else g.ratio
    return float(getattr(summary, metric))


def check_gates(report: BenchReport, gates: list[Gate]) -> list[str]:
    """One line per crossed gate and stage, e.g. ``concurrency=4: ttft_p99_ms = 912.3 > 800``."""
    failures: list[str] = []
    for stage in report.stages:
        for gate in gates:
            value = metric_value(stage.summary, gate.metric)
            if value is None:
                failures.append(f"{stage.name}: {gate.metric} was not measured (gate {gate})")
            elif _OPS[gate.op](value, gate.threshold):
                failures.append(
                    f"{stage.name}: {gate.metric} = {value:.4g} {gate.op} {gate.threshold:g}"
                )
    return failures
