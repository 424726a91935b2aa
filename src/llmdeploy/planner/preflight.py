"""The memory check ``up`` runs before anything starts.

It sizes the stored model (cached GGUF metadata or config.json), finds what the target offers
(host RAM for CPU profiles, capped by the container limit; the GPU's memory from nvidia-smi for
CUDA profiles) and returns the planner's verdict. A model that cannot be sized yields no report:
the server, not the planner, then has the last word.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llmdeploy.core.sizes import format_gib
from llmdeploy.errors import LlmdeployError, PlanError
from llmdeploy.planner import check_profile
from llmdeploy.planner.host import gpu_memory, host_memory_bytes
from llmdeploy.planner.report import FitReport
from llmdeploy.profiles.schema import Profile


@dataclass(frozen=True)
class Preflight:
    report: FitReport | None
    note: str  # one line for the progress display

    def refuse_if_cannot_start(self) -> None:
        report = self.report
        if report is None or report.starts is not False:
            return
        hints = "; ".join(s.summary for s in report.suggestions[:3])
        raise PlanError(
            f"the model cannot start on {report.target}: it needs "
            f"{format_gib(report.total_bytes)} and "
            f"{format_gib(report.budget_bytes or 0)} is available",
            hint=(f"try: {hints}. " if hints else "")
            + "`llmdeploy plan --profile ...` shows the figures; `up --ignore-fit` starts anyway",
        )


def available_bytes(profile: Profile) -> int | None:
    """Host RAM for CPU profiles, one GPU's memory for GPU profiles; None when unknown (the
    planner then reports figures only)."""
    if profile.accelerator == "cpu":
        return host_memory_bytes()
    return gpu_memory(profile.accelerator)[0]


def preflight(profile: Profile, model_path: Path) -> Preflight:
    from llmdeploy.models.inspect import inspect_cached

    try:
        info = inspect_cached(model_path)
        report = check_profile(profile, info, available_bytes=available_bytes(profile))
    except LlmdeployError as exc:
        return Preflight(None, f"memory plan skipped: {exc.message}")
    if report.fits is None:
        return Preflight(
            report, f"memory plan: needs {format_gib(report.total_bytes)} (target memory unknown)"
        )
    verdict = (
        "fits"
        if report.fits
        else ("starts, but the worst case does not fit" if report.starts else "does not fit")
    )
    return Preflight(
        report,
        f"memory plan: {format_gib(report.total_bytes)} of "
        f"{format_gib(report.budget_bytes or 0)} on {report.target}: {verdict}",
    )
