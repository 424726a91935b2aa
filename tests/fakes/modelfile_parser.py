"""A Python port of Ollama's Modelfile parser (``parser/parser.go``, Ollama 0.32.15), for tests.

Not llmdeploy code and not Ollama: a line-for-line port of ``ParseFile``'s state machine and of
``Modelfile.CreateRequest``'s parameter typing, so tests can check that a rendered Modelfile
reads back, under Ollama's rules, as exactly the model llmdeploy sends to ``/api/create``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmdeploy.profiles.backend_options import OLLAMA_PARAMETER_TYPES

NIL, NAME, VALUE, PARAMETER, MESSAGE, COMMENT = range(6)
COMMANDS = {"from", "license", "template", "system", "adapter", "draft", "renderer", "parser",
            "parameter", "message", "requires"}


class ModelfileParseError(ValueError):
    pass


@dataclass
class Command:
    name: str
    args: str


@dataclass
class Parsed:
    commands: list[Command] = field(default_factory=list)

    def create_request(self) -> dict[str, Any]:
        """The /api/create fields this Modelfile gives (FROM as the raw value)."""
        request: dict[str, Any] = {}
        parameters: dict[str, Any] = {}
        for command in self.commands:
            if command.name == "model":
                request["from"] = command.args
            elif command.name in ("template", "system"):
                request[command.name] = command.args
            elif command.name in COMMANDS:
                raise ModelfileParseError(f"unexpected command {command.name}")
            else:
                kind = OLLAMA_PARAMETER_TYPES.get(command.name)
                if kind is None:
                    raise ModelfileParseError(f"unknown parameter '{command.name}'")
                if kind is list:
                    parameters.setdefault(command.name, []).append(command.args)
                elif kind is bool:
                    parameters[command.name] = command.args in ("1", "t", "T", "TRUE", "true", "True")
                else:
                    parameters[command.name] = kind(command.args)
        if parameters:
            request["parameters"] = parameters
        return request


def _is_print(char: str) -> bool:  # strconv.IsPrint
    return char.isprintable()


def _unquote(text: str) -> tuple[str, bool]:
    if text[:3] == '"""':
        if len(text) >= 6 and text[-3:] == '"""':
            return text[3:-3], True
        return "", False
    if text[:1] == '"':
        if len(text) >= 2 and text[-1] == '"':
            return text[1:-1], True
        return "", False
    return text, True


def _next_state(char: str, state: int) -> tuple[int, str]:
    space, newline = char in " \t", char in "\r\n"
    if state == NIL:
        if char == "#":
            return COMMENT, ""
        if space or newline:
            return NIL, ""
        return NAME, char
    if state == NAME:
        if char.isascii() and char.isalpha():
            return NAME, char
        if space:
            return VALUE, ""
        raise ModelfileParseError("command must be one of ...")
    if state == VALUE:
        if newline or space:
            return NIL, char
        return VALUE, char
    if state in (PARAMETER, MESSAGE):
        ok = char.isascii() and (char.isalnum() or char == "_") if state == PARAMETER else (
            char.isascii() and char.isalpha())
        if ok:
            return state, char
        if space:
            return VALUE, ""
        raise ModelfileParseError("unexpected EOF")
    if state == COMMENT:
        return (NIL, "") if newline else (COMMENT, "")
    raise ModelfileParseError("bad state")


def parse_modelfile(text: str) -> Parsed:
    parsed = Parsed()
    state = NIL
    buffer = ""
    name = ""
    role = ""
    for raw in text:
        nxt, char = _next_state(raw, state)
        if nxt != state:
            if state == NAME:
                word = buffer.lower()
                if word not in COMMANDS:
                    raise ModelfileParseError(f"invalid command {buffer!r}")
                if word == "from":
                    name = "model"
                elif word == "parameter":
                    nxt = PARAMETER
                elif word == "message":
                    nxt = MESSAGE
                    name = word
                else:
                    name = word
            elif state == PARAMETER:
                name = buffer
            elif state == MESSAGE:
                role = buffer
            elif state == VALUE:
                value, ok = _unquote(buffer.strip())
                if not ok or raw in " \t":
                    buffer += char
                    continue
                if role:
                    value, role = f"{role}: {value}", ""
                parsed.commands.append(Command(name, value))
            buffer = ""
            state = nxt
        if char and _is_print(char):
            buffer += char
    if state == VALUE:
        value, ok = _unquote(buffer.strip())
        if not ok:
            raise ModelfileParseError("unexpected EOF")
        parsed.commands.append(Command(name, value))
    elif state not in (NIL, COMMENT):
        raise ModelfileParseError("unexpected EOF")
    if not any(c.name == "model" for c in parsed.commands):
        raise ModelfileParseError("no FROM line")
    return parsed
