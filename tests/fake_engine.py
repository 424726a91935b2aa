"""An in-memory Engine for fast lifecycle unit tests (the real engines run in tests/e2e)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from llmdeploy.core.engine_traits import PODMAN
from llmdeploy.core.run_spec import BuildRequest, ContainerInfo, MountInfo, RunSpec
from llmdeploy.errors import ImageError, NameConflictError


@dataclass
class FakeEngine:
    images: set[str] = field(default_factory=set)
    pullable: set[str] = field(default_factory=set)
    containers: dict[str, ContainerInfo] = field(default_factory=dict)
    log_lines: list[str] = field(default_factory=lambda: ["server starting", "loading model"])
    on_run: Callable[[ContainerInfo], ContainerInfo] | None = None
    builds: list[BuildRequest] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    traits = PODMAN

    @property
    def name(self) -> str:
        return "fake"

    def version(self) -> str:
        return "0"

    def image_exists(self, ref: str) -> bool:
        return ref in self.images

    def pull(self, ref: str) -> None:
        self.calls.append(f"pull {ref}")
        if ref not in self.pullable:
            raise ImageError(f"could not pull {ref}")
        self.images.add(ref)

    def build(self, request: BuildRequest) -> list[str]:
        self.builds.append(request)
        self.images.add(request.tag)
        return ["built"]

    def run(self, spec: RunSpec) -> ContainerInfo:
        self.calls.append(f"run {spec.name} {spec.image}")
        if self._find(spec.name) is not None:
            # as Podman and Docker do: a taken name is refused (HTTP 409), nothing is removed
            raise NameConflictError(f"the container name {spec.name!r} is already in use")
        info = ContainerInfo(
            id=f"id-{spec.name}-{len(self.calls)}",
            name=spec.name,
            image=spec.image,
            state="running",
            exit_code=None,
            labels=dict(spec.labels),
            started_at="2026-01-01T00:00:00Z",
            mounts=tuple(MountInfo(m.source, m.target, m.read_only) for m in spec.mounts),
        )
        if self.on_run is not None:
            info = self.on_run(info)
        self.containers[info.id] = info
        return info

    def _find(self, key: str) -> ContainerInfo | None:
        for info in self.containers.values():
            if key in (info.id, info.name):
                return info
        return None

    def inspect(self, name_or_id: str) -> ContainerInfo | None:
        return self._find(name_or_id)

    def stop(self, name_or_id: str, timeout_s: int = 10) -> None:
        info = self._find(name_or_id)
        if info is not None:
            self.containers[info.id] = replace(info, state="exited", exit_code=0)

    def remove(self, name_or_id: str) -> None:
        self.calls.append(f"remove {name_or_id}")
        info = self._find(name_or_id)
        if info is not None:
            del self.containers[info.id]

    def logs(self, name_or_id: str, *, follow: bool = False, tail: int | None = None
             ) -> Iterator[str]:
        lines = self.log_lines if tail is None else self.log_lines[-tail:]
        yield from lines

    def list(self, labels: dict[str, str]) -> list[ContainerInfo]:
        return [c for c in self.containers.values()
                if all(c.labels.get(k) == v for k, v in labels.items())]

    def close(self) -> None:
        pass
