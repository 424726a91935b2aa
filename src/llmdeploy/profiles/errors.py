"""Turn pydantic validation errors into messages naming file, field path and closest key."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from llmdeploy.errors import ProfileError
from llmdeploy.profiles.rules import ProfileRuleError


def validation_error(exc: ValidationError, *, source: str, root: type[BaseModel]) -> ProfileError:
    lines: list[str] = []
    hints: list[str] = []
    for error in exc.errors():
        loc = [part for part in error["loc"]]
        field_path = _format_loc(loc)
        if error["type"] == "extra_forbidden":
            key = str(loc[-1])
            valid = sorted(_fields_at(root, loc[:-1]))
            close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
            message = f"unknown key {key!r}"
            if close:
                message += f"; did you mean {close[0]!r}?"
                hints.append(f"rename {field_path} to {_format_loc([*loc[:-1], close[0]])}")
            elif valid:
                message += f" (valid keys here: {', '.join(valid)})"
            lines.append(f"{source}: {field_path}: {message}")
        elif isinstance((error.get("ctx") or {}).get("error"), ProfileRuleError):
            rule_error: ProfileRuleError = error["ctx"]["error"]
            lines.extend(f"{source}: {v.field}: {v.message}" for v in rule_error.violations)
        else:
            msg = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"{source}: {field_path or '<root>'}: {msg}")
    count = len(lines)
    header = f"invalid profile ({count} problem{'s' if count != 1 else ''}):"
    return ProfileError(
        header + "\n  " + "\n  ".join(lines),
        hint="; ".join(hints) if hints else None,
    )


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
