"""The ``llmdeploy`` command: the root group and the mapping of errors to exit codes.

Commands are loaded lazily (``cli.commands``): only the command that runs is imported and
built. Command modules import only Typer at module level; domain code (SDKs, pydantic
models, Rich tables) is imported inside the command functions. Help is click's plain help
(``rich_markup_mode=None``): Typer's Rich help imports Rich's markdown, syntax and traceback
modules (about 85 ms, half of ``llmdeploy --help``) to draw boxes around the same text.
"""

from __future__ import annotations

import gc
import os
import sys

import typer

from llmdeploy import __version__
from llmdeploy.cli.commands import LazyGroup
from llmdeploy.constants import ENV_DEBUG

app = typer.Typer(
    name="llmdeploy",
    help="Take a language model from a laptop to production: profiles, containers, benchmarks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    cls=LazyGroup,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"llmdeploy {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    if debug:
        os.environ[ENV_DEBUG] = "1"


def run() -> None:
    """Console-script entry point (``llmdeploy``, ``python -m llmdeploy``): :func:`main`, then
    an interpreter exit that skips re-scanning what is left for garbage cycles.

    Python's shutdown collects garbage cycles several times while it clears the modules; with
    the ~350 modules and ~35,000 tracked objects of ``status`` or ``up`` that is ~35 ms of
    pure CPU (strace: no system call between the signal reset and the first munmap), a fifth
    of a quick command. ``gc.freeze()`` moves every object alive at that point into the
    collector's permanent generation, so those passes have nothing to scan. Nothing else
    changes: atexit handlers run, sys.stdout/stderr are flushed, modules are cleared, and
    objects are still freed by reference counting. Only objects caught in a reference cycle
    at exit are not collected, and nothing of ours relies on that: every file and every state
    record is written and closed inside a ``with`` block before the command returns. Not in
    :func:`main`, which tests call in-process many times.
    """
    try:
        main()
    finally:
        gc.freeze()


def main() -> None:
    """Run the app, print user errors without tracebacks (tests call this in-process)."""
    from llmdeploy.errors import LlmdeployError

    try:
        # Typer turns Ctrl-C into Exit(130) and, outside standalone mode, returns an Exit's
        # code instead of raising it (a command itself returns None)
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            if code == 130:
                raise KeyboardInterrupt
            sys.exit(code)
    except LlmdeployError as exc:
        from llmdeploy.cli.errors import report_error

        sys.exit(report_error(exc))
    except KeyboardInterrupt:
        from llmdeploy.cli.console import err

        err().print("[red]Interrupted.[/red]")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except OSError as exc:
        # a file or socket problem no command translated: say what and where, no traceback
        if os.environ.get(ENV_DEBUG) == "1":
            raise
        from llmdeploy.cli.errors import report_error

        where = f" ({exc.filename})" if exc.filename else ""
        sys.exit(
            report_error(
                LlmdeployError(
                    f"{exc.strerror or exc}{where}",
                    hint="`llmdeploy --debug ...` shows where it happened",
                )
            )
        )
    except typer.Abort:
        sys.exit(130)
    except Exception as exc:
        # usage errors: Typer raises its bundled click's ClickException (show + exit_code)
        show = getattr(exc, "show", None)
        code = getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(code)
        raise
