"""A Rich implementation of the lifecycle Reporter: one line per phase with elapsed time."""

from __future__ import annotations

import time
from typing import Any

from llmdeploy.cli.console import err


class RichReporter:
    def __init__(self, enabled: bool = True) -> None:
        self._enabled = enabled
        self._status: Any = None
        self._phase: str | None = None
        self._phase_started = 0.0
        self._started = time.monotonic()
        self._bars: Any = None  # a Rich Progress while byte progress is shown
        self._bar_tasks: dict[str, Any] = {}

    def phase(self, name: str, description: str) -> None:
        if not self._enabled:
            return
        self._stop_bars()
        self._close_phase(success=True)
        self._phase = description
        self._phase_started = time.monotonic()
        if self._status is None:
            self._status = err().status(description, spinner="dots")
            self._status.start()
        else:
            self._status.update(description)

    def detail(self, text: str) -> None:
        if self._enabled:
            err().print(f"    [dim]{text}[/dim]", markup=True, highlight=False)

    def _close_phase(self, success: bool) -> None:
        if self._phase is not None:
            took = time.monotonic() - self._phase_started
            total = time.monotonic() - self._started
            mark = "[green]✓[/green]" if success else "[red]✗[/red]"
            err().print(f"  {mark} {self._phase} [dim]({took:.1f} s, {total:.1f} s total)[/dim]")
            self._phase = None

    def progress(self, label: str, completed: int, total: int | None) -> None:
        """Byte progress of the current phase (a download or upload) as a progress bar."""
        if not self._enabled:
            return
        if self._bars is None:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            if self._status is not None:  # one live display at a time: the bar replaces it
                self._status.stop()
                self._status = None
            self._bars = Progress(
                TextColumn("    {task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
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

    def finish(self, success: bool = True) -> None:
        """Stop the spinner and close the open phase; safe to call twice."""
        self._stop_bars()
        if self._status is not None:
            self._status.stop()
            self._status = None
        if self._enabled:
            self._close_phase(success)
