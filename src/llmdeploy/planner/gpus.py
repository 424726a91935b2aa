"""GPUs by name, for ``llmdeploy plan MODEL --gpu NAME``: what the vendor states and what a
server can use.

Two figures per GPU:

- ``stated_gb``: the memory the vendor's datasheet or product page states, in its units
  (decimal GB, rounded): H100 80 GB, H200 141 GB, and so on;
- ``reported_mib``: the total the driver reports (``nvidia-smi --query-gpu=memory.total``,
  ``rocm-smi --showmeminfo vram``), in MiB. It is the figure the planner's own probe reads on a
  CUDA host (``planner.host.detect_gpu_memory``), so ``--gpu h100`` plans exactly like a plain
  ``plan`` on an H100. vLLM then takes ``gpu_memory_utilization`` (0.9) of it.

Stated capacities, from the vendors:

- NVIDIA H100: 80 GB (SXM5 and PCIe), H100 datasheet, https://www.nvidia.com/en-us/data-center/h100/
- NVIDIA H200: 141 GB HBM3e, https://www.nvidia.com/en-us/data-center/h200/
- NVIDIA A100: 40 GB HBM2 / 80 GB HBM2e, "NVIDIA A100 Tensor Core GPU" datasheet,
  https://www.nvidia.com/en-us/data-center/a100/
- NVIDIA L4: 24 GB, https://www.nvidia.com/en-us/data-center/l4/
- NVIDIA L40S: 48 GB GDDR6 with ECC, https://www.nvidia.com/en-us/data-center/l40s/
- NVIDIA A10: 24 GB GDDR6, https://www.nvidia.com/en-us/data-center/products/a10-gpu/ ; the A10G
  is the A10 variant AWS offers in its G5 instances, 24 GB per GPU,
  https://aws.amazon.com/ec2/instance-types/g5/
- NVIDIA T4: 16 GB GDDR6, https://www.nvidia.com/en-us/data-center/tesla-t4/
- NVIDIA GeForce RTX 4090: 24 GB GDDR6X,
  https://www.nvidia.com/en-us/geforce/graphics-cards/40-series/rtx-4090/
- NVIDIA GeForce RTX 3090: 24 GB GDDR6X,
  https://www.nvidia.com/en-us/geforce/graphics-cards/30-series/rtx-3090-3090ti/
- AMD Instinct MI300X: 192 GB HBM3,
  https://www.amd.com/en/products/accelerators/instinct/mi300/mi300x.html

Reported totals (MiB): H200 143,771, H100 81,559, A100 80GB 81,920, A100 40GB 40,960, A10 /
A10G 23,028, L40S 46,068, L4 23,034 and T4 15,360, from ``nvidia-smi`` as tabulated by Modal
("Why does an NVIDIA H100 80GB card offer 85.52 GB?",
https://thundergolfer.com/blog/nvidia-gpu-memory-capacity; this project's H200 test machine
reports the same 143,771 MiB). RTX 4090 24,564 and RTX 3090 24,576: ``nvidia-smi`` on those
cards. MI300X: ``rocm-smi`` reports 205,822,885,888 bytes = 196,288 MiB.

Vendors round their figures differently: HBM parts report about their stated size in GiB (an
H100 "80 GB" reports 79.65 GiB, an A100 80GB exactly 80 GiB), GDDR parts about their stated
size in decimal GB (an L4 "24 GB" reports 22.49 GiB = 24.15 GB). CUDA itself can allocate a
little less than the driver's total (an H100: 81,079 MiB, ``docs/planner.md``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from llmdeploy.errors import UsageError

MiB = 1024**2
GiB = 1024**3

Vendor = Literal["nvidia", "amd"]


@dataclass(frozen=True)
class Gpu:
    """One GPU model: its name, vendor and memory (see the module docstring)."""

    key: str  # what --gpu takes: h100, rtx-4090, ...
    name: str  # the product's name, for people
    vendor: Vendor
    stated_gb: int  # the vendor's figure, decimal GB
    reported_mib: int  # the driver's total, MiB: what the planner uses
    aliases: tuple[str, ...] = ()

    @property
    def memory_bytes(self) -> int:
        """The memory a server can use, in bytes (the driver's total)."""
        return self.reported_mib * MiB

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "vendor": self.vendor,
            "stated_gb": self.stated_gb,
            "reported_mib": self.reported_mib,
            "memory_bytes": self.memory_bytes,
            "memory_gib": round(self.memory_bytes / GiB, 2),
        }


# fmt: off
GPUS: tuple[Gpu, ...] = (
    Gpu("h200",      "NVIDIA H200 141GB",        "nvidia", 141, 143_771),
    Gpu("h100",      "NVIDIA H100 80GB",         "nvidia",  80,  81_559,
        ("h100-80gb", "h100-sxm", "h100-pcie")),
    Gpu("a100-80gb", "NVIDIA A100 80GB",         "nvidia",  80,  81_920, ("a100-80g",)),
    Gpu("a100-40gb", "NVIDIA A100 40GB",         "nvidia",  40,  40_960, ("a100-40g",)),
    Gpu("l40s",      "NVIDIA L40S",              "nvidia",  48,  46_068),
    Gpu("l4",        "NVIDIA L4",                "nvidia",  24,  23_034),
    Gpu("a10g",      "NVIDIA A10G (AWS G5)",     "nvidia",  24,  23_028),
    Gpu("a10",       "NVIDIA A10",               "nvidia",  24,  23_028),
    Gpu("rtx-4090",  "NVIDIA GeForce RTX 4090",  "nvidia",  24,  24_564, ("4090",)),
    Gpu("rtx-3090",  "NVIDIA GeForce RTX 3090",  "nvidia",  24,  24_576, ("3090",)),
    Gpu("t4",        "NVIDIA T4",                "nvidia",  16,  15_360, ("tesla-t4",)),
    Gpu("mi300x",    "AMD Instinct MI300X",      "amd",    192, 196_288),
)
# fmt: on


def _squash(name: str) -> str:
    """``RTX 4090`` / ``rtx_4090`` / ``RTX-4090`` -> ``rtx4090``."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


_BY_NAME: dict[str, Gpu] = {
    _squash(alias): gpu for gpu in GPUS for alias in (gpu.key, *gpu.aliases)
}


def gpu_named(name: str) -> Gpu:
    """The GPU ``--gpu NAME`` names (case, spaces, ``-`` and ``_`` do not matter).

    UsageError (exit 2) for an unknown name, listing the known ones, or for a name that
    starts several (``a100``: the 40GB or the 80GB one)."""
    key = _squash(name)
    found = _BY_NAME.get(key)
    if found is not None:
        return found
    starting = sorted({gpu.key for alias, gpu in _BY_NAME.items() if key and alias.startswith(key)})
    if len(starting) == 1:
        return next(gpu for gpu in GPUS if gpu.key == starting[0])
    if starting:
        raise UsageError(
            f"--gpu {name!r} is ambiguous: {', '.join(starting)}",
            hint="name one of them, or give --gpu-memory",
        )
    raise UsageError(
        f"--gpu: no GPU named {name!r}",
        hint="known: "
        + ", ".join(gpu.key for gpu in GPUS)
        + "; for another GPU give its memory: --gpu-memory 24GiB",
    )
