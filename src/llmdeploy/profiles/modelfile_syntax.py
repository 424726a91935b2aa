"""How a value is written in an Ollama Modelfile so that Ollama reads exactly it back.

Shared by the profile schema (which refuses Ollama text that no Modelfile can carry, so
``profiles validate`` and ``up`` agree) and the Modelfile renderer (which writes it).

Ollama's Modelfile parser (``parser/parser.go``, Ollama 0.32.15) has no escape sequences: a
value is bare, ``"..."`` or ``\"\"\"...\"\"\"``, and it ends at the first newline where the text
read so far, trimmed, is a complete quoted (or bare) value. A value is written in the first
form that reads back unchanged under those rules.
"""

from __future__ import annotations

from collections.abc import Sequence

TRIPLE = '"""'
TEXT_FORMS = ("triple", "double", "bare")  # TEMPLATE, SYSTEM
STRING_FORMS = ("double", "triple", "bare")  # string parameters (stop)
PATH_FORMS = ("bare", "double", "triple")  # FROM, numbers


class UnquotableError(ValueError):
    """No Modelfile form carries the value: ``reason`` says why, ``hint`` how to change it."""

    def __init__(self, field: str, reason: str, hint: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.reason = reason
        self.hint = hint


def quote_value(value: str, *, field: str, forms: Sequence[str] = TEXT_FORMS) -> str:
    """``value`` written so that Ollama's parser reads exactly ``value`` back.

    Raises UnquotableError naming ``field`` for control characters (the parser drops them) and
    for text that ends a line in three quotes inside a multi-line value.
    """
    bad = [ch for ch in value if not (ch.isprintable() or ch in "\t\n")]
    if bad:
        raise UnquotableError(
            field,
            f"the character {bad[0]!r} cannot be written in a Modelfile "
            "(Ollama's parser drops it)",
            hint="remove control characters (and \\r line endings) from the text",
        )
    for form in forms:
        candidate = {"bare": value, "double": f'"{value}"', "triple": f"{TRIPLE}{value}{TRIPLE}"}[
            form
        ]
        if read_value(candidate + "\n") == (value, len(candidate)):
            return candidate
    raise UnquotableError(
        field,
        f"this text cannot be written in a Modelfile: a line of it ends in {TRIPLE}, "
        "which ends the value early in Ollama's parser",
        hint="add a space or other character after those quotes at the end of the line",
    )


def read_value(text: str) -> tuple[str, int] | None:
    """How Ollama's parser reads a value at the start of ``text``: (value, characters used).

    A port of the value state of ``parser.ParseFile``: characters accumulate until a newline at
    which the text so far, trimmed, unquotes; spaces never end a value. None: it never ends.
    """
    buffer: list[str] = []
    for index, char in enumerate(text):
        if char in "\r\n \t":
            value, complete = _unquote("".join(buffer).strip())
            if complete and char not in " \t":
                return value, index
            buffer.append(char)
        elif char.isprintable():
            buffer.append(char)
    return None


def _unquote(text: str) -> tuple[str, bool]:
    if text.startswith(TRIPLE):
        if len(text) >= 6 and text.endswith(TRIPLE):
            return text[3:-3], True
        return "", False
    if text.startswith('"'):
        if len(text) >= 2 and text.endswith('"'):
            return text[1:-1], True
        return "", False
    return text, True
