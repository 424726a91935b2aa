"""Run every check (independent groups in parallel) and decide the exit code."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from llmdeploy.constants import ENV_ENGINE
from llmdeploy.doctor.docker import check_docker
from llmdeploy.doctor.gpu import check_gpus
from llmdeploy.doctor.host import detect_cgroups
from llmdeploy.doctor.local import check_model_store, check_packages
from llmdeploy.doctor.podman import check_podman
from llmdeploy.doctor.probe import HostProbe
from llmdeploy.doctor.report import (
    AUTO_ORDER,
    Check,
    DoctorReport,
    EngineChoice,
    EngineName,
    EngineReport,
    Status,
)
from llmdeploy.doctor.selinux import detect_selinux, selinux_check
from llmdeploy.errors import EngineUnavailableError

#: ``llmdeploy doctor`` exits with this when the selected engine path does not work
#: (the exit code of ``EngineUnavailableError``).
EXIT_NO_ENGINE = EngineUnavailableError.exit_code


def run_doctor(
    probe: HostProbe,
    *,
    model_store: str,
    engine: EngineChoice = "auto",
    deep: bool = False,
) -> DoctorReport:
    """Look at the host through ``probe``; nothing here prints or changes the host.

    The engine groups run in threads so one hung daemon costs only its own timeout.
    """
    cgroups = detect_cgroups(probe)
    selinux = detect_selinux(probe)
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="doctor") as pool:
        podman = pool.submit(check_podman, probe, cgroups, deep=deep)
        docker = pool.submit(check_docker, probe, cgroups, deep=deep)
        gpu = pool.submit(check_gpus, probe)
        disk = pool.submit(check_model_store, probe, model_store)
        packages, package_checks = check_packages(probe)
        engines = (podman.result(), docker.result())
        selected, summary = summarize(engines, engine)
        return DoctorReport(
            engine_choice=engine,
            selected_engine=selected,
            cgroups=cgroups,
            selinux=selinux,
            selinux_check=selinux_check(selinux, engines, model_store),
            engines=engines,
            gpu=gpu.result(),
            disk=disk.result(),
            packages=packages,
            package_checks=package_checks,
            summary=summary,
            exit_code=0 if selected is not None else EXIT_NO_ENGINE,
            deep=deep,
        )


def summarize(
    engines: tuple[EngineReport, ...], choice: EngineChoice
) -> tuple[EngineName | None, Check]:
    """Which engine llmdeploy would use (``auto``: Podman, then Docker) and the summary row."""
    by_name = {report.name: report for report in engines}
    usable = [name for name in AUTO_ORDER if by_name[name].usable]
    if choice == "auto":
        if usable:
            others = [name for name in usable if name != usable[0]]
            also = f"; {', '.join(others)} usable too" if others else ""
            return usable[0], Check(
                "engine", Status.OK, f"{usable[0]} will be used (auto: Podman, then Docker){also}"
            )
        return None, Check(
            "engine",
            Status.ERROR,
            "no usable container engine (tried Podman, then Docker)",
            fix=_no_engine_fix(by_name),
        )
    if choice in usable:
        return choice, Check("engine", Status.OK, f"{choice} will be used (chosen explicitly)")
    alternative = f", or use --engine {usable[0]}" if usable else ""
    return None, Check(
        "engine",
        Status.ERROR,
        f"{choice} was chosen (--engine / {ENV_ENGINE}) but is not usable",
        fix=f"fix the {choice} rows above{alternative}",
    )


def _no_engine_fix(by_name: dict[EngineName, EngineReport]) -> str:
    if not by_name["podman"].installed and not by_name["docker"].installed:
        return "apt-get install podman runc (or docker.io), or run scripts/setup-host.sh"
    return "fix the podman or docker rows above (or run scripts/setup-host.sh)"
