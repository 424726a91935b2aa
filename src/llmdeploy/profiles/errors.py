"""Turn pydantic validation errors into messages naming file, field path and closest key."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from llmdeploy.errors import ProfileError
from llmdeploy.profiles.rules import ProfileRuleError


@dataclass(frozen=True)
class Place:
    """Where a failing value is written: file, 1-based line (when known), and a note."""

    field: str
    location: str
    line: int | None = None
    note: str | None = None

    def format(self, message: str) -> str:
        where = f"{self.location}:{self.line}" if self.line else self.location
        note = f"; {self.note}" if self.note else ""
        return f"{where}: {self.field or '<root>'}: {message}{note}"


Locate = Callable[[tuple[Any, ...], str], Place]
"""Maps a pydantic error location and error type to the place the user wrote the value."""


def validation_error(
    exc: ValidationError,
    *,
    source: str,
    root: type[BaseModel],
    locate: Locate | None = None,
) -> ProfileError:
    """One ProfileError listing every problem as ``FILE:LINE: field.path: message``.

    ``locate`` (from the loader) gives the file and line each value came from and a note such
    as what YAML made of an unquoted scalar; without it every line names ``source``.
    """
    lines: list[str] = []
    hints: list[str] = []
    for error in exc.errors():
        loc = [part for part in error["loc"]]
        place = locate(tuple(loc), error["type"]) if locate else Place(_format_loc(loc), source)
        if error["type"] == "extra_forbidden":
            key = str(loc[-1])
            valid = sorted(_fields_at(root, loc[:-1]))
            close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
            message = f"unknown key {key!r}"
            if close:
                message += f"; did you mean {close[0]!r}?"
                parent = place.field.rpartition(".")[0] if "." in place.field else ""
                renamed = f"{parent}.{close[0]}" if parent else close[0]
                hints.append(f"rename {place.field} to {renamed}")
            elif valid:
                message += f" (valid keys here: {', '.join(valid)})"
            line = place.format(message)
        elif isinstance((error.get("ctx") or {}).get("error"), ProfileRuleError):
            # cross-field rules (profiles.rules): one line per field, where it was written
            rule_error: ProfileRuleError = error["ctx"]["error"]
            for violation in rule_error.violations:
                path = tuple(violation.field.split("."))
                where = locate(path, "value_error") if locate else Place(violation.field, source)
                if (text := where.format(violation.message)) not in lines:
                    lines.append(text)
            continue
        else:
            line = place.format(str(error["msg"]).removeprefix("Value error, "))
        if line not in lines:  # a union reports one value once per member type
            lines.append(line)
    return problems_error(lines, hint="; ".join(hints) if hints else None)


def problems_error(lines: list[str], *, hint: str | None = None) -> ProfileError:
    """``invalid profile (N problems):`` followed by one indented line per problem."""
    count = len(lines)
    header = f"invalid profile ({count} problem{'s' if count != 1 else ''}):"
    return ProfileError(header + "\n  " + "\n  ".join(lines), hint=hint)


def _format_loc(loc: list[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _fields_at(root: type[BaseModel], loc: list[Any]) -> set[str]:
    """The valid keys of the model found by walking ``loc`` (tags of unions are followed)."""
    candidates: list[type[BaseModel]] = [root]
    for part in loc:
        if isinstance(part, int):
            continue
        next_candidates: list[type[BaseModel]] = []
        for model in candidates:
            field = model.model_fields.get(str(part))
            if field is not None:
                next_candidates.extend(_models_in(field.annotation))
            elif _tag_of(model) == part:
                next_candidates.append(model)
        if next_candidates:
            candidates = next_candidates
        else:
            # a discriminator tag in the loc: keep the member whose kind matches
            matched = [m for m in candidates if _tag_of(m) == part]
            if not matched:
                return set()
            candidates = matched
    return {name for model in candidates for name in model.model_fields}


def _tag_of(model: type[BaseModel]) -> Any:
    field = model.model_fields.get("kind")
    if field is None:
        return None
    args = typing.get_args(field.annotation)
    return args[0] if args else None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        found: list[type[BaseModel]] = []
        for arg in typing.get_args(annotation):
            found.extend(_models_in(arg))
        return found
    return []
