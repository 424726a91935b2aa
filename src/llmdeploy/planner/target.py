"""Where a deployment runs, as far as memory goes: a ``Target`` of GPUs or of CPU memory.

One rule sizes a GPU target: the memory of one GPU x the GPUs the deployment uses
(``ServingSpec.devices``: vLLM's ``tensor_parallel_size`` on GPUs, else 1). A CPU target is
host RAM, capped by a container's memory limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmdeploy.core.sizes import format_gib, to_bytes
from llmdeploy.planner.spec import Device, ServingSpec


@dataclass(frozen=True)
class Target:
    """The memory a deployment gets: per GPU x GPUs, or the RAM of a CPU container."""

    device: Device
    memory_bytes: int  # per device
    devices: int = 1
    description: str = ""
    host_memory_bytes: int | None = None  # host RAM as a process sees it (vLLM CPU default)

    @property
    def total_bytes(self) -> int:
        return self.memory_bytes * self.devices


def gpu_target(spec: ServingSpec, per_gpu_bytes: int) -> Target:
    """``spec.devices`` GPUs of ``per_gpu_bytes`` each."""
    devices = spec.devices
    return Target(
        "gpu", per_gpu_bytes, devices, description=f"{devices} x {format_gib(per_gpu_bytes)} GPU"
    )


def cpu_target(host_memory_bytes: int | None, memory_limit: str | None = None) -> Target:
    """Host RAM, or the container's ``memory_limit`` (``resources.memory``) when that is
    smaller or the host's figure is unknown. Raises ValueError when neither is known."""
    limit = to_bytes(memory_limit) if memory_limit else None
    if limit is not None and (host_memory_bytes is None or limit <= host_memory_bytes):
        return Target(
            "cpu",
            limit,
            description=f"container memory limit (resources.memory {memory_limit})",
            host_memory_bytes=host_memory_bytes,
        )
    if host_memory_bytes is None:
        raise ValueError("a CPU target needs host RAM or a memory limit")
    return Target(
        "cpu", host_memory_bytes, description="host RAM", host_memory_bytes=host_memory_bytes
    )


def target_for(
    spec: ServingSpec, available_bytes: int | None, *, memory_limit: str | None = None
) -> Target | None:
    """The memory target of ``spec`` on a machine that offers ``available_bytes``: the memory
    of ONE GPU for GPU specs, host RAM for CPU specs (which ``memory_limit`` caps).
    None when the machine's figure is unknown and nothing else bounds it."""
    if spec.device == "gpu":
        return None if available_bytes is None else gpu_target(spec, available_bytes)
    if available_bytes is None and not memory_limit:
        return None
    return cpu_target(available_bytes, memory_limit)
