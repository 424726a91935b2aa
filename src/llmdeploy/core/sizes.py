"""Byte sizes: one parser (``512m``, ``4g``, ``2GiB`` as engines take them) and one formatter.

Every size llmdeploy prints uses binary units (KiB, MiB, GiB, TiB: 1024-based), as
``podman``/``docker``, ``free -h`` and the servers' own logs (llama.cpp's "MiB", vLLM's "GiB")
do, so figures can be compared with what those tools print.
"""

from __future__ import annotations

import re

KIB = 1024
MIB = 1024**2
GIB = 1024**3
TIB = 1024**4
_UNITS = {"": 1, "b": 1, "k": KIB, "m": MIB, "g": GIB, "t": TIB}
_NAMES = (("TiB", TIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB))


def to_bytes(size: str) -> int:
    """``512m`` / ``4g`` / ``2GiB`` / ``2Gi`` / ``1.5G`` -> bytes (k, m, g, t are 1024-based).

    Takes every spelling the profile schema accepts (Kubernetes' ``Gi`` included). Raises
    ValueError for anything else.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:ib?|b)?\s*", size.lower())
    if not match:
        raise ValueError(f"not a size: {size!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def format_bytes(count: int | float | None, *, digits: int = 1, unit: str | None = None) -> str:
    """``count`` bytes for people: ``98.2 MiB``, ``7.62 GiB`` (``digits`` decimals), whole bytes
    below 1 KiB, ``?`` for None. ``unit`` ("GiB", "MiB", ...) fixes the unit, so a column of
    figures reads alike."""
    if count is None:
        return "?"
    if unit is not None:
        scale = dict(_NAMES)[unit]
        return f"{count / scale:.{digits}f} {unit}"
    for name, scale in _NAMES:
        if abs(count) >= scale:
            return f"{count / scale:.{digits}f} {name}"
    return f"{count:.0f} B"


def format_gib(count: int | float) -> str:
    """Memory figures of the planner and ``up``: always GiB, two decimals (``0.28 GiB``)."""
    return format_bytes(count, digits=2, unit="GiB")
