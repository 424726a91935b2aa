"""The terminal front end of the lifecycle Reporter: one line per phase, with its outcome.

Marks: ✓ done, ✗ failed, ↷ skipped, ↪ fell back (something else was done instead),
! finished with a warning. A phase that did not succeed is followed by one line saying why
and what happened instead; it never gets a ✓.
"""

from __future__ import annotations

from typing import Any

from llmdeploy.cli.console import err
from llmdeploy.core.reporting import PhaseLog, PhaseOutcome, PhaseRecord

MARKS: dict[PhaseOutcome, str] = {
    "done": "[green]✓[/green]",
    "failed": "[red]✗[/red]",
    "skipped": "[yellow]↷[/yellow]",
    "fallback": "[yellow]↪[/yellow]",
    "warned": "[yellow]![/yellow]",
}
LABELS: dict[PhaseOutcome, str] = {
    "done": "",
    "failed": "failed",
    "skipped": "skipped",
    "fallback": "fell back",
    "warned": "warning",
}


class RichReporter(PhaseLog):
    def __init__(self, enabled: bool = True) -> None:
        super().__init__()
        self._enabled = enabled
        self._status: Any = None
        self._bars: Any = None  # a Rich Progress while byte progress is shown
        self._bar_tasks: dict[str, Any] = {}

    def on_open(self, name: str, description: str) -> None:
        if not self._enabled:
            return
        from rich.markup import escape  # not imported at all for `--json`

        self._stop_bars()
        if self._status is None:
            self._status = err().status(escape(description), spinner="dots")
            self._status.start()
        else:
            self._status.update(escape(description))

    def on_detail(self, text: str) -> None:
        if self._enabled:
            from rich.markup import escape

            err().print(f"    [dim]{escape(text)}[/dim]", highlight=False, soft_wrap=True)

    def on_close(self, record: PhaseRecord) -> None:
        if not self._enabled:
            return
        from rich.markup import escape

        self._stop_bars()
        timing = f"[dim]({record.seconds:.1f} s, {self.total_s:.1f} s total)[/dim]"
        err().print(f"  {MARKS[record.outcome]} {escape(record.description)} {timing}")
        if record.outcome != "done" and record.note:
            label = LABELS[record.outcome]
            err().print(f"      [yellow]{label}:[/yellow] {escape(record.note)}", soft_wrap=True)

    def on_finish(self) -> None:
        self._stop_bars()
        if self._status is not None:
            self._status.stop()
            self._status = None

    def progress(self, label: str, completed: int, total: int | None) -> None:
        """Byte progress of the current phase (a download or upload) as a progress bar."""
        if not self._enabled:
            return
        if self._bars is None:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            if self._status is not None:  # one live display at a time: the bar replaces it
                self._status.stop()
                self._status = None
            self._bars = Progress(
                TextColumn("    {task.description}"),
                BarColumn(),
                *byte_columns(),
                TimeRemainingColumn(),
                console=err(),
            )
            self._bars.start()
        task = self._bar_tasks.get(label)
        if task is None:
            task = self._bars.add_task(label, total=total)
            self._bar_tasks[label] = task
        self._bars.update(task, completed=completed, total=total)

    def _stop_bars(self) -> None:
        if self._bars is not None:
            self._bars.stop()
            self._bars = None
            self._bar_tasks = {}


def byte_columns() -> list[Any]:
    """Rich progress columns for bytes done / total and the speed, in binary units."""
    from rich.progress import ProgressColumn, Task
    from rich.text import Text

    from llmdeploy.core.sizes import format_bytes

    class Transferred(ProgressColumn):
        def render(self, task: Task) -> Text:
            total = format_bytes(task.total)
            return Text(f"{format_bytes(task.completed)}/{total}", style="progress.download")

    class Speed(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            shown = "?" if speed is None else f"{format_bytes(speed)}/s"
            return Text(shown, style="progress.data.speed")

    return [Transferred(), Speed()]
