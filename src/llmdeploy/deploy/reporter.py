"""How lifecycle code reports progress without knowing about the terminal."""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    def phase(self, name: str, description: str) -> None:
        """A new phase starts (the previous one is finished)."""

    def detail(self, text: str) -> None:
        """Extra information about the current phase."""

    def finish(self, success: bool = True) -> None:
        """All phases are done (``success``) or the last one failed; safe to call twice."""


class NullReporter:
    def phase(self, name: str, description: str) -> None:
        pass

    def detail(self, text: str) -> None:
        pass

    def finish(self, success: bool = True) -> None:
        pass
