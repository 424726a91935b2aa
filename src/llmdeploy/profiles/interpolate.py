"""``${VAR}`` / ``${VAR:-default}`` interpolation of profile values (``$${`` escapes a dollar).

A substituted value is text and stays text: it is never parsed as YAML again, so ``${MODE}``
with ``MODE=0755`` is the string "0755" and ``${FLAG}`` with ``FLAG=no`` the string "no".
Validation then reads that text for the field's type (see docs/profiles.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

from llmdeploy.errors import ProfileError
from llmdeploy.profiles.yaml_source import Key, Position, label

_PATTERN = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate(
    data: Any,
    env: Mapping[str, str],
    *,
    source: str,
    path: str = "",
    positions: Mapping[Key, Position] | None = None,
    record: MutableMapping[Key, str] | None = None,
) -> Any:
    """Return ``data`` with every ``${VAR}`` in string values replaced from ``env``.

    Keys are never interpolated. A variable that is unset and has no default is an error
    naming the file, the line (from ``positions``, when given) and the field path.
    ``record``, when given, receives the path and original text of every string that held
    a ``${...}`` reference, so that a later error can say where a value came from.
    """
    prefix: Key = tuple(path.split(".")) if path else ()
    return _walk(data, env, prefix, source, positions or {}, record)


def _walk(
    data: Any,
    env: Mapping[str, str],
    key: Key,
    source: str,
    positions: Mapping[Key, Position],
    record: MutableMapping[Key, str] | None,
) -> Any:
    if isinstance(data, dict):
        return {k: _walk(v, env, (*key, k), source, positions, record) for k, v in data.items()}
    if isinstance(data, list):
        return [
            _walk(item, env, (*key, index), source, positions, record)
            for index, item in enumerate(data)
        ]
    if isinstance(data, str):
        value = _substitute(data, env, source=source, key=key, positions=positions)
        if record is not None and "${" in data:
            record[key] = data
        return value
    return data


def _substitute(
    text: str, env: Mapping[str, str], *, source: str, key: Key, positions: Mapping[Key, Position]
) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        value = env.get(name)
        if value is None or (value == "" and default is not None):
            if default is not None:
                return default
            position = positions.get(key)
            where = f"{source}:{position.line}" if position else source
            raise ProfileError(
                f"{where}: {label(key) or '<root>'}: environment variable ${{{name}}} is not set",
                hint=f"export {name}=... or write ${{{name}:-default}} in the profile",
            )
        return value

    return _PATTERN.sub(replace, text)
