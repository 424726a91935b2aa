"""Find, read, inherit (``extends``), interpolate and validate profiles.

Search order for ``--profile NAME``: ``./llmdeploy.yaml``, ``./profiles/*.yaml``, the user
config dir (``~/.config/llmdeploy/profiles``), then the built-ins shipped in the package.
``--profile-file PATH`` reads one file directly.

A file that cannot be read (not UTF-8, not YAML, duplicate keys, no name, ...) does not stop
discovery: it becomes a broken :class:`ProfileSource` carrying its error, named by its
``name:`` line when one can be found and otherwise by its file stem. Asking for that name
(``--profile``, ``extends``, or the default ``./llmdeploy.yaml``) raises the file's error;
asking for another profile works, and ``profiles list`` shows the broken file as invalid.
"""

from __future__ import annotations

import copy
import difflib
import functools
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from llmdeploy.errors import ProfileError
from llmdeploy.paths import user_profiles_dir
from llmdeploy.profiles.file_text import MAX_BYTES, decode_text
from llmdeploy.profiles.interpolate import interpolate
from llmdeploy.profiles.merge import deep_merge
from llmdeploy.profiles.schema import Profile
from llmdeploy.profiles.validate import Layer, validate_profile
from llmdeploy.profiles.yaml_source import (
    Key,
    Position,
    YamlDocument,
    parse_yaml,
    read_yaml_file,
)

Origin = Literal["file", "project", "user", "builtin"]
_ORDER: tuple[Origin, ...] = ("file", "project", "user", "builtin")
_MAX_DEPTH = 16
_NAME_LINE = re.compile(
    r"""^name:[ \t]*["']?([A-Za-z0-9][A-Za-z0-9_.-]*)["']?[ \t]*(?:#.*)?\r?$""", re.MULTILINE
)


@dataclass(frozen=True)
class ProfileSource:
    """One profile document and where it came from; ``error`` is set when it cannot be used."""

    name: str
    origin: Origin
    location: str  # a path, or "builtin:NAME"
    raw: dict[str, Any]
    positions: Mapping[Key, Position] = field(default_factory=dict, compare=False, repr=False)
    error: ProfileError | None = field(default=None, compare=False)

    @property
    def directory(self) -> Path | None:
        if self.origin == "builtin":
            return None
        return Path(self.location).resolve().parent

    def answers_to(self, name: str) -> bool:
        """Whether ``--profile name`` means this source (a broken one also by its file stem)."""
        if self.name == name:
            return True
        stem = Path(self.location.removeprefix("builtin:")).stem
        return self.error is not None and stem == name


@dataclass(frozen=True)
class ResolvedProfile:
    profile: Profile
    source: ProfileSource
    chain: tuple[str, ...]  # locations, child first
    broken: tuple[ProfileSource, ...] = ()  # other profile files seen that cannot be read

    @property
    def base_dir(self) -> Path | None:
        return self.source.directory


def read_profile_file(path: Path, origin: Origin = "file") -> ProfileSource:
    """Read one profile file; raises ProfileError when it cannot be used."""
    source = _read_source(path, origin)
    if source.error is not None:
        raise source.error
    return source


def _read_source(path: Path, origin: Origin) -> ProfileSource:
    location = str(path)
    try:
        document = read_yaml_file(path, location)
        return _source_from_document(document, origin=origin, location=location)
    except ProfileError as exc:
        return _broken(location, origin, exc, _name_line(path))


def _broken(location: str, origin: Origin, error: ProfileError, name: str | None) -> ProfileSource:
    stem = Path(location.removeprefix("builtin:")).stem
    return ProfileSource(name=name or stem, origin=origin, location=location, raw={}, error=error)


def _name_line(path: Path) -> str | None:
    """The ``name:`` of a file that failed to load, when a plain line gives it away."""
    try:
        if not path.is_file():  # never open a FIFO or device (it could block)
            return None
        with path.open("rb") as handle:
            text = handle.read(MAX_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return None
    match = _NAME_LINE.search(text)
    return match.group(1) if match else None


def _source_from_document(
    document: YamlDocument, *, origin: Origin, location: str
) -> ProfileSource:
    raw = dict(document.data)
    for key in ("name", "extends"):  # names are text even when YAML typed them (`name: 2024`)
        position = document.positions.get((key,))
        typed = position is not None and position.implicitly_typed and position.kind != "null"
        if typed and position and position.text and not isinstance(raw.get(key), str):
            raw[key] = position.text
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        position = document.positions.get(("name",)) or document.positions.get(())
        line = f":{position.line}" if position else ""
        raise ProfileError(f"{location}{line}: name: a profile needs a 'name' (text)")
    return ProfileSource(
        name=name, origin=origin, location=location, raw=raw, positions=document.positions
    )


def builtin_sources() -> Iterator[ProfileSource]:
    for location, document in _builtin_documents():
        try:
            if isinstance(document, ProfileError):
                raise document
            copied = YamlDocument(copy.deepcopy(document.data), document.positions)
            yield _source_from_document(copied, origin="builtin", location=location)
        except ProfileError as exc:
            yield _broken(location, "builtin", exc, None)


@functools.cache
def _builtin_documents() -> tuple[tuple[str, YamlDocument | ProfileError], ...]:
    """The built-in profiles, parsed once per process (they are package data)."""
    folder = resources.files("llmdeploy.profiles").joinpath("builtin")
    found: list[tuple[str, YamlDocument | ProfileError]] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".yaml", ".yml")):
            location = f"builtin:{entry.name}"
            try:
                found.append(
                    (location, parse_yaml(decode_text(entry.read_bytes(), location), location))
                )
            except ProfileError as exc:
                found.append((location, exc))
    return tuple(found)


