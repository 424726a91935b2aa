"""Every visible profile, resolved, for ``profiles list``: valid ones and what is wrong with the
others, in search order (the first of a name wins; later ones are shadowed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from llmdeploy.errors import ProfileError
from llmdeploy.profiles.loader import discover, resolve_source


@dataclass(frozen=True)
class CatalogEntry:
    """One profile document: where it is, whether a name before it hides it, and either its
    settings or its problems (one line each, file and line first)."""

    name: str
    origin: str
    location: str
    shadowed: bool
    valid: bool
    engine: str = "?"
    backend: str = "?"
    accelerator: str = "?"
    description: str = ""
    problems: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            "name": self.name,
            "origin": self.origin,
            "location": self.location,
            "shadowed": self.shadowed,
            "engine": self.engine,
            "backend": self.backend,
            "accelerator": self.accelerator,
            "description": self.description,
            "valid": self.valid,
        }
        if not self.valid:
            data["problems"] = list(self.problems)
        return data


def catalog(cwd: Path | None = None) -> list[CatalogEntry]:
    """Every profile visible from ``cwd``, each resolved (extends, ${VAR}, validation)."""
    sources = discover(cwd)
    entries = []
    seen: set[str] = set()
    for source in sources:
        shadowed = source.name in seen
        seen.add(source.name)
        try:
            profile = resolve_source(source, sources).profile
        except ProfileError as exc:
            lines = [line.strip() for line in exc.message.splitlines()[1:]] or [exc.message]
            entries.append(
                CatalogEntry(
                    source.name,
                    source.origin,
                    source.location,
                    shadowed,
                    valid=False,
                    problems=tuple(lines),
                    description="invalid: " + "; ".join(lines),
                )
            )
            continue
        entries.append(
            CatalogEntry(
                source.name,
                source.origin,
                source.location,
                shadowed,
                valid=True,
                engine=profile.engine,
                backend=profile.backend.kind,
                accelerator=profile.accelerator,
                description=profile.description,
            )
        )
    return entries
