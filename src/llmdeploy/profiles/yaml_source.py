"""Read one profile file into a YAML mapping, refusing every kind of bad input with a clear error.

``read_yaml_file(path)`` takes a path through four steps, each of which raises a
:class:`~llmdeploy.errors.ProfileError` naming the file (and the line where one is known):

1. bytes and 2. text: see :mod:`llmdeploy.profiles.file_text` (a regular, readable file of
   at most 1 MiB of UTF-8; CRLF line endings are fine);
3. YAML: one document, nesting at most ``MAX_DEPTH`` deep and at most ``MAX_NODES`` values
   with every alias expanded (a "billion laughs" file is refused, not expanded), no alias
   that contains itself, no duplicate key at any depth (both lines named), keys are text;
4. a mapping at the top.

The result keeps the position and source text of every value (:class:`Position`, keyed by
the value's path such as ``("env", "MODE")``) so that later errors can name the line and say
what YAML 1.1 made of an unquoted scalar (``no`` is a boolean, ``0755`` an octal number).

PyYAML (already a dependency) is used through a ``SafeLoader`` subclass rather than
ruamel.yaml: the node tree PyYAML composes already carries every mark we need, and duplicate
keys, limits and positions are a walk over that tree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from llmdeploy.errors import ProfileError
from llmdeploy.profiles.file_text import decode_text, read_bytes

MAX_DEPTH = 64
"""Deepest nesting of mappings and lists, aliases expanded."""
MAX_NODES = 10_000
"""Most values in one document, every alias expanded (bounds alias "bombs")."""

Key = tuple[str | int, ...]
"""A value's path in the document: mapping keys and list indexes, e.g. ("env", "MODE")."""

_MAX_INT_BITS = 128  # larger numbers mean nothing in a profile and cannot all be printed
_SURROGATE = re.compile("[\ud800-\udfff]")
_TAG_PREFIX = "tag:yaml.org,2002:"
_MERGE_TAG = _TAG_PREFIX + "merge"
IMPLICIT_KINDS = frozenset({"bool", "int", "float", "null", "timestamp"})


@dataclass(frozen=True)
class Position:
    """Where a value is written and, for a scalar, how.

    ``line``/``column`` are 1-based (for a mapping entry: where its key starts); ``text`` is
    a scalar's source text (``None`` for mappings and lists); ``plain`` is true when the
    scalar was written without quotes; ``kind`` is what YAML made of it: ``str``, ``bool``,
    ``int``, ``float``, ``null``, ``timestamp``, ``map``, ``seq`` or another tag's name.
    """

    line: int
    column: int
    text: str | None
    plain: bool
    kind: str

    @property
    def implicitly_typed(self) -> bool:
        """An unquoted scalar that YAML 1.1 read as something other than text."""
        return self.plain and self.text is not None and self.kind in IMPLICIT_KINDS


@dataclass(frozen=True)
class YamlDocument:
    """A profile document: its data (a mapping) and the position of every value in it."""

    data: dict[str, Any]
    positions: Mapping[Key, Position]


def read_yaml_file(path: Path, location: str | None = None) -> YamlDocument:
    """Read ``path`` as one YAML mapping; ``location`` names it in errors (default: the path)."""
    where = location or str(path)
    return parse_yaml(decode_text(read_bytes(path, where), where), where)


def parse_yaml(text: str, location: str) -> YamlDocument:
    """Parse ``text`` as one YAML mapping with positions (see the module docstring)."""
    loader = _ProfileLoader(text, location)
    try:
        node = loader.get_single_node()
        if node is None or (isinstance(node, ScalarNode) and node.tag == _TAG_PREFIX + "null"):
            raise ProfileError(
                f"{location}: the file is empty; a profile is a YAML mapping",
                hint="start from `llmdeploy profiles show edge-podman`",
            )
        positions = _index(node, location)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(exc, location) from exc
    except yaml.YAMLError as exc:
        raise ProfileError(f"{location}: not valid YAML: {exc}") from exc
    except RecursionError as exc:  # a guard: the depth limit should stop this first
        raise ProfileError(f"{location}: nested too deeply (more than {MAX_DEPTH})") from exc
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        found = {"seq": "a list", "null": "no value"}.get(positions[()].kind, "a single value")
        raise ProfileError(
            f"{location}:{positions[()].line}: a profile must be a YAML mapping "
            f"(`key: value` lines); this file holds {found}"
        )
    return YamlDocument(data=data, positions=positions)