def discover(cwd: Path | None = None, profile_file: Path | None = None) -> list[ProfileSource]:
    """Every visible profile, highest priority first (duplicates by name and broken included)."""
    here = cwd or Path.cwd()
    found: list[ProfileSource] = []
    if profile_file is not None:
        found.append(_read_source(profile_file, "file"))
    project_file = here / "llmdeploy.yaml"
    if project_file.exists() or project_file.is_symlink():
        found.append(_read_source(project_file, "project"))
    folders: tuple[tuple[Path, Origin], ...] = (
        (here / "profiles", "project"),
        (user_profiles_dir(), "user"),
    )
    for folder, origin in folders:
        for path in _profile_files(folder):
            found.append(_read_source(path, origin))
    found.extend(builtin_sources())
    return found


def _profile_files(folder: Path) -> list[Path]:
    try:
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))
    except OSError:
        return []  # an unreadable folder shows no profiles (like an absent one)


def resolve(
    name: str | None = None,
    *,
    profile_file: Path | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> ResolvedProfile:
    """Find a profile by name (or the given file), apply ``extends``, interpolate, validate.

    Raises ProfileError: no such profile, the chosen file (or a parent it extends) cannot be
    read, or the result is invalid. Broken files that were not asked for are ignored (they are
    listed in ``ResolvedProfile.broken``).
    """
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
        matches = [s for s in sources if s.answers_to(name)]
        if not matches:
            raise _not_found(name, sources)
        start = matches[0]
    resolved = resolve_source(start, sources, environ)
    broken = tuple(s for s in sources if s.error is not None)
    return ResolvedProfile(resolved.profile, resolved.source, resolved.chain, broken)


def _not_found(name: str, sources: list[ProfileSource]) -> ProfileError:
    known = sorted({s.name for s in sources if s.error is None})
    close = difflib.get_close_matches(name, known, n=1)
    hint = (f"did you mean {close[0]!r}? " if close else "") + f"known profiles: {', '.join(known)}"
    broken = [s.location for s in sources if s.error is not None]
    if broken:
        hint += f"; these profile files cannot be read: {', '.join(broken)}"
    return ProfileError(f"no profile named {name!r}", hint=hint)


def resolve_source(
    start: ProfileSource, sources: list[ProfileSource], env: Mapping[str, str] | None = None
) -> ResolvedProfile:
    """Apply ``extends``, interpolation and validation to one discovered profile."""
    if start.error is not None:
        raise start.error
    environ = os.environ if env is None else env
    data, layers = _inherit(start, sources, environ)
    data.pop("extends", None)
    profile = validate_profile(data, layers)
    return ResolvedProfile(
        profile=profile, source=start, chain=tuple(layer.location for layer in layers)
    )


def _inherit(
    start: ProfileSource, sources: list[ProfileSource], env: Mapping[str, str]
) -> tuple[dict[str, Any], list[Layer]]:
    chain: list[ProfileSource] = [start]
    current = start
    while True:
        parent_name = current.raw.get("extends")
        if parent_name is None:
            break
        if not isinstance(parent_name, str):
            position = current.positions.get(("extends",))
            line = f":{position.line}" if position else ""
            raise ProfileError(f"{current.location}{line}: extends: must be a profile name (text)")
        if len(chain) > _MAX_DEPTH:
            raise ProfileError(f"{start.location}: extends: chain deeper than {_MAX_DEPTH}")
        parent = _find_parent(parent_name, current, sources)
        if any(p.location == parent.location for p in chain):
            names = " -> ".join(p.name for p in [*chain, parent])
            raise ProfileError(f"{current.location}: extends: cycle ({names})")
        chain.append(parent)
        current = parent
    merged: dict[str, Any] = {}
    layers: list[Layer] = []
    for source in reversed(chain):
        record: dict[Key, str] = {}
        layer = interpolate(
            dict(source.raw),
            env,
            source=source.location,
            positions=source.positions,
            record=record,
        )
        layer.pop("extends", None)
        merged = deep_merge(merged, layer)
        layers.insert(0, Layer(source.location, source.positions, record))
    merged["name"] = start.name
    return merged, layers


def _find_parent(name: str, child: ProfileSource, sources: list[ProfileSource]) -> ProfileSource:
    candidates = [s for s in sources if s.answers_to(name) and s.location != child.location]
    if name == child.name:
        # a profile that extends its own name extends the next one down the search order
        rank = _ORDER.index(child.origin)
        candidates = [s for s in candidates if _ORDER.index(s.origin) >= rank]
    if not candidates:
        raise ProfileError(
            f"{child.location}: extends: no profile named {name!r}",
            hint="see `llmdeploy profiles list`",
        )
    parent = candidates[0]
    if parent.error is not None:
        raise ProfileError(
            f"{child.location}: extends: {name!r} is {parent.location}, which cannot be "
            f"read:\n  {parent.error.message}",
            hint=parent.error.hint,
        )
    return parent
