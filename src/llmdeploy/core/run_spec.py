"""Engine-neutral descriptions of what to run and what is running."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from llmdeploy.core.labels import DeploymentLabels

GpuVendor = Literal["nvidia", "amd", "intel"]


@dataclass(frozen=True)
class PortMapping:
    host_ip: str
    host_port: int
    container_port: int
    protocol: str = "tcp"


@dataclass(frozen=True)
class BindMount:
    source: str
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class GpuRequest:
    vendor: GpuVendor
    count: int | None = None  # None = all


@dataclass(frozen=True)
class RunSpec:
    """One container to start: image, argv, environment, mounts, limits and hardening."""

    name: str
    image: str
    args: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    env: dict[str, str] = field(default_factory=dict)
    # container variable -> host variable it is read from at run time; values never rendered
    secret_env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    ports: tuple[PortMapping, ...] = ()
    mounts: tuple[BindMount, ...] = ()
    cap_drop: tuple[str, ...] = ("ALL",)
    cap_add: tuple[str, ...] = ()
    no_new_privileges: bool = True
    # --security-opt label=disable: SELinux does not confine the container, so bind mounts are
    # readable without relabelling their files (a no-op on hosts without SELinux)
    label_disable: bool = False
    read_only_rootfs: bool = False
    user: str | None = None
    gpu: GpuRequest | None = None
    cpus: float | None = None
    memory: str | None = None
    shm_size: str | None = None
    ipc_mode: str | None = None  # "host" for servers that need large shared memory
    pids_limit: int | None = None
    ulimits: dict[str, str] = field(default_factory=dict)
    # "host": the container shares the host's network namespace (publishes no ports; a
    # process in it reaches servers published on the host's 127.0.0.1); None: the engine's
    # default network with ``ports`` published
    network_mode: str | None = None

    def as_record(self) -> dict[str, object]:
        """The spec as plain data (``dataclasses.asdict``) for ``run-spec.json`` and the spec
        hash; ``network_mode`` appears only when set, so specs made before it existed keep
        their hash (a running deployment is not replaced by an upgrade)."""
        record = asdict(self)
        if record["network_mode"] is None:
            del record["network_mode"]
        return record


@dataclass(frozen=True)
class MountInfo:
    source: str
    target: str
    read_only: bool


@dataclass(frozen=True)
class ContainerInfo:
    id: str
    name: str
    image: str
    state: str  # created | running | exited | ...
    exit_code: int | None
    labels: dict[str, str]
    started_at: str | None
    mounts: tuple[MountInfo, ...] = ()
    engine: str = ""

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def deployment_labels(self) -> DeploymentLabels | None:
        """llmdeploy's record on this container; None when llmdeploy does not manage it."""
        return DeploymentLabels.from_labels(self.labels, name=self.name)


@dataclass(frozen=True)
class BuildRequest:
    """One image build. ``platform``: ``os/arch`` to build for (None: the engine's own); a
    foreign one runs the build's RUN steps under emulation (qemu user mode)."""

    context_dir: str
    containerfile: str  # path inside context_dir
    tag: str
    build_args: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    platform: str | None = None


@dataclass(frozen=True)
class ImageInfo:
    """An image in an engine's store: its ID, tags, size in bytes (uncompressed, as the
    engine reports it), labels, platform, and ``repo_digests`` (``name@sha256:…``)."""

    id: str
    tags: tuple[str, ...]
    size_bytes: int
    labels: dict[str, str]
    os: str
    architecture: str
    repo_digests: tuple[str, ...] = ()
    # the digest of the image's own manifest in local storage (Podman), "" when unknown
    local_digest: str = ""

    @property
    def platform(self) -> str:
        return f"{self.os}/{self.architecture}"


@dataclass(frozen=True)
class PushResult:
    """What a push left in the registry: the reference and the digest of the manifest (or
    manifest list) it wrote there, when the engine tells (None otherwise)."""

    ref: str
    digest: str | None
