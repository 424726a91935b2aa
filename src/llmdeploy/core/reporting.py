"""How domain code (the lifecycle, backends) reports progress without knowing the terminal.

A phase ends in one of five outcomes, and only ``done`` is shown as a success:

- ``done``: the step did what its line said;
- ``failed``: the step failed and the command stops (the error follows);
- ``skipped``: the step was not done (the note says why);
- ``fallback``: the step failed and something else was done instead (the note says both,
  e.g. "pull failed: registry unreachable; building … instead");
- ``warned``: the step finished, but with a problem the user should know about.

A phase that is left open is closed as ``done`` by the next ``phase`` call, or by ``finish``
with the outcome given there. Every phase is recorded (:class:`PhaseRecord`), so ``up --json``
reports the same truth the terminal shows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal, Protocol

PhaseOutcome = Literal["done", "failed", "skipped", "fallback", "warned"]


class Reporter(Protocol):
    def phase(self, name: str, description: str) -> None:
        """A new phase starts (an open previous one is closed as ``done``)."""

    def detail(self, text: str) -> None:
        """Extra information about the current phase."""

    def end_phase(self, outcome: PhaseOutcome, note: str = "") -> None:
        """Close the current phase with ``outcome`` and one line saying why / what instead."""

    def finish(self, success: bool = True) -> None:
        """All phases are done (``success``) or the open one failed; safe to call twice."""


@dataclass(frozen=True)
class PhaseRecord:
    """One finished phase: what it was, how it ended, why, and how long it took (seconds)."""

    name: str
    description: str
    outcome: PhaseOutcome
    note: str
    seconds: float

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "description": self.description,
            "outcome": self.outcome,
            "note": self.note,
            "seconds": round(self.seconds, 3),
        }


class PhaseLog:
    """A Reporter that records phases and their outcomes; front ends extend ``on_close``."""

    def __init__(self) -> None:
        self.records: list[PhaseRecord] = []
        self._open: tuple[str, str, float] | None = None
        self._started = time.monotonic()

    @property
    def total_s(self) -> float:
        return time.monotonic() - self._started

    def phase(self, name: str, description: str) -> None:
        self._close("done", "")
        self._open = (name, description, time.monotonic())
        self.on_open(name, description)

    def detail(self, text: str) -> None:
        self.on_detail(text)

    def end_phase(self, outcome: PhaseOutcome, note: str = "") -> None:
        self._close(outcome, note)

    def finish(self, success: bool = True) -> None:
        self._close("done" if success else "failed", "")
        self.on_finish()

    def _close(self, outcome: PhaseOutcome, note: str) -> None:
        if self._open is None:
            return
        name, description, started = self._open
        self._open = None
        record = PhaseRecord(name, description, outcome, note, time.monotonic() - started)
        self.records.append(record)
        self.on_close(record)

    # --- hooks for front ends -------------------------------------------------------------
    def on_open(self, name: str, description: str) -> None:
        pass

    def on_detail(self, text: str) -> None:
        pass

    def on_close(self, record: PhaseRecord) -> None:
        pass

    def on_finish(self) -> None:
        pass


class NullReporter(PhaseLog):
    """Records phases and shows nothing (library use, tests)."""
