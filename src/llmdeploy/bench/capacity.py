"""What one replica serves within its SLOs, read from a saved ``llmdeploy bench`` sweep.

``llmdeploy export kube --from-bench run.json`` turns a measurement into the autoscaling target.
The rule (docs/kubernetes-autoscaling.md):

1. A stage *met the run's SLOs* when it was not aborted, at least one request succeeded, no
   ``--fail-on`` gate of the run is crossed by it, and, when the run had ``--slo`` bounds, at
   least :data:`SLO_ATTAINMENT` (95 %) of its requests met every bound (its goodput ratio).
   A run with neither ``--slo`` nor ``--fail-on`` says nothing about good enough: refused.
2. A stage's *concurrency* is the requests it kept in flight: N for a ``concurrency=N`` stage,
   the measured time-averaged in-flight count (Little's law) for a rate stage.
3. The target is the highest concurrency that met the SLOs below the lowest one that did not
   (a noisy pass above a failure does not count). Every stage passing gives the highest one
   tested: a lower bound of the capacity, so the autoscaler errs towards more replicas.

The bench ran against one replica, so the figure is per replica: requests in flight per replica,
what the KEDA trigger divides the deployment's total by.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llmdeploy.bench.gates import Gate, check_gates, parse_gates
from llmdeploy.bench.metrics import summarize
from llmdeploy.bench.report import BenchReport, StageResult, load_report
from llmdeploy.errors import BenchError, UsageError

SLO_ATTAINMENT = 0.95  # share of a stage's requests that must meet every --slo bound
TTFT_P95_GATES = ("ttft_p95_ms",)

__all__ = [
    "SLO_ATTAINMENT",
    "Capacity",
    "StageVerdict",
    "capacity_of",
    "queue_target_from_report",
    "read_capacity",
]

_HINT = (
    "run a sweep against one replica with SLOs, e.g. llmdeploy bench --deployment NAME --sweep "
    "--slo ttft_ms=500,tpot_ms=50 --output run.json"
)


@dataclass(frozen=True)
class StageVerdict:
    """One stage: the requests it kept in flight, and whether it met the run's SLOs (with the
    first reason it did not)."""

    name: str
    concurrency: float
    met: bool
    reason: str = ""


@dataclass(frozen=True)
class Capacity:
    """Requests in flight one replica serves within the run's SLOs.

    ``per_replica``: the autoscaling target; ``source``: one line saying where it came from;
    ``ttft_slo_ms``: the TTFT p95 bound the run was held to (a ``ttft_p95_ms`` gate, else the
    ``--slo ttft_ms`` bound), None without one; ``stages``: every stage's verdict.
    """

    per_replica: float
    source: str
    ttft_slo_ms: float | None
    stages: tuple[StageVerdict, ...]


def queue_target_from_report(path: Path) -> tuple[float, str]:
    """(requests in flight per replica that trigger a scale-out, one line saying where it came
    from). BenchError naming the file for a report without a usable sweep."""
    capacity = read_capacity(path)
    return capacity.per_replica, capacity.source


def read_capacity(path: Path) -> Capacity:
    """:func:`capacity_of` the saved report at ``path`` (BenchError naming it when it cannot
    be read or holds no usable sweep)."""
    return capacity_of(load_report(path), label=str(path))


def capacity_of(report: BenchReport, *, label: str = "the report") -> Capacity:
    """The capacity one replica showed in ``report`` (rules in the module docstring)."""
    slo = dict(report.config.slo)
    try:
        gates = parse_gates(report.config.fail_on)
    except UsageError as exc:
        raise BenchError(f"{label}: its --fail-on gates: {exc.message}", hint=_HINT) from exc
    if not slo and not gates:
        raise BenchError(
            f"{label} was run without SLOs (--slo) or gates (--fail-on): nothing says which "
            "load was still good enough",
            hint=_HINT,
        )
    if not report.stages:
        raise BenchError(f"{label} holds no stage", hint=_HINT)
    verdicts = sorted(
        (_verdict(report, stage, slo, gates) for stage in report.stages),
        key=lambda v: (v.concurrency, not v.met),
    )
    failed = [v for v in verdicts if not v.met]
    limit = failed[0].concurrency if failed else float("inf")
    good = [v for v in verdicts if v.met and v.concurrency < limit]
    if not good:
        worst = failed[0]
        raise BenchError(
            f"{label}: no stage met the run's SLOs, not even the lowest load "
            f"({worst.name}: {worst.reason}): one replica cannot serve this workload within them",
            hint="loosen the SLOs, use a faster GPU or a smaller model, then measure again",
        )
    best = good[-1]
    slo_text = _slo_text(slo, report.config.fail_on)
    source = f"{label}: {best.name} ({_fmt(best.concurrency)} in flight) met {slo_text}"
    if failed:
        source += f"; {failed[0].name} ({_fmt(failed[0].concurrency)}) did not: {failed[0].reason}"
    else:
        source += "; every stage did, so one replica may serve more (sweep higher to know)"
    return Capacity(
        per_replica=round(best.concurrency, 2),
        source=source,
        ttft_slo_ms=_ttft_slo_ms(slo, gates),
        stages=tuple(verdicts),
    )


def _verdict(
    report: BenchReport, stage: StageResult, slo: dict[str, float], gates: list[Gate]
) -> StageVerdict:
    load = stage.load
    if load.mode == "concurrency":
        concurrency = float(int(load.value))
    else:
        concurrency = stage.summary.concurrency
    summary = stage.summary
    if slo and summary.goodput is None:
        summary = summarize(stage.records, slo)

    def verdict(reason: str) -> StageVerdict:
        return StageVerdict(stage.name, concurrency, met=not reason, reason=reason)

    if stage.aborted:
        return verdict(f"aborted ({stage.aborted})")
    if summary.ok == 0:
        return verdict("no request succeeded")
    crossed = check_gates(report.model_copy(update={"stages": [stage]}), gates)
    if crossed:
        return verdict("gate " + crossed[0].split(": ", 1)[-1])
    if slo and summary.goodput is not None and summary.goodput.ratio < SLO_ATTAINMENT:
        return verdict(
            f"{summary.goodput.ratio:.0%} of requests met the SLOs (needs {SLO_ATTAINMENT:.0%})"
        )
    return verdict("")


def _slo_text(slo: dict[str, float], fail_on: list[str]) -> str:
    parts = []
    if slo:
        bounds = ",".join(f"{key}={value:g}" for key, value in slo.items())
        parts.append(f"the SLOs {bounds} for {SLO_ATTAINMENT:.0%} of requests")
    if fail_on:
        parts.append("the gates " + ", ".join(fail_on))
    return " and ".join(parts)


def _ttft_slo_ms(slo: dict[str, float], gates: list[Gate]) -> float | None:
    """The TTFT p95 bound: a ``ttft_p95_ms`` gate (``>`` or ``>=``), else ``--slo ttft_ms``
    (met by 95 % of requests, so also a p95 bound)."""
    for gate in gates:
        if gate.metric in TTFT_P95_GATES and gate.op in (">", ">="):
            return gate.threshold
    return slo.get("ttft_ms")


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")
