"""The interface every container engine implements; lifecycle code talks only to this."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from llmdeploy.core.engine_traits import EngineTraits
from llmdeploy.core.registry import DEFAULT_ACCESS, RegistryAccess
from llmdeploy.core.run_spec import BuildRequest, ContainerInfo, ImageInfo, PushResult, RunSpec


class Engine(Protocol):
    traits: EngineTraits

    @property
    def name(self) -> str: ...

    def version(self) -> str: ...

    def image_exists(self, ref: str) -> bool: ...

    def pull(self, ref: str, access: RegistryAccess = DEFAULT_ACCESS) -> None:
        """Pull ``ref`` (ImageError; RegistryAuthError / RegistryUnreachableError)."""
        ...

    def build(self, request: BuildRequest) -> list[str]:
        """Build and tag an image; return the build log lines (ImageBuildError)."""
        ...

    def image_info(self, ref: str) -> ImageInfo | None:
        """The image ``ref`` names, or None when the engine does not have it."""
        ...

    def tag_image(self, image: str, ref: str) -> None: ...

    def untag_image(self, ref: str) -> None:
        """Remove the name ``ref``; the image stays under its other names (absent: no-op)."""
        ...

    def push(self, ref: str, access: RegistryAccess = DEFAULT_ACCESS) -> PushResult:
        """Push ``ref`` to its registry (RegistryAuthError / RegistryUnreachableError)."""
        ...

    def create_manifest_list(self, ref: str, images: list[str]) -> None:
        """Make the local manifest list ``ref`` of ``images`` (one per platform); only engines
        whose traits say ``manifest_lists``."""
        ...

    def push_manifest_list(self, ref: str, access: RegistryAccess = DEFAULT_ACCESS) -> PushResult:
        """Push the manifest list ``ref`` with its images."""
        ...

    def remove_manifest_list(self, ref: str) -> None: ...

    def run(self, spec: RunSpec) -> ContainerInfo: ...

    def inspect(self, name_or_id: str) -> ContainerInfo | None: ...

    def stop(self, name_or_id: str, timeout_s: int = 10) -> None: ...

    def remove(self, name_or_id: str) -> None: ...

    def logs(
        self, name_or_id: str, *, follow: bool = False, tail: int | None = None
    ) -> Iterator[str]: ...

    def list(self, labels: dict[str, str]) -> list[ContainerInfo]: ...

    def close(self) -> None: ...
