"""How engines differ, as data: CLI name, GPU requests and how the SDK spells security options."""

from __future__ import annotations

from dataclasses import dataclass

from llmdeploy.core.run_spec import GpuRequest

# Device nodes passed for GPUs that are not requested through a device plugin or CDI: AMD
# ROCm (kfd + the render nodes) and Intel (the render nodes); the container joins `video`.
DEVICE_PATHS: dict[str, tuple[str, ...]] = {
    "amd": ("/dev/kfd", "/dev/dri"),
    "intel": ("/dev/dri",),
}
AMD_DEVICES = DEVICE_PATHS["amd"]


@dataclass(frozen=True)
class EngineTraits:
    name: str  # podman | docker
    cli: str  # the command line tool
    nvidia_style: str  # "cdi" (Podman: --device nvidia.com/gpu=all) | "gpus" (Docker: --gpus)
    # ``--security-opt label=disable`` in the SDK's ``security_opt``: Docker's API takes the CLI
    # form; podman-py sends ``security_opt`` as libpod's ``selinux_opts``, which take the bare
    # option (``podman run`` strips the ``label=`` itself)
    sdk_label_disable: str
    build_env: tuple[tuple[str, str], ...] = ()  # env for the equivalent CLI build
    # whether the engine's API makes manifest lists (multi-platform images): libpod has
    # /manifests endpoints; Docker Engine's API has none (docker buildx and `docker manifest`
    # are client-side tools)
    manifest_lists: bool = False
    # whether its builds take a platform other than the host's (RUN steps under qemu user
    # emulation): Podman/Buildah do; Docker Engine's classic builder (no buildx here) does not
    foreign_builds: bool = False

    def gpu_cli_flags(self, gpu: GpuRequest) -> list[str]:
        if gpu.vendor != "nvidia":
            flags: list[str] = []
            for device in DEVICE_PATHS[gpu.vendor]:
                flags += ["--device", device]
            return [*flags, "--group-add", "video"]
        if self.nvidia_style == "cdi":
            return [flag for device in self.cdi_devices(gpu) for flag in ("--device", device)]
        return ["--gpus", "all" if gpu.count is None else str(gpu.count)]

    def cdi_devices(self, gpu: GpuRequest) -> list[str]:
        if gpu.count is None:
            return ["nvidia.com/gpu=all"]
        return [f"nvidia.com/gpu={i}" for i in range(gpu.count)]


PODMAN = EngineTraits(
    name="podman",
    cli="podman",
    nvidia_style="cdi",
    sdk_label_disable="disable",
    manifest_lists=True,
    foreign_builds=True,
)
DOCKER = EngineTraits(
    name="docker",
    cli="docker",
    nvidia_style="gpus",
    sdk_label_disable="label=disable",
    build_env=(("DOCKER_BUILDKIT", "0"),),
)


def traits_for(engine: str) -> EngineTraits:
    """The traits a rendered command line uses; ``auto`` renders for Podman, tried first."""
    return DOCKER if engine == "docker" else PODMAN
