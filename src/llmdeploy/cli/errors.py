"""Print an LlmdeployError for a human: message, log tail, hint; traceback only in debug mode."""

from __future__ import annotations

import os
import traceback

from rich.markup import escape

from llmdeploy.cli.console import err
from llmdeploy.constants import ENV_DEBUG
from llmdeploy.errors import LlmdeployError


def report_error(exc: LlmdeployError) -> int:
    console = err()
    if os.environ.get(ENV_DEBUG) == "1":
        console.print("".join(traceback.format_exception(exc)), markup=False)
    console.print(f"[bold red]Error:[/bold red] {escape(exc.message)}", soft_wrap=True)
    if exc.log_tail:
        console.print("[dim]Last log lines:[/dim]")
        for line in exc.log_tail:
            console.print(f"  {line}", markup=False, soft_wrap=True)
    if exc.hint:
        console.print(f"[yellow]Hint:[/yellow] {escape(exc.hint)}", soft_wrap=True)
    return exc.exit_code
