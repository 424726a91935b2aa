"""Find, read, inherit (``extends``), interpolate and validate profiles.

Search order for ``--profile NAME``: ``./llmdeploy.yaml``, ``./profiles/*.yaml``, the user
config dir (``~/.config/llmdeploy/profiles``), then the built-ins shipped in the package.
``--profile-file PATH`` reads one file directly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from llmdeploy.errors import ProfileError
from llmdeploy.paths import user_profiles_dir
from llmdeploy.profiles.errors import validation_error
from llmdeploy.profiles.interpolate import interpolate
from llmdeploy.profiles.merge import deep_merge
from llmdeploy.profiles.schema import Profile

Origin = Literal["file", "project", "user", "builtin"]
_ORDER: tuple[Origin, ...] = ("file", "project", "user", "builtin")
_MAX_DEPTH = 16


@dataclass(frozen=True)
class ProfileSource:
    """One profile document and where it came from."""

    name: str
    origin: Origin
    location: str  # a path, or "builtin:NAME"
    raw: dict[str, Any]

    @property
    def directory(self) -> Path | None:
        if self.origin == "builtin":
            return None
        return Path(self.location).resolve().parent


@dataclass(frozen=True)
class ResolvedProfile:
    profile: Profile
    source: ProfileSource
    chain: tuple[str, ...]  # locations, child first

    @property
    def base_dir(self) -> Path | None:
        return self.source.directory


def read_profile_file(path: Path, origin: Origin = "file") -> ProfileSource:
    if not path.is_file():
        raise ProfileError(f"profile file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from exc
    return _source_from_data(data, origin=origin, location=str(path))


def _source_from_data(data: Any, *, origin: Origin, location: str) -> ProfileSource:
    if not isinstance(data, dict):
        raise ProfileError(f"{location}: a profile must be a YAML mapping")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ProfileError(f"{location}: name: a profile needs a 'name' (string)")
    return ProfileSource(name=name, origin=origin, location=location, raw=data)


def builtin_sources() -> Iterator[ProfileSource]:
    folder = resources.files("llmdeploy.profiles").joinpath("builtin")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".yaml", ".yml")):
            data = yaml.safe_load(entry.read_text(encoding="utf-8"))
            yield _source_from_data(data, origin="builtin", location=f"builtin:{entry.name}")


def discover(cwd: Path | None = None, profile_file: Path | None = None) -> list[ProfileSource]:
    """Every visible profile, highest priority first (duplicates by name included)."""
    here = cwd or Path.cwd()
    found: list[ProfileSource] = []
    if profile_file is not None:
        found.append(read_profile_file(profile_file, "file"))
    project_file = here / "llmdeploy.yaml"
    if project_file.is_file():
        found.append(read_profile_file(project_file, "project"))
    for folder, origin in ((here / "profiles", "project"), (user_profiles_dir(), "user")):
        if folder.is_dir():
            for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
                found.append(read_profile_file(path, origin))  # type: ignore[arg-type]
    found.extend(builtin_sources())
    return found


def resolve(
    name: str | None = None,
    *,
    profile_file: Path | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> ResolvedProfile:
    """Find a profile by name (or the given file), apply ``extends``, interpolate, validate."""
    environ = os.environ if env is None else env
    sources = discover(cwd, profile_file)
    if profile_file is not None and name is None:
        start = sources[0]
    elif name is None:
        project = [
            s for s in sources if s.origin == "project" and s.location.endswith("llmdeploy.yaml")
        ]
        if not project:
            raise ProfileError(
                "no profile given and no ./llmdeploy.yaml here",
                hint="pass --profile NAME (see `llmdeploy profiles list`) or --profile-file PATH",
            )
        start = project[0]
    else:
        matches = [s for s in sources if s.name == name]
        if not matches:
            known = sorted({s.name for s in sources})
            import difflib

            close = difflib.get_close_matches(name, known, n=1)
            raise ProfileError(
                f"no profile named {name!r}",
                hint=(f"did you mean {close[0]!r}? " if close else "")
                + f"known profiles: {', '.join(known)}",
            )
        start = matches[0]
    return resolve_source(start, sources, environ)


def resolve_source(
    start: ProfileSource, sources: list[ProfileSource], env: Mapping[str, str] | None = None
) -> ResolvedProfile:
    """Apply ``extends``, interpolation and validation to one discovered profile."""
    environ = os.environ if env is None else env
    data, chain = _inherit(start, sources, environ)
    data.pop("extends", None)
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, source=" <- ".join(chain), root=Profile) from exc
    return ResolvedProfile(profile=profile, source=start, chain=tuple(chain))


def _inherit(
    start: ProfileSource, sources: list[ProfileSource], env: Mapping[str, str]
) -> tuple[dict[str, Any], list[str]]:
    chain: list[ProfileSource] = [start]
    current = start
    while True:
        parent_name = current.raw.get("extends")
        if parent_name is None:
            break
        if not isinstance(parent_name, str):
            raise ProfileError(f"{current.location}: extends: must be a profile name (string)")
        if len(chain) > _MAX_DEPTH:
            raise ProfileError(f"{start.location}: extends: chain deeper than {_MAX_DEPTH}")
        parent = _find_parent(parent_name, current, sources)
        if any(p.location == parent.location for p in chain):
            names = " -> ".join(p.name for p in [*chain, parent])
            raise ProfileError(f"{current.location}: extends: cycle ({names})")
        chain.append(parent)
        current = parent
    merged: dict[str, Any] = {}
    for source in reversed(chain):
        layer = interpolate(dict(source.raw), env, source=source.location)
        layer.pop("extends", None)
        merged = deep_merge(merged, layer)
    merged["name"] = start.name
    return merged, [s.location for s in chain]


def _find_parent(name: str, child: ProfileSource, sources: list[ProfileSource]) -> ProfileSource:
    candidates = [s for s in sources if s.name == name and s.location != child.location]
    if name == child.name:
        # a profile that extends its own name extends the next one down the search order
        rank = _ORDER.index(child.origin)
        candidates = [s for s in candidates if _ORDER.index(s.origin) >= rank]
    if not candidates:
        raise ProfileError(
            f"{child.location}: extends: no profile named {name!r}",
            hint="see `llmdeploy profiles list`",
        )
    return candidates[0]
