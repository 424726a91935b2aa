"""Target platforms of an image build (``--platform linux/amd64,linux/arm64``), parsed once.

The names are the OCI image index's ``os/architecture[/variant]`` (image-spec
``image-index.md``: ``platform.os`` and ``platform.architecture`` take Go's GOOS/GOARCH
values). llmdeploy builds the CPU images for the two architectures its base image and the
``xllamacpp`` wheel exist for: ``linux/amd64`` (manylinux ``x86_64``) and ``linux/arm64``
(manylinux ``aarch64``; ``linux/arm64/v8`` is the same platform, as the engines treat it).
"""

from __future__ import annotations

import platform as _platform
from dataclasses import dataclass


@dataclass(frozen=True)
class Platform:
    """``os/architecture``: ``linux/arm64``. ``wheel_arch`` is the manylinux architecture of
    its Python wheels (``aarch64``), ``machine`` what ``uname -m`` prints inside it."""

    os: str
    architecture: str
    wheel_arch: str

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}"

    @property
    def machine(self) -> str:
        return self.wheel_arch


SUPPORTED: dict[str, Platform] = {
    "linux/amd64": Platform("linux", "amd64", "x86_64"),
    "linux/arm64": Platform("linux", "arm64", "aarch64"),
}
_ALIASES = {"linux/arm64/v8": "linux/arm64", "linux/x86_64": "linux/amd64"}
_MACHINES = {
    "x86_64": "linux/amd64",
    "amd64": "linux/amd64",
    "aarch64": "linux/arm64",
    "arm64": "linux/arm64",
}


def parse_platforms(text: str) -> tuple[Platform, ...]:
    """``"linux/amd64,linux/arm64"`` -> both platforms, in the order given, without repeats.

    Raises ValueError naming an unknown platform and the supported ones.
    """
    found: list[Platform] = []
    for item in text.split(","):
        name = item.strip().lower()
        if not name:
            continue
        name = _ALIASES.get(name, name)
        if name not in SUPPORTED:
            raise ValueError(
                f"unknown platform {item.strip()!r}: use {', '.join(SUPPORTED)} "
                "(comma-separated for a manifest list)"
            )
        if SUPPORTED[name] not in found:
            found.append(SUPPORTED[name])
    if not found:
        raise ValueError("no platform given: use linux/amd64, linux/arm64 or both")
    return tuple(found)


def host_platform(machine: str | None = None) -> Platform:
    """The platform this host runs natively (from ``uname -m``); linux/amd64 when unknown."""
    name = _MACHINES.get((machine or _platform.machine()).lower(), "linux/amd64")
    return SUPPORTED[name]


def wheel_matches(filename: str, target: Platform) -> bool:
    """Whether a wheel file serves ``target``: pure wheels (``-any.whl``) and those whose
    platform tag ends in the target's manylinux architecture (wheel file names: PEP 427,
    platform tags: PEP 600, ``manylinux_2_17_aarch64``)."""
    if not filename.endswith(".whl"):
        return False
    platform_tag = filename[: -len(".whl")].rsplit("-", 1)[-1]
    if platform_tag == "any":
        return True
    return any(tag.endswith(f"_{target.wheel_arch}") for tag in platform_tag.split("."))
