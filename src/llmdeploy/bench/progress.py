"""Progress of a running stage, for a live display: snapshots on the engine's own timer.

The display is refreshed from the event loop (no refresh thread), so it never competes
with the loop for the GIL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Progress", "ProgressCallback", "StageTicker"]


@dataclass
class Progress:
    """A snapshot for a live display; emitted every ``progress_interval_s`` while running."""

    stage: str
    stage_index: int
    stage_count: int | None
    done: int
    failed: int
    in_flight: int
    total: int | None
    elapsed_s: float
    duration_s: float | None
    finished: bool = False


ProgressCallback = Callable[[Progress], None]


class StageTicker:
    """Hands ``callback`` a fresh ``snapshot(finished)`` every ``interval_s`` while a stage
    runs (:meth:`start` .. :meth:`cancel`) and once more at :meth:`finish`. Does nothing
    without a callback."""

    def __init__(
        self,
        callback: ProgressCallback | None,
        interval_s: float,
        snapshot: Callable[[bool], Progress],
    ) -> None:
        self._callback = callback
        self._interval_s = interval_s
        self._snapshot = snapshot
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        if self._callback is not None:
            self._timer = asyncio.get_running_loop().call_later(self._interval_s, self._tick)

    def _tick(self) -> None:
        assert self._callback is not None
        self._callback(self._snapshot(False))
        self._timer = asyncio.get_running_loop().call_later(self._interval_s, self._tick)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def finish(self) -> None:
        """The stage's last snapshot (``finished=True``)."""
        if self._callback is not None:
            self._callback(self._snapshot(True))
