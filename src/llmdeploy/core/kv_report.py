"""Planned vs actual KV cache: the plan's figure, the server's own, and whether they agree.

The planner sizes the KV cache by formulas (``planner.kv_cache``); the server logs what it
really allocated. ``up`` and ``status`` put the two side by side (``KvCheck``), and flag a
difference of more than :data:`TOLERANCE` of the plan: what no formula catches (a new
architecture, a server upgrade that changes its cache) shows up there.

Which figure is compared depends on the backend (:func:`compared_unit`):

- llama.cpp and Ollama allocate the whole cache at start: **bytes** (the plan's
  ``kv_cache_required_bytes`` against the sum of llama.cpp's ``llama_kv_cache: size = ... MiB``
  lines);
- vLLM fills the memory it is given with as many blocks as fit: **tokens** (the plan's
  ``kv_capacity_tokens`` against vLLM's ``KV cache size: N tokens``); the bytes it gave the
  cache are shown beside it, not compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from llmdeploy.core.sizes import format_bytes

KvUnit = Literal["bytes", "tokens"]

#: a server figure more than 10 % away from the plan's is flagged
TOLERANCE = 0.10


def compared_unit(backend: str) -> KvUnit:
    """The figure compared for ``backend``: ``tokens`` for vLLM, ``bytes`` otherwise."""
    return "tokens" if backend == "vllm" else "bytes"


@dataclass(frozen=True)
class PlannedKv:
    """The planner's KV cache figures for a deployment, recorded in its labels at creation.

    ``bytes``: the cache the server is expected to allocate (llama.cpp, Ollama: context x
    sequences; vLLM: the memory counted for its cache). ``tokens``: the tokens that cache holds
    (vLLM's capacity; llama.cpp's ``ctx_size``). None where the planner had no figure.
    """

    bytes: int | None = None
    tokens: int | None = None

    def value(self, unit: KvUnit) -> int | None:
        return self.bytes if unit == "bytes" else self.tokens


@dataclass(frozen=True)
class ServerKv:
    """What the server said about its KV cache, read from its own log.

    ``bytes``: the memory of its KV cache (llama.cpp / Ollama: every cache it built, summed;
    vLLM: the memory one worker gave the cache). ``tokens``: the tokens it holds (vLLM).
    ``lines``: the log lines the figures come from, as the server wrote them.
    """

    bytes: int | None = None
    tokens: int | None = None
    lines: tuple[str, ...] = ()

    def value(self, unit: KvUnit) -> int | None:
        return self.bytes if unit == "bytes" else self.tokens


@dataclass(frozen=True)
class KvCheck:
    """The plan's KV figure beside the server's, for one deployment.

    ``unit``: what is compared (:func:`compared_unit`). ``planned`` / ``server``: None when
    there is no such figure, ``notes`` then says why (for people, one short clause each).
    """

    backend: str
    unit: KvUnit
    planned: PlannedKv | None
    server: ServerKv | None
    notes: tuple[str, ...] = field(default=())

    @property
    def planned_value(self) -> int | None:
        return self.planned.value(self.unit) if self.planned else None

    @property
    def actual_value(self) -> int | None:
        return self.server.value(self.unit) if self.server else None

    @property
    def difference(self) -> float | None:
        """(actual - planned) / planned; None when either is missing or the plan is 0."""
        planned, actual = self.planned_value, self.actual_value
        if planned is None or actual is None or planned == 0:
            return None
        return (actual - planned) / planned

    @property
    def differs(self) -> bool | None:
        """True when the server's figure is more than :data:`TOLERANCE` off the plan's;
        None when they cannot be compared."""
        planned, actual = self.planned_value, self.actual_value
        if planned is None or actual is None:
            return None
        if planned == 0:
            return actual != 0
        difference = self.difference
        return difference is not None and abs(difference) > TOLERANCE

    def summary(self) -> str:
        """One line for people: ``server 45.0 MiB, planned 45.0 MiB (+0.0%)``."""
        actual = _shown(self.actual_value, self.unit)
        planned = _shown(self.planned_value, self.unit)
        server = f"server {actual}" if actual else "server: not reported"
        plan = f"planned {planned}" if planned else "planned: not recorded"
        text = f"{server}, {plan}"
        difference = self.difference
        if difference is not None:
            text += f" ({difference:+.1%}"
            if self.differs:
                text += f", more than {TOLERANCE:.0%} off the plan"
            text += ")"
        elif self.differs:
            text += f" (more than {TOLERANCE:.0%} off the plan)"
        if self.unit == "tokens" and self.server is not None and self.server.bytes is not None:
            text += f"; the server gave its cache {format_bytes(self.server.bytes, digits=2)}"
        return text

    def to_dict(self) -> dict[str, object]:
        """The ``kv_cache`` object of ``up --json`` and ``status --json``."""
        difference = self.difference
        return {
            "compared": self.unit,
            "planned": self.planned_value,
            "actual": self.actual_value,
            "difference": None if difference is None else round(difference, 4),
            "differs": self.differs,
            "tolerance": TOLERANCE,
            "planned_bytes": self.planned.bytes if self.planned else None,
            "planned_tokens": self.planned.tokens if self.planned else None,
            "actual_bytes": self.server.bytes if self.server else None,
            "actual_tokens": self.server.tokens if self.server else None,
            "server_lines": list(self.server.lines) if self.server else [],
            "notes": list(self.notes),
            "summary": self.summary(),
        }


def _shown(value: int | None, unit: KvUnit) -> str:
    if value is None:
        return ""
    if unit == "tokens":
        return f"{value:,} tokens"
    return format_bytes(value, digits=1)
