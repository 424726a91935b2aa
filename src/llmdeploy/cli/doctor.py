"""`llmdeploy doctor`: engines, GPUs, disk and Python parts, with one fix line per problem.

Exit codes: 0 when the selected engine (``--engine``, ``LLMDEPLOY_ENGINE``, default ``auto``)
works; 5 (``EngineUnavailableError``) when it does not, e.g. no engine is usable at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from llmdeploy.doctor.report import DoctorReport

_STYLE = {"ok": "green", "info": "cyan", "warn": "yellow", "error": "bold red"}


def doctor(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable JSON report on stdout."),
    deep: bool = typer.Option(
        False,
        "--deep",
        help="Also start a throwaway container (`true`, no network) from a local image.",
    ),
    engine: str | None = typer.Option(
        None,
        "--engine",
        "-e",
        help="Engine whose path must work for exit code 0: auto (Podman, then Docker), "
        "podman or docker (default: $LLMDEPLOY_ENGINE, else auto).",
    ),
) -> None:
    """Check this host: container engines, OCI runtime, cgroups, GPUs, disk, Python parts.

    Exits 0 when the selected engine works, 5 when no usable engine is found.
    """
    from llmdeploy.cli.console import out, print_json
    from llmdeploy.doctor import SystemProbe, run_doctor
    from llmdeploy.engines.selection import choose_engine
    from llmdeploy.errors import EngineUnavailableError
    from llmdeploy.paths import model_store_dir

    choice = choose_engine(engine)
    report = run_doctor(
        SystemProbe(),
        model_store=str(model_store_dir()),
        engine=choice.requested,
        deep=deep,
    )
    if as_json:
        print_json(report.to_dict())
    else:
        _print_report(out(), report)
    if not report.ok:
        raise EngineUnavailableError(
            report.summary.detail, hint=report.summary.fix or "see the fix lines above"
        )


def _print_report(console: Console, report: DoctorReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="llmdeploy doctor", title_justify="left", expand=False)
    table.add_column("component", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for check in report.checks:
        style = _STYLE[check.status.value]
        table.add_row(
            escape(check.component), f"[{style}]{check.status.value}[/]", escape(check.detail)
        )
    console.print(table)
    fixes = report.fixes
    if fixes:
        console.print("\n[bold]How to fix:[/bold]")
        for check in fixes:
            style = _STYLE[check.status.value]
            console.print(
                f"  [{style}]{check.status.value:5}[/] {escape(check.component)}: "
                f"{escape(check.fix or '')}",
                soft_wrap=True,
            )
