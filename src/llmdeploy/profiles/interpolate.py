"""``${VAR}`` / ``${VAR:-default}`` interpolation of profile values (``$${`` escapes a dollar)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from llmdeploy.errors import ProfileError

_PATTERN = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate(data: Any, env: Mapping[str, str], *, source: str, path: str = "") -> Any:
    """Return ``data`` with every ``${VAR}`` in string values replaced from ``env``.

    Keys are never interpolated. A variable that is unset and has no default is an error
    naming the file and the field path.
    """
    if isinstance(data, dict):
        return {
            key: interpolate(value, env, source=source, path=_join(path, str(key)))
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [
            interpolate(item, env, source=source, path=f"{path}[{index}]")
            for index, item in enumerate(data)
        ]
    if isinstance(data, str):
        return _substitute(data, env, source=source, path=path)
    return data


def _substitute(text: str, env: Mapping[str, str], *, source: str, path: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        value = env.get(name)
        if value is None or (value == "" and default is not None):
            if default is not None:
                return default
            raise ProfileError(
                f"{source}: {path or '<root>'}: environment variable ${{{name}}} is not set",
                hint=f"export {name}=... or write ${{{name}:-default}} in the profile",
            )
        return value

    return _PATTERN.sub(replace, text)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key
