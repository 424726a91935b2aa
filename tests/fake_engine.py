"""An in-memory Engine for fast lifecycle unit tests (the real engines run in tests/e2e)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from llmdeploy.core.engine_traits import PODMAN
from llmdeploy.core.registry import DEFAULT_ACCESS, RegistryAccess
from llmdeploy.core.run_spec import (
    BuildRequest,
    ContainerInfo,
    ImageInfo,
    MountInfo,
    PushResult,
    RunSpec,
)
from llmdeploy.errors import EngineError, ImageBuildError, ImageError, NameConflictError


@dataclass
class FakeEngine:
    """``images``: names present; ``image_labels`` / ``image_arch``: per name (default: no
    labels, amd64); ``pushed``: what ``push`` sent (ref -> access); ``registry``: what a
    "registry" holds (name -> image id); ``fail_push``: an error every push raises;
    ``fail_build``: tags whose build fails."""

    images: set[str] = field(default_factory=set)
    pullable: set[str] = field(default_factory=set)
    image_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    image_arch: dict[str, str] = field(default_factory=dict)
    pushed: dict[str, RegistryAccess] = field(default_factory=dict)
    pulled_with: dict[str, RegistryAccess] = field(default_factory=dict)
    registry: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)
    fail_push: ImageError | None = None
    fail_build: set[str] = field(default_factory=set)
    ids: dict[str, str] = field(default_factory=dict)  # name -> image id, when shared
    # the files of each build context, relative, as they were when the build started
    contexts: list[list[str]] = field(default_factory=list)
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

    def pull(self, ref: str, access: RegistryAccess = DEFAULT_ACCESS) -> None:
        self.calls.append(f"pull {ref}")
        self.pulled_with[ref] = access
        if ref not in self.pullable:
            raise ImageError(f"could not pull {ref}")
        self.images.add(ref)

    def build(self, request: BuildRequest) -> list[str]:
        from pathlib import Path

        root = Path(request.context_dir)
        self.contexts.append(sorted(str(p.relative_to(root)) for p in root.rglob("*")
                                    if p.is_file()))
        self.builds.append(request)
        self.calls.append(f"build {request.tag}")
        if request.tag in self.fail_build:
            raise ImageBuildError(f"build of {request.tag} failed", log_tail=["step 3 failed"])
        self.images.add(request.tag)
        self.ids.pop(request.tag, None)  # a new image under that name
        self.image_labels[request.tag] = dict(request.labels)
        arch = (request.platform or "linux/amd64").split("/")[1]
        self.image_arch[request.tag] = arch
        return ["built"]

    def image_info(self, ref: str) -> ImageInfo | None:
        if ref not in self.images and ref not in self.lists:
            by_id = [name for name in self.images if self._id(name) == ref]
            if not by_id:
                return None
            ref = by_id[0]
        if ref in self.lists:
            ref = self.lists[ref][0]
        return ImageInfo(
            id=self._id(ref),
            tags=(ref,),
            size_bytes=1000 + 10 * len(self.image_labels.get(ref, {})),
            labels=dict(self.image_labels.get(ref, {})),
            os="linux",
            architecture=self.image_arch.get(ref, "amd64"),
        )

    def _id(self, ref: str) -> str:
        return self.ids.get(ref) or f"id-{abs(hash(ref)) % 10**8}"

    def tag_image(self, image: str, ref: str) -> None:
        info = self.image_info(image)
        if info is None:
            raise ImageError(f"no such image {image}")
        source = next(n for n in self.images if self._id(n) == info.id)
        self.images.add(ref)
        self.ids[ref] = info.id  # one image, two names
        self.image_labels[ref] = dict(self.image_labels.get(source, {}))
        self.image_arch[ref] = self.image_arch.get(source, "amd64")
        self.calls.append(f"tag {image} {ref}")

    def untag_image(self, ref: str) -> None:
        self.calls.append(f"untag {ref}")
        self.images.discard(ref)

    def push(self, ref: str, access: RegistryAccess = DEFAULT_ACCESS) -> PushResult:
        self.calls.append(f"push {ref}")
        if self.fail_push is not None:
            raise self.fail_push
        if ref not in self.images:
            raise EngineError(f"no such image {ref}")
        self.pushed[ref] = access
        self.registry[ref] = self._id(ref)
        return PushResult(ref=ref, digest=f"sha256:{'ab' * 32}")

    def create_manifest_list(self, ref: str, images: list[str]) -> None:
        self.calls.append(f"manifest {ref}")
        self.lists[ref] = [next(n for n in self.images if self._id(n) == i or n == i)
                           for i in images]

    def push_manifest_list(self, ref: str, access: RegistryAccess = DEFAULT_ACCESS) -> PushResult:
        self.calls.append(f"push-list {ref}")
        if self.fail_push is not None:
            raise self.fail_push
        self.pushed[ref] = access
        self.registry[ref] = ",".join(self.lists[ref])
        return PushResult(ref=ref, digest=f"sha256:{'cd' * 32}")

    def remove_manifest_list(self, ref: str) -> None:
        self.calls.append(f"remove-list {ref}")
        self.lists.pop(ref, None)

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
