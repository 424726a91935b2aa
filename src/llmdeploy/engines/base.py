"""The interface every container engine implements; lifecycle code talks only to this."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from llmdeploy.core.engine_traits import EngineTraits
from llmdeploy.core.run_spec import BuildRequest, ContainerInfo, RunSpec


class Engine(Protocol):
    traits: EngineTraits

    @property
    def name(self) -> str: ...

    def version(self) -> str: ...

    def image_exists(self, ref: str) -> bool: ...

    def pull(self, ref: str) -> None: ...

    def build(self, request: BuildRequest) -> list[str]:
        """Build and tag an image; return the build log lines."""
        ...

    def run(self, spec: RunSpec) -> ContainerInfo: ...

    def inspect(self, name_or_id: str) -> ContainerInfo | None: ...

    def stop(self, name_or_id: str, timeout_s: int = 10) -> None: ...

    def remove(self, name_or_id: str) -> None: ...

    def logs(
        self, name_or_id: str, *, follow: bool = False, tail: int | None = None
    ) -> Iterator[str]: ...

    def list(self, labels: dict[str, str]) -> list[ContainerInfo]: ...

    def close(self) -> None: ...
