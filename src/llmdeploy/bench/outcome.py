"""How a finished run ends: the error to raise after the report is written, if any.

The runner reports; it does not judge. A run that measured nothing (a stage without one
successful measured request) is an :class:`EndpointError` (exit 7); a crossed ``--fail-on``
gate (``report.gates``, see :func:`llmdeploy.bench.gates.failed_gates`) a
:class:`GateFailedError` (exit 9). Either way the report and its tables are written first.
"""

from __future__ import annotations

from llmdeploy.bench.report import BenchReport
from llmdeploy.errors import EndpointError, GateFailedError, LlmdeployError

__all__ = ["outcome_error"]


def outcome_error(report: BenchReport) -> LlmdeployError | None:
    """The error that ends this run: nothing measured first, then failed gates; else None."""
    return _nothing_measured(report) or _gates_failed(report)


def _nothing_measured(report: BenchReport) -> EndpointError | None:
    """Any stage without one successful measured request (every request failed, or none
    was sent)."""
    dead = [st for st in report.stages if st.summary.ok == 0]
    if not dead:
        return None
    parts = []
    for st in dead:
        s = st.summary
        causes = ", ".join(f"{k} x{v}" for k, v in s.errors_by_cause.items()) or "no request sent"
        parts.append(f"{st.name} ({s.requests} requests: {causes})")
    first = next((msg for st in dead for msg in st.summary.error_messages.values()), None)
    message = (
        f"{len(dead)} of {len(report.stages)} stage(s) had no successful request: "
        + "; ".join(parts)
    )
    if first:
        message += f"\nfirst error message: {first}"
    return EndpointError(
        message,
        hint="the endpoint answered but produced nothing measurable; the messages per error "
        "cause are listed under the table",
    )


def _gates_failed(report: BenchReport) -> GateFailedError | None:
    if not report.gates:
        return None
    return GateFailedError(
        f"{len(report.gates)} --fail-on check(s) failed:\n  " + "\n  ".join(report.gates),
        hint="the thresholds come from --fail-on; the full report has every request",
    )