# ---------------------------------------------------------------------------------------------
# YAML


class _ProfileLoader(yaml.SafeLoader):
    """SafeLoader with bounded nesting and size, text keys, and marks on construction errors."""

    def __init__(self, stream: str, location: str) -> None:
        super().__init__(stream)
        self._location = location
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        self._nodes += 1
        if self._depth > MAX_DEPTH or self._nodes > MAX_NODES:
            line = self.peek_event().start_mark.line + 1  # type: ignore[no-untyped-call]
            what = (
                f"nested more than {MAX_DEPTH} deep"
                if self._depth > MAX_DEPTH
                else f"more than {MAX_NODES} values"
            )
            raise ProfileError(f"{self._location}:{line}: too complex for a profile: {what}")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        # keys are always text: `on:` is the key "on", `1:` the key "1" (_index checked them)
        self.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            mapping[key_node.value] = self.construct_object(value_node, deep=deep)
        return mapping

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            value = super().construct_object(node, deep=deep)
        except (ValueError, OverflowError, TypeError) as exc:  # e.g. 5000 digits, 2024-13-45
            text = str(node.value)
            reason = f"{len(text)} digits is too long" if "digits" in str(exc) else str(exc)
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read `{_short(text)}`: {reason}", node.start_mark
            ) from exc
        if isinstance(value, str) and _SURROGATE.search(value):
            raise yaml.constructor.ConstructorError(
                None,
                None,
                "a \\u escape of half a UTF-16 surrogate pair is not a character; "
                "write the character itself or a \\U escape",
                node.start_mark,
            )
        if isinstance(value, int) and value.bit_length() > _MAX_INT_BITS:
            raise yaml.constructor.ConstructorError(
                None, None, f"`{_short(str(node.value))}` is too large a number", node.start_mark
            )
        return value


