"""Shared output helpers for CLI commands: consoles, JSON output, error printing."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

_stdout: Console | None = None
_stderr: Console | None = None


def out() -> Console:
    global _stdout
    if _stdout is None:
        from rich.console import Console

        # piped output is read by people too: do not squeeze tables into 80 columns
        _stdout = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    return _stdout


def err() -> Console:
    global _stderr
    if _stderr is None:
        from rich.console import Console

        _stderr = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)
    return _stderr


def print_json(data: Any) -> None:
    """Write machine-readable JSON to stdout (never through Rich, so it is never wrapped)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def write(text: str) -> None:
    """Plain text to stdout as it is (no markup, no wrapping; Rich is not imported)."""
    sys.stdout.write(text)
    sys.stdout.flush()


def warn(text: str) -> None:
    """One warning line on stderr (never on stdout, which scripts read)."""
    from rich.markup import escape

    err().print(f"[yellow]Warning:[/yellow] {escape(text)}", soft_wrap=True)
