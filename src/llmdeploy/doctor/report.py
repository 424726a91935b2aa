"""Typed results of ``llmdeploy doctor``: one ``Check`` per row, grouped into a ``DoctorReport``.

Every renderer (the Rich table, ``--json``) reads a ``DoctorReport``; nothing here prints.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any, Literal

EngineName = Literal["podman", "docker"]
EngineChoice = Literal["auto", "podman", "docker"]
CgroupMode = Literal["v1", "v2", "hybrid", "unknown"]
SelinuxMode = Literal["enforcing", "permissive", "disabled", "absent"]

#: ``auto`` tries the engines in this order (the same order ``engine: auto`` uses).
AUTO_ORDER: tuple[EngineName, ...] = ("podman", "docker")


class Status(str, Enum):
    """Severity of one check, from best to worst.

    ``info`` means "nothing to fix": an optional part that is absent, or a fact worth showing.
    """

    OK = "ok"
    INFO = "info"
    WARN = "warn"
    ERROR = "error"


@dataclass(frozen=True)
class Check:
    """One row of the report: what was looked at, how it went, and one line saying how to fix it."""

    component: str
    status: Status
    detail: str
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "status": self.status.value,
            "detail": self.detail,
            "fix": self.fix,
        }


def _with_check_dicts(report: EngineReport | DiskReport) -> dict[str, Any]:
    """``asdict`` of a report whose ``checks`` are ``Check`` rows, each as its dict."""
    data = asdict(report)
    data["checks"] = [check.to_dict() for check in report.checks]
    return data


@dataclass(frozen=True)
class CgroupInfo:
    mode: CgroupMode
    detail: str


@dataclass(frozen=True)
class SelinuxInfo:
    mode: SelinuxMode
    detail: str


@dataclass(frozen=True)
class EngineReport:
    """What doctor found out about one container engine."""

    name: EngineName
    installed: bool
    binary: str | None = None
    version: str | None = None
    api_address: str | None = None
    api_reachable: bool = False
    rootless: bool | None = None
    oci_runtime: str | None = None
    oci_runtime_works: bool | None = None
    cgroup_version: str | None = None
    storage_driver: str | None = None
    # whether the engine reports SELinux (Podman: host.security.selinuxEnabled; Docker: labels
    # containers, name=selinux in SecurityOptions), and that fact as words for the selinux row
    selinux_enabled: bool | None = None
    selinux_detail: str | None = None
    usable: bool = False
    checks: tuple[Check, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return _with_check_dicts(self)


@dataclass(frozen=True)
class NvidiaGpu:
    name: str
    memory_total: str
    driver_version: str


@dataclass(frozen=True)
class CdiSpec:
    path: str
    kinds: tuple[str, ...]

    @property
    def names_nvidia_gpu(self) -> bool:
        return "nvidia.com/gpu" in self.kinds


@dataclass(frozen=True)
class GpuReport:
    nvidia_smi: str | None = None
    nvidia_gpus: tuple[NvidiaGpu, ...] = ()
    nvidia_ctk: str | None = None
    cdi_specs: tuple[CdiSpec, ...] = ()
    amd_kfd: bool = False
    dri_devices: tuple[str, ...] = ()
    checks: tuple[Check, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "nvidia_smi": self.nvidia_smi,
            "nvidia_gpus": [asdict(gpu) for gpu in self.nvidia_gpus],
            "nvidia_ctk": self.nvidia_ctk,
            "cdi_specs": [
                {"path": s.path, "kinds": list(s.kinds), "names_nvidia_gpu": s.names_nvidia_gpu}
                for s in self.cdi_specs
            ],
            "amd_kfd": self.amd_kfd,
            "dri_devices": list(self.dri_devices),
            "checks": [check.to_dict() for check in self.checks],
        }


@dataclass(frozen=True)
class DiskReport:
    path: str
    measured_at: str | None
    free_bytes: int | None
    writable: bool
    checks: tuple[Check, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return _with_check_dicts(self)


@dataclass(frozen=True)
class PackageInfo:
    module: str
    distribution: str
    purpose: str
    found: bool
    version: str | None


@dataclass(frozen=True)
class DoctorReport:
    """The whole answer. ``exit_code`` is 0 when the selected engine path works."""

    engine_choice: EngineChoice
    selected_engine: EngineName | None
    cgroups: CgroupInfo
    selinux: SelinuxInfo
    selinux_check: Check
    engines: tuple[EngineReport, ...]
    gpu: GpuReport
    disk: DiskReport
    packages: tuple[PackageInfo, ...]
    package_checks: tuple[Check, ...]
    summary: Check
    exit_code: int
    deep: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def engine(self, name: EngineName) -> EngineReport:
        for report in self.engines:
            if report.name == name:
                return report
        raise KeyError(name)

    @property
    def checks(self) -> tuple[Check, ...]:
        """Every row in display order: engines, GPUs, disk, packages, then the summary."""
        rows = [
            Check("host: cgroups", Status.OK, f"{self.cgroups.mode}: {self.cgroups.detail}"),
            self.selinux_check,
        ]
        for report in self.engines:
            rows.extend(report.checks)
        rows.extend(self.gpu.checks)
        rows.extend(self.disk.checks)
        rows.extend(self.package_checks)
        rows.append(self.summary)
        return tuple(rows)

    @property
    def fixes(self) -> tuple[Check, ...]:
        """The rows that carry a fix, worst first; a fix already listed is not repeated."""
        order = {Status.ERROR: 0, Status.WARN: 1, Status.INFO: 2, Status.OK: 3}
        with_fix = sorted(
            (check for check in self.checks if check.fix), key=lambda check: order[check.status]
        )
        seen: set[str] = set()
        unique = []
        for check in with_fix:
            if check.fix not in seen:
                seen.add(check.fix or "")
                unique.append(check)
        return tuple(unique)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "exit_code": self.exit_code,
            "engine_choice": self.engine_choice,
            "selected_engine": self.selected_engine,
            "deep": self.deep,
            "engines": {report.name: report.to_dict() for report in self.engines},
            "cgroups": asdict(self.cgroups),
            "selinux": asdict(self.selinux),
            "gpu": self.gpu.to_dict(),
            "model_store": self.disk.to_dict(),
            "python_packages": {pkg.module: asdict(pkg) for pkg in self.packages},
            "checks": [check.to_dict() for check in self.checks],
            "fixes": [f"{check.component}: {check.fix}" for check in self.fixes],
        }
