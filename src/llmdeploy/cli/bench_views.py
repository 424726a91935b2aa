"""How ``llmdeploy bench`` shows a run on the terminal: the summary tables (the rows
:mod:`llmdeploy.bench.tables` defines), the notes and server messages under them, JSON for
scripts, and the live progress bars."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmdeploy.bench.report import BenchReport


def show(report: BenchReport, path: Path | None, json_out: bool) -> None:
    """The summary on stdout: JSON (without per-request records) or the console tables."""
    if json_out:
        from llmdeploy.cli.console import print_json

        data = report.model_dump(mode="json", exclude={"stages": {"__all__": {"records"}}})
        data["report_path"] = str(path) if path else None
        print_json(data)
    else:
        _print_summary(report)


_NOTE_STYLE = {"info": "", "error": "red", "dim": "dim"}


def _styled(text: str, style: str) -> str:
    from rich.markup import escape

    return f"[{style}]{escape(text)}[/{style}]" if style else escape(text)


def _print_summary(report: BenchReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    from llmdeploy.bench.tables import (
        client_limited_warning,
        describe_run,
        error_messages,
        stage_notes,
        summary_table,
    )
    from llmdeploy.cli.console import out

    console = out()
    run = describe_run(report)
    console.print(
        f"[bold]llmdeploy bench[/bold] {escape(run.endpoint)} [dim](API kind "
        f"{escape(run.api_source)})[/dim] · model [cyan]{escape(run.model)}[/cyan] · "
        f"{'stream' if run.stream else 'no stream'} · {escape(run.workload)}"
    )
    for d in report.downgrades:
        why = f"HTTP {d.status}" + (f": {d.server_message}" if d.server_message else "")
        console.print(
            f"[yellow]! {d.field} not sent: the server refused it ({escape(why)}); "
            f"{escape(d.effect)}[/yellow]"
        )
    table = Table(title_justify="left", show_lines=False)
    table.add_column("metric", no_wrap=True)
    for st in report.stages:
        table.add_column(escape(st.name), justify="right", no_wrap=True)
    for row in summary_table(report):
        cells = [_styled(c, "red" if a else "") for c, a in zip(row.cells, row.alerts,
                                                                 strict=True)]
        table.add_row(row.column.label, *cells)
    console.print(table)
    console.print("[dim]latencies in ms; TTFT/ITL/TPOT/E2E over successful requests only[/dim]")
    if any(st.load.mode == "rate" for st in report.stages):
        console.print(
            "[dim]requests/s = completed requests / stage time, which includes the drain "
            "after the last send: below a rate stage's offered rate by design; how "
            "closely the sends kept to it is 'client rate error'[/dim]"
        )
    for st in report.stages:
        notes = " · ".join(
            _styled(n.text, _NOTE_STYLE[n.level]) for n in stage_notes(st, report.config.workers)
        )
        console.print(f"  {escape(st.name)}: {notes}")
    messages = error_messages(report)
    if messages:
        console.print(
            "[bold]First message per error cause[/bold] (the server's own where it sent one):"
        )
    for cause, message in messages:
        console.print(f"  [red]{escape(cause)}[/red]: {escape(message)}", soft_wrap=True)
    for st in report.stages:
        warning = client_limited_warning(st)
        if warning:
            console.print(f"[yellow]! {escape(st.name)}: {escape(warning)}[/yellow]",
                          soft_wrap=True)
    for g in report.gates:
        console.print(f"  [red]✗ {escape(g)}[/red]")
    if not report.gates and report.config.fail_on:
        console.print(f"  [green]✓ gates passed: {', '.join(report.config.fail_on)}[/green]")


class LiveProgress:
    """Rich progress bars refreshed from the engine's own callback (no refresh thread, so the
    display never competes with the event loop for the GIL)."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        from llmdeploy.cli.console import err

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[extra]}"),
            TimeElapsedColumn(),
            console=err(),
            auto_refresh=False,
            transient=False,
        )
        self._progress.start()
        self._tasks: dict[int, Any] = {}

    def update(self, p: Any) -> None:
        from llmdeploy.bench.progress import Progress as BenchProgress

        assert isinstance(p, BenchProgress)
        prog = self._progress
        if p.total is not None:
            total, done = float(p.total), float(p.done)
        else:
            total, done = float(p.duration_s or 1), min(p.elapsed_s, float(p.duration_s or 1))
        if p.stage_index not in self._tasks:
            self._tasks[p.stage_index] = prog.add_task(p.stage, total=total, extra="")
        task = self._tasks[p.stage_index]
        extra = f"{p.in_flight} in flight"
        if p.failed:
            extra += f", [red]{p.failed} failed[/red]"
        if p.finished:
            extra = f"{p.done} done" + (f", [red]{p.failed} failed[/red]" if p.failed else "")
            done = total
        prog.update(task, completed=done, extra=extra)
        prog.refresh()

    def stop(self) -> None:
        self._progress.stop()

