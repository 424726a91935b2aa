"""Shared output helpers for CLI commands: consoles, JSON output, error printing."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

_stdout: Console | None = None
_stderr: Console | None = None


def _console(*, stderr: bool) -> Console:
    """A Rich console for stdout or stderr that goes quiet when its reader goes away.

    Rich's own answer to a closed pipe (``up ... | head``) is ``SystemExit(1)`` from inside
    the write, which would stop ``up`` between removing a replaced container and starting
    its successor. Here the console stops writing (its stream now points at /dev/null, so
    the interpreter's last flush cannot fail either) and the command runs to its end."""
    from rich.console import Console

    class QuietOnClosedPipe(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            stream = sys.stderr if stderr else sys.stdout
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, stream.fileno())
                os.close(devnull)
            except (OSError, ValueError):  # no file descriptor (a test's StringIO)
                pass

    stream = sys.stderr if stderr else sys.stdout
    # piped output is read by people too: do not squeeze tables into 80 columns
    return QuietOnClosedPipe(
        stderr=stderr, highlight=False, width=None if stream.isatty() else 160
    )


def out() -> Console:
    global _stdout
    if _stdout is None:
        _stdout = _console(stderr=False)
    return _stdout


def err() -> Console:
    global _stderr
    if _stderr is None:
        _stderr = _console(stderr=True)
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
