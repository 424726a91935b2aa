"""A multi-turn conversation with one target: the history, and the commands typed at the
prompt (``/reset``, ``/system TEXT``, ``/exit``, ``/help``).

The whole history (the system prompt, then every user turn and its answer) is resent each
turn, as OpenAI-compatible servers keep no conversation state. A turn enters the history
only once its answer is complete: an answer stopped with Ctrl-C, or one that failed, leaves
the history as it was, so the next question is not sent after half an answer. No terminal
I/O here: the CLI reads lines and prints (``cli/chat_repl.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from llmdeploy.client.chat import Message, Sampling
from llmdeploy.client.chat_targets import ChatTarget
from llmdeploy.client.compare_chat import TargetResult, ask

CommandKind = Literal["ask", "empty", "reset", "system", "exit", "help", "unknown"]

HELP = (
    ("/reset", "forget the conversation (the system prompt stays)"),
    ("/system TEXT", "set the system prompt and start over (/system alone clears it)"),
    ("/help", "this list"),
    ("/exit", "leave (also /bye, Ctrl-D, or Ctrl-C at the prompt)"),
    ("Ctrl-C", "during an answer: stop it; the turn is not kept"),
)


@dataclass(frozen=True)
class Command:
    """One line typed at the prompt: a question (``ask``) or a command with its text."""

    kind: CommandKind
    text: str = ""


def parse_line(line: str) -> Command:
    """``/system be brief`` -> Command("system", "be brief"); ``hello`` -> Command("ask",
    "hello"). A line starting with ``//`` asks a question starting with ``/``."""
    stripped = line.strip()
    if not stripped:
        return Command("empty")
    if stripped.startswith("//"):
        return Command("ask", stripped[1:])
    if not stripped.startswith("/"):
        return Command("ask", stripped)
    name, _, rest = stripped.partition(" ")
    kinds: dict[str, CommandKind] = {
        "/reset": "reset", "/clear": "reset", "/system": "system", "/exit": "exit",
        "/bye": "exit", "/quit": "exit", "/help": "help", "/?": "help",
    }  # fmt: skip
    kind = kinds.get(name.lower())
    return Command(kind, rest.strip()) if kind else Command("unknown", name)


class ChatSession:
    """The conversation with ``target``; each :meth:`ask` resends the history."""

    def __init__(
        self,
        target: ChatTarget,
        sampling: Sampling,
        *,
        system: str | None = None,
        timeout_s: float = 300.0,
    ) -> None:
        self.target = target
        self.sampling = sampling
        self.system = system or None
        self.timeout_s = timeout_s
        self.turns: list[Message] = []  # user and assistant messages, oldest first

    def messages(self, question: str) -> list[Message]:
        """What the next request sends: the system prompt, the history, the question."""
        head: list[Message] = [{"role": "system", "content": self.system}] if self.system else []
        return [*head, *self.turns, {"role": "user", "content": question}]

    def ask(self, question: str, on_text: Callable[[str], None] | None = None) -> TargetResult:
        """Stream the answer to ``question``; a complete answer joins the history.

        KeyboardInterrupt (Ctrl-C) propagates with the connection closed and the history
        unchanged; an endpoint failure is in the result's ``error``, history unchanged."""
        result = ask(
            self.target, self.messages(question), self.sampling,
            on_text=on_text, timeout_s=self.timeout_s,
        )  # fmt: skip
        if result.ok:
            self.turns.append({"role": "user", "content": question})
            self.turns.append({"role": "assistant", "content": result.content})
        return result

    def reset(self) -> None:
        """Forget every turn; the system prompt stays."""
        self.turns.clear()

    def set_system(self, text: str) -> None:
        """A new system prompt (empty: none) and a fresh conversation under it."""
        self.system = text.strip() or None
        self.turns.clear()