class _Budget:
    def __init__(self, location: str) -> None:
        self.location = location
        self.nodes = 0
        self.active: set[int] = set()

    def spend(self, node: Node, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            what = (
                f"more than {MAX_NODES} values once its aliases are expanded"
                if self.nodes > MAX_NODES
                else f"nested more than {MAX_DEPTH} deep once its aliases are expanded"
            )
            raise ProfileError(
                f"{self.location}:{node.start_mark.line + 1}: too complex for a profile: {what}",
                hint="a profile needs no anchors/aliases: write the values out, or use `extends`",
            )


def _index(root: Node, location: str) -> dict[Key, Position]:
    """Positions of every value; refuses duplicate keys, non-text keys, recursive aliases."""
    positions: dict[Key, Position] = {}
    budget = _Budget(location)

    def visit(node: Node, key: Key, at: yaml.Mark) -> None:
        budget.spend(node, len(key))
        kind = node.tag.removeprefix(_TAG_PREFIX)
        if isinstance(node, ScalarNode):
            plain = node.style is None
            positions[key] = Position(at.line + 1, at.column + 1, node.value, plain, kind)
            return
        positions[key] = Position(at.line + 1, at.column + 1, None, False, kind)
        if id(node) in budget.active:
            raise ProfileError(
                f"{location}:{node.start_mark.line + 1}: an alias refers to a value that "
                "contains it (a recursive structure); a profile cannot hold one"
            )
        budget.active.add(id(node))
        if isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                visit(item, (*key, index), item.start_mark)
        elif isinstance(node, MappingNode):
            for name, (key_node, value_node) in _entries(node, key, location, budget).items():
                visit(value_node, (*key, name), key_node.start_mark)
        budget.active.discard(id(node))

    visit(root, (), root.start_mark)
    return positions


def _entries(
    node: MappingNode, key: Key, location: str, budget: _Budget
) -> dict[str, tuple[Node, Node]]:
    """A mapping's entries by key text, ``<<`` merges applied (explicit keys win)."""
    explicit: dict[str, tuple[Node, Node]] = {}
    merged: dict[str, tuple[Node, Node]] = {}
    merge_key: Node | None = None
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE_TAG:
            if merge_key is not None:
                _duplicate(location, key, "<<", merge_key, key_node)
            merge_key = key_node
            for source in _merge_sources(value_node, location):
                if id(source) in budget.active:
                    raise ProfileError(
                        f"{location}:{key_node.start_mark.line + 1}: `<<` merges a mapping "
                        "that contains it (a recursive structure)"
                    )
                budget.active.add(id(source))
                for name, entry in _entries(source, key, location, budget).items():
                    budget.spend(entry[0], len(key))
                    merged.setdefault(name, entry)
                budget.active.discard(id(source))
            continue
        if not isinstance(key_node, ScalarNode):
            raise ProfileError(
                f"{location}:{key_node.start_mark.line + 1}: {label(key) or '<top level>'}: "
                "a key must be text, not a list or mapping"
            )
        name = key_node.value
        if _SURROGATE.search(name):
            raise ProfileError(
                f"{location}:{key_node.start_mark.line + 1}: a key holds a \\u escape of half "
                "a UTF-16 surrogate pair, which is not a character"
            )
        if name in explicit:
            _duplicate(location, key, name, explicit[name][0], key_node)
        explicit[name] = (key_node, value_node)
    return {**merged, **explicit}


def _merge_sources(value: Node, location: str) -> list[MappingNode]:
    if isinstance(value, MappingNode):
        return [value]
    if isinstance(value, SequenceNode) and all(isinstance(n, MappingNode) for n in value.value):
        return list(value.value)
    raise ProfileError(
        f"{location}:{value.start_mark.line + 1}: `<<` (merge) takes a mapping or a list of "
        "mappings"
    )


def _duplicate(location: str, key: Key, name: str, first: Node, again: Node) -> None:
    field = label((*key, name))
    one, two = first.start_mark, again.start_mark
    lines = (
        f"line {one.line + 1} column {one.column + 1}, again at column {two.column + 1}"
        if one.line == two.line
        else f"line {one.line + 1}, again at line {two.line + 1}"
    )
    raise ProfileError(
        f"{location}:{two.line + 1}: {field}: duplicate key (first at {lines})",
        hint="a key may appear once in a mapping: keep the value you mean and delete the other",
    )


def _yaml_error(exc: yaml.MarkedYAMLError, location: str) -> ProfileError:
    mark = exc.problem_mark or exc.context_mark
    where = f"{location}:{mark.line + 1}:{mark.column + 1}" if mark else location
    problem = exc.problem or "not valid YAML"
    context = ""
    if exc.context and exc.context_mark and exc.context_mark is not mark:
        context = f" ({exc.context} at line {exc.context_mark.line + 1})"
    elif exc.context:
        context = f" ({exc.context})"
    hint = None
    if "'\\t'" in problem:
        hint = "YAML does not allow tabs for indentation (or before a comment): use spaces"
    elif "another document" in problem:
        problem, context = "a second YAML document (`---`); a profile is one document", ""
    elif "could not determine a constructor" in problem:
        hint = "profiles use plain YAML values; drop the `!tag`"
    return ProfileError(f"{where}: not valid YAML: {problem}{context}", hint=hint)


def label(key: Key) -> str:
    """A path as the user writes it: ``backend.extra_args[1]``."""
    out = ""
    for part in key:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------------
# what YAML 1.1 made of an unquoted scalar


def yaml_reading(position: Position, value: Any) -> str:
    """E.g. "YAML read `no` as the boolean false", for an implicitly typed scalar."""
    text = _short(position.text or "")
    if position.kind == "null":
        return "YAML read an empty value as null" if not text else f"YAML read `{text}` as null"
    if position.kind == "bool":
        return f"YAML read `{text}` as the boolean {'true' if value else 'false'}"
    if position.kind == "timestamp":
        return f"YAML read `{text}` as a date"
    base = number_base(text)
    shown = value if isinstance(value, int | float) and not isinstance(value, bool) else text
    return f"YAML read `{text}` as the {base + ' ' if base else ''}number {shown}"


def number_base(text: str) -> str | None:
    """'base-60' or 'octal' for YAML 1.1 number forms that YAML 1.2 and people read otherwise."""
    digits = text.lstrip("+-").replace("_", "")
    if ":" in digits:
        return "base-60"
    if len(digits) > 1 and digits.startswith("0") and digits.isdigit():
        return "octal"
    if digits.startswith(("0x", "0b")):
        return "hexadecimal" if digits.startswith("0x") else "binary"
    return None


def quoted(key: Key, text: str) -> str:
    """How to write ``text`` at ``key`` as a quoted string, e.g. ``engine: 'no'``."""
    literal = "'" + _short(text).replace("'", "''") + "'"
    last = key[-1] if key else ""
    return f"- {literal}" if isinstance(last, int) else f"{last}: {literal}"
