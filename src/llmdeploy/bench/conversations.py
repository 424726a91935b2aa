"""Multi-turn conversations that resend the history, as chat clients do.

A conversation is one unit of work: its turns are sent one after another, each
``think_time_s`` after the previous answer arrived, and each resends the whole history with
the assistant's answers as the server actually gave them (collected by
:class:`TextCollector`), so turn *t*'s prompt starts with everything turn *t - 1* sent and
received: the part a prefix cache can serve (:func:`expected_history_cached`).

User turns come from the workload: seeded synthetic messages (``--turns T``, each
``--input-tokens`` long), or the human turns of a dataset of conversations (ShareGPT
``conversations`` or OpenAI-style ``messages`` with user and assistant roles; the first T
human turns of each, the length of the dataset's own answer as each turn's output cap).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llmdeploy.bench.collector import Collector
from llmdeploy.bench.protocols import Prompt
from llmdeploy.bench.report import RequestRecord
from llmdeploy.errors import BenchError

__all__ = [
    "Conversation",
    "TextCollector",
    "expected_history_cached",
    "load_conversations",
]

_HUMAN = ("human", "user")
_ASSISTANT = ("gpt", "assistant", "chatgpt", "bard", "model")


class Conversation:
    """The state of one conversation: its user turns and the history so far.

    :meth:`prompt` gives turn *t*'s request (the history, then user turn *t*);
    :meth:`answer` appends the assistant's answer to the history."""

    def __init__(self, number: int, user_turns: Sequence[Prompt]) -> None:
        if not user_turns:
            raise ValueError("a conversation needs at least one user turn")
        self.number = number
        self.user_turns = list(user_turns)
        self.history: list[dict[str, str]] = []

    @property
    def turns(self) -> int:
        return len(self.user_turns)

    def prompt(self, turn: int) -> Prompt:
        user = self.user_turns[turn]
        message = {"role": "user", "content": user.as_text()}
        return Prompt(messages=[*self.history, message], max_tokens=user.max_tokens)

    def answer(self, turn: int, text: str) -> None:
        """Record turn ``turn``'s exchange (its user message and the answer) in the history."""
        self.history.append({"role": "user", "content": self.user_turns[turn].as_text()})
        self.history.append({"role": "assistant", "content": text})


class TextCollector(Collector):
    """A :class:`Collector` that also keeps the generated text (the answer a next turn
    resends). Only conversations use it, so single requests pay nothing for it."""

    __slots__ = ("parts",)

    def __init__(self, api: Any, stream: bool, origin: float = 0.0) -> None:
        super().__init__(api, stream, origin)
        self.parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def _event_object(self, payload: bytes) -> dict[str, Any] | None:
        obj = super()._event_object(payload)
        if obj is not None:
            piece = _text_of(obj, "delta")
            if piece:
                self.parts.append(piece)
        return obj

    def _openai_whole(self, obj: dict[str, Any]) -> None:
        super()._openai_whole(obj)
        piece = _text_of(obj, "message")
        if piece:
            self.parts.append(piece)

    def _ollama_whole(self, obj: dict[str, Any]) -> None:
        super()._ollama_whole(obj)
        piece = _text_of(obj, "message")
        if piece:
            self.parts.append(piece)


def _text_of(obj: dict[str, Any], part: str) -> str:
    """The answer text in an OpenAI chunk or answer (``choices[0].delta|message.content``,
    completions ``choices[0].text``) or an Ollama line (``message.content``, ``response``)."""
    choices = obj.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        choice = choices[0]
        inner = choice.get(part)
        text = inner.get("content") if isinstance(inner, dict) else choice.get("text")
        return text if isinstance(text, str) else ""
    message = obj.get("message")
    if isinstance(message, dict):
        text = message.get("content")
        return text if isinstance(text, str) else ""
    text = obj.get("response")
    return text if isinstance(text, str) else ""


def load_conversations(entries: Sequence[Any], path: str | Path, turns: int) -> list[list[Prompt]]:
    """The user turns (at most ``turns``) of each conversation in dataset ``entries``; each
    turn's output cap is the length of the dataset's answer to it (~4 characters per
    token). BenchError when no entry holds a conversation."""
    conversations: list[list[Prompt]] = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        if isinstance(entry.get("conversations"), list):
            pairs = [(c.get("from"), c.get("value")) for c in entry["conversations"]
                     if isinstance(c, dict)]
        elif isinstance(entry.get("messages"), list):
            pairs = [(m.get("role"), m.get("content")) for m in entry["messages"]
                     if isinstance(m, dict)]
        else:
            continue
        user_turns: list[Prompt] = []
        for k, (who, value) in enumerate(pairs):
            if who not in _HUMAN or not isinstance(value, str) or not value.strip():
                continue
            reply = next((v for w, v in pairs[k + 1:k + 2] if w in _ASSISTANT), None)
            cap = (max(1, math.ceil(len(reply) / 4))
                   if isinstance(reply, str) and reply else None)
            user_turns.append(Prompt(text=value, max_tokens=cap))
            if len(user_turns) == turns:
                break
        if user_turns:
            conversations.append(user_turns)
    if not conversations:
        raise BenchError(
            f"dataset {path} has no conversations",
            hint='multi-turn datasets hold ShareGPT "conversations" or "messages" lists',
        )
    return conversations


def expected_history_cached(records: Sequence[RequestRecord]) -> int:
    """Prompt tokens a prefix cache could serve in these multi-turn records: for every
    successful turn after the first, the prompt and output tokens (server counts) of the
    previous turn of its conversation, which the turn resends before its new message."""
    previous: dict[tuple[int, int], RequestRecord] = {
        (r.conversation, r.turn): r
        for r in records
        if r.conversation is not None and r.turn is not None and r.ok
    }
    total = 0
    for r in records:
        if r.warmup or not r.ok or r.conversation is None or not r.turn:
            continue
        before = previous.get((r.conversation, r.turn - 1))
        if before is not None:
            total += (before.prompt_tokens or 0) + (before.output_tokens or 0)
    return total
