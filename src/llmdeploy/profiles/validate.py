"""Validate merged profile data against the schema, reporting every problem where it was written.

The data of a profile is the merge of its ``extends`` chain; each value came from one file
(a :class:`Layer`, child first) at one position. Validation:

- gives a text-only field the source text of an unquoted scalar that YAML 1.1 typed:
  ``env: {MODE: 0755}`` is "0755", ``security.user: 1000:1000`` is "1000:1000",
  ``description: yes`` is "yes" (a field that only takes text has nothing else to mean);
- refuses a YAML 1.1 number form that YAML 1.2 and people read differently where a number
  is taken (``port: 0755`` is octal 493, ``1:30`` is base-60 90), and a boolean where a number
  is taken (``parallel: yes`` would be 1);
- names, for every other failure, the file, the line, the field, and for an unquoted scalar
  what YAML read (``engine: YAML read `no` as the boolean false; write it quoted: engine: 'no'``)
  or for an interpolated one the ``${VAR}`` it came from.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from llmdeploy.profiles.errors import Place, problems_error, validation_error
from llmdeploy.profiles.schema import Profile
from llmdeploy.profiles.yaml_source import Key, Position, label, number_base, quoted, yaml_reading

_MISSING = object()
_CHOICE_ERRORS = frozenset({"literal_error", "enum", "union_tag_invalid", "union_tag_not_found"})


@dataclass(frozen=True)
class Layer:
    """One file of an ``extends`` chain: where it is, its positions, its ``${VAR}`` templates."""

    location: str
    positions: Mapping[Key, Position] = field(default_factory=dict)
    interpolated: Mapping[Key, str] = field(default_factory=dict)


def validate_profile(data: dict[str, Any], layers: Sequence[Layer]) -> Profile:
    """The validated profile of ``data`` (merged from ``layers``, child first).

    ``data`` may be changed in place (text-only fields get their source text).
    Raises ProfileError listing every problem as ``FILE:LINE: field: message``.
    """
    converted: set[Key] = set()
    while True:
        try:
            profile = Profile.model_validate(data)
        except ValidationError as exc:
            fixes = _text_fixes(exc, data, layers, converted)
            if not fixes:
                raise validation_error(
                    exc,
                    source=layers[0].location,
                    root=Profile,
                    locate=lambda loc, kind: _place(loc, kind, data, layers, converted),
                ) from exc
            for key, text in fixes.items():
                _assign(data, key, text)
                converted.add(key)
            continue
        return _check_misread_numbers(profile, data, layers, converted)


def _text_fixes(
    exc: ValidationError, data: dict[str, Any], layers: Sequence[Layer], converted: set[Key]
) -> dict[Key, str]:
    """Source texts for values a text-only field refused because YAML typed them."""
    fixes: dict[Key, str] = {}
    for error in exc.errors():
        if error["type"] != "string_type":
            continue
        key, missing = _data_key(data, error["loc"])
        if missing is not None or key in converted:
            continue
        _, position = _position(key, layers)
        value = _get(data, key)
        if (
            position is not None
            and position.implicitly_typed
            and position.kind != "null"
            and position.text is not None
            and not isinstance(value, str)
        ):
            fixes[key] = position.text
    return fixes


def _check_misread_numbers(
    profile: Profile, data: dict[str, Any], layers: Sequence[Layer], converted: set[Key]
) -> Profile:
    """Numbers YAML 1.1 read from a form people read otherwise, and booleans taken as numbers.

    Where the field also takes text (``dict[str, str | int]``), the source text is used
    instead; elsewhere these are refused.
    """
    problems: list[tuple[str, int, str]] = []
    for key, value in list(_leaves(data)):
        if key in converted:
            continue
        layer, position = _position(key, layers)
        if position is None or not position.implicitly_typed or position.text is None:
            continue
        final = _get(profile.model_dump(), key)
        if not isinstance(final, int | float) or isinstance(final, bool):
            continue
        base = number_base(position.text)
        if position.kind != "bool" and base not in ("octal", "base-60"):
            continue
        as_text = _with_text(data, key, position.text)
        if as_text is not None:
            _assign(data, key, position.text)
            converted.add(key)
            profile = as_text
            continue
        reading = yaml_reading(position, value)
        if position.kind == "bool":
            message = f"{reading}, and this field takes a number"
        elif base == "octal":
            decimal = int(position.text.replace("_", ""), 10)
            message = f"{reading}; write {final}, or {decimal} if you meant decimal"
        else:
            message = f"{reading}; write {final} if that is what you mean"
        place = Place(label(key), layer.location, position.line)
        problems.append((layer.location, position.line, place.format(message)))
    if problems:
        raise problems_error(
            [line for *_, line in sorted(problems)],
            hint="YAML 1.1 reads these forms differently from what they look like",
        )
    return profile


def _with_text(data: dict[str, Any], key: Key, text: str) -> Profile | None:
    """The profile with ``text`` at ``key`` when that validates and the field keeps it as text."""
    trial = copy.deepcopy(data)
    _assign(trial, key, text)
    try:
        profile = Profile.model_validate(trial)
    except ValidationError:
        return None
    return profile if isinstance(_get(profile.model_dump(), key), str) else None


def _place(
    loc: tuple[Any, ...],
    error_type: str,
    data: dict[str, Any],
    layers: Sequence[Layer],
    converted: set[Key],
) -> Place:
    key, missing = _data_key(data, loc)
    field_label = label(key) + (f".{missing}" if key and missing else missing or "")
    layer, position = _position(key, layers)
    if position is None:
        return Place(field_label, layers[0].location)
    line = position.line if key else None
    note = None
    value = _get(data, key)
    if missing is None and key not in converted and _misread(position, error_type):
        if position.kind == "null":
            note = (
                f"{yaml_reading(position, value)}; write {quoted(key, '')} for empty text, "
                "or remove the key"
            )
        elif not isinstance(value, str):
            written = quoted(key, position.text or "")
            note = f"{yaml_reading(position, value)}; write it quoted: {written}"
    elif missing is None and key in layer.interpolated:
        note = f"the value {value!r} came from {layer.interpolated[key]!r}"
    return Place(field_label, layer.location, line, note)


def _misread(position: Position, error_type: str) -> bool:
    """Whether YAML's reading of an unquoted scalar may be why validation failed.

    Yes for booleans, nulls, dates and YAML 1.1 number forms; for a plain number only when
    the field wanted another type (not when it was out of range: `port: 70000`).
    """
    if not position.implicitly_typed:
        return False
    if position.kind not in ("int", "float") or number_base(position.text or "") is not None:
        return True
    return error_type.endswith(("_type", "_parsing")) or error_type in _CHOICE_ERRORS


def _data_key(data: Any, loc: Sequence[Any]) -> tuple[Key, str | None]:
    """The path in ``data`` a pydantic ``loc`` points at, and a missing last key if any.

    Parts that are not in the data (the tag of a discriminated union, a union member's type
    name, ``[key]``) are skipped.
    """
    key: list[str | int] = []
    node = data
    for index, part in enumerate(loc):
        if _has(node, part):
            key.append(part)
            node = node[part]
        elif isinstance(node, dict) and index == len(loc) - 1 and part != "[key]":
            return tuple(key), str(part)
        elif not isinstance(node, dict | list):
            break
    return tuple(key), None


def _position(key: Key, layers: Sequence[Layer]) -> tuple[Layer, Position | None]:
    """The layer that wrote ``key`` (the child-most one holding it) and its position there.

    For a path no layer holds, the nearest enclosing value's.
    """
    for length in range(len(key), -1, -1):
        prefix = key[:length]
        for layer in layers:
            if prefix in layer.positions:
                return layer, layer.positions[prefix]
    return layers[0], None


def _get(data: Any, key: Key) -> Any:
    node = data
    for part in key:
        if not _has(node, part):
            return _MISSING
        node = node[part]
    return node


def _has(node: Any, part: Any) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list | tuple) and isinstance(part, int) and 0 <= part < len(node)


def _assign(data: Any, key: Key, value: Any) -> None:
    parent = _get(data, key[:-1])
    parent[key[-1]] = value


def _leaves(data: Any, key: Key = ()) -> Iterator[tuple[Key, Any]]:
    if isinstance(data, dict):
        for name, value in data.items():
            yield from _leaves(value, (*key, name))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _leaves(value, (*key, index))
    else:
        yield key, data
