"""The interactive ``chat``: read a line, stream the answer, show its speed, repeat.

Line editing and in-session history come from the standard library's ``readline`` where
Python has it. Keys: Ctrl-C during an answer stops that answer (the connection is closed, so
the server stops generating) and the session goes on; Ctrl-C or Ctrl-D at the prompt ends
the session with exit status 0. Answers go to stdout; the banner, the speed line after each
answer and the messages go to stderr.
"""

from __future__ import annotations

import contextlib

from rich.markup import escape

from llmdeploy.cli.console import err, write
from llmdeploy.client.chat_session import HELP, ChatSession, parse_line

PROMPT = ">>> "


def banner(session: ChatSession) -> str:
    """The first lines of a session (Rich markup): target, model, URL, how to get help."""
    target = session.target
    system = f"\nsystem prompt: {escape(session.system)}" if session.system else ""
    return (
        f"[bold]Chat with {escape(target.label)}[/bold] · model {escape(target.model)} · "
        f"{escape(target.base_url)}{system}\n"
        "[dim]Type /help for commands; /exit or Ctrl-D leaves; Ctrl-C stops an answer.[/dim]"
    )


def help_text() -> str:
    width = max(len(name) for name, _ in HELP)
    return "\n".join(f"  {name.ljust(width)}  {what}" for name, what in HELP)


def run_session(session: ChatSession) -> None:
    """Talk until /exit, Ctrl-D or Ctrl-C at the prompt (then return normally)."""
    with contextlib.suppress(ImportError):  # a Python built without it: plain input()
        import readline  # noqa: F401 - imported for its effect on input(): line editing
    console = err()
    console.print(banner(session), soft_wrap=True)
    while True:
        try:
            line = input(PROMPT)
        except (EOFError, KeyboardInterrupt):
            write("\n")
            return
        command = parse_line(line)
        if command.kind == "empty":
            continue
        if command.kind == "exit":
            return
        if command.kind == "help":
            console.print(help_text(), markup=False)
        elif command.kind == "reset":
            session.reset()
            console.print("[dim]Conversation cleared.[/dim]")
        elif command.kind == "system":
            session.set_system(command.text)
            what = f"System prompt set: {escape(command.text)}" if session.system else (
                "System prompt cleared")
            console.print(f"[dim]{what} (conversation cleared).[/dim]", soft_wrap=True)
        elif command.kind == "unknown":
            console.print(f"[yellow]Unknown command {escape(command.text)}[/yellow]; /help lists "
                          "them (start a line with // to ask something starting with /).")
        else:
            answer(session, command.text)


def answer(session: ChatSession, question: str) -> None:
    """Stream one answer; Ctrl-C stops it and keeps the session."""
    from llmdeploy.cli.chat_views import stats_line

    console = err()
    try:
        result = session.ask(question, on_text=write)
    except KeyboardInterrupt:
        write("\n")
        console.print("[yellow]Answer stopped[/yellow] [dim](this turn is not kept).[/dim]")
        return
    if result.content:
        write("\n")
    if result.error is not None:
        console.print(f"[bold red]Error:[/bold red] {escape(result.error.message)}",
                      soft_wrap=True)  # fmt: skip
        if result.error.hint:
            console.print(f"[yellow]Hint:[/yellow] {escape(result.error.hint)}", soft_wrap=True)
        return
    console.print(f"[dim]{stats_line(result)}[/dim]", soft_wrap=True)
