"""``--fail-on`` gates: ``METRIC OP NUMBER`` checked against every stage of a report.

A gate *fails the run* when its condition is true (``ttft_p99_ms>800`` fails if any stage's
TTFT p99 exceeds 800 ms). A metric that could not be measured (say, no request succeeded)
also fails the gate: CI must not pass on missing data.

Metric names are those of :data:`llmdeploy.bench.columns.METRICS`:
``{ttft,itl,tpot,e2e,schedule_lag}_{mean,median,p50,p90,p95,p99,max,min}_ms``,
``output_tokens_per_s``, ``total_tokens_per_s``, ``requests_per_s``, ``concurrency``,
``error_rate``, ``errors``, ``requests``, ``goodput_per_s``, ``goodput_ratio``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from llmdeploy.bench.columns import METRICS, metric_value
from llmdeploy.bench.report import BenchReport
from llmdeploy.errors import UsageError

__all__ = ["METRIC_NAMES", "Gate", "check_gates", "failed_gates", "metric_value", "parse_gates"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}
_EXPR = re.compile(r"^\s*([a-z0-9_]+)\s*(>=|<=|==|!=|>|<)\s*([-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?)\s*$")
METRIC_NAMES = tuple(METRICS)


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


def failed_gates(report: BenchReport) -> list[str]:
    """The report's own ``--fail-on`` checks (``config.fail_on``) that failed, one line each."""
    return check_gates(report, parse_gates(report.config.fail_on))
