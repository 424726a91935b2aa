"""What the planner reads from this host: the model on disk, host RAM, GPU memory.

The rest of the planner is pure; this module does the I/O for ``plan`` and ``up``. ``Host``
bundles the probes so that ``plan_request`` can be given others (tests, another machine).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llmdeploy.core.model_info import ModelInfo
from llmdeploy.core.model_ref import ModelRef

NVIDIA_SMI_TIMEOUT_S = 5.0


def model_info_for_ref(ref: ModelRef | str) -> tuple[ModelInfo, str]:
    """The model's ModelInfo: inspected when it is on disk, else what the reference tells."""
    from llmdeploy.core.model_ref import local_path, parse_ref
    from llmdeploy.errors import ModelError
    from llmdeploy.models.store import ModelStore
    from llmdeploy.paths import model_store_dir
    from llmdeploy.planner import info_from_reference

    path: Path | None = None
    why = "not in the model store"
    try:
        directory, filename = ModelStore(model_store_dir()).locate(ref)
        stored = directory / filename if filename else directory
        if stored.exists():
            path = stored
    except ModelError as exc:
        why = exc.message
    if path is None:
        try:  # file:// and pkg:// name a local file that `up` would place in the store
            path = local_path(parse_ref(ref))
        except ModelError as exc:
            why = exc.message
    if path is None:
        return info_from_reference(ref), f"not downloaded ({why}); shape from the reference"
    try:
        from llmdeploy.models.inspect import inspect_cached as inspect_path
    except ImportError:
        sizes = file_sizes(path)
        return info_from_reference(ref, sizes), f"{path} (shape from its name)"
    try:
        return inspect_path(path), f"inspected {path}"
    except ModelError as exc:
        sizes = file_sizes(path)
        reason = f"{path}: metadata unreadable ({exc.message}); shape from its name"
        return info_from_reference(ref, sizes), reason


def file_sizes(path: Path) -> dict[str, int]:
    if path.is_file():  # every part of a split GGUF found beside it, else the file itself
        from llmdeploy.core.gguf_split import part_names

        parts = [path.with_name(name) for name in part_names(path.name)]
        return {p.name: p.stat().st_size for p in parts if p.is_file()} or {
            path.name: path.stat().st_size
        }
    return {
        str(item.relative_to(path)): item.stat().st_size
        for item in sorted(path.rglob("*"))
        if item.is_file()
    }


def host_memory_bytes() -> int:
    """Physical memory of this host."""
    import os

    return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))


def detect_gpu_memory() -> tuple[int | None, str]:
    """Memory of the first NVIDIA GPU from nvidia-smi, in bytes."""
    import shutil
    import subprocess

    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None, "no nvidia-smi on PATH"
    try:
        run = subprocess.run(
            [smi, "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=NVIDIA_SMI_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"nvidia-smi failed: {exc}"
    first = run.stdout.strip().splitlines()[0].strip() if run.stdout.strip() else ""
    if run.returncode != 0 or not first.isdigit():
        return None, f"nvidia-smi answered {run.returncode}: {run.stderr.strip() or first}"
    return int(first) * 1024**2, "nvidia-smi"


def gpu_memory(accelerator: str) -> tuple[int | None, str]:
    """Memory of one GPU of the profile's ``accelerator`` in bytes (None when unknown), and
    where the figure comes from or why it is missing. CUDA: nvidia-smi; ROCm: no probe yet."""
    if accelerator == "cuda":
        return detect_gpu_memory()
    return None, f"no memory probe for {accelerator} GPUs yet"


@dataclass(frozen=True)
class Host:
    """The probes ``plan_request`` calls, each only when the plan needs its figure."""

    memory_bytes: Callable[[], int] = host_memory_bytes
    gpu_memory: Callable[[str], tuple[int | None, str]] = gpu_memory  # by accelerator
    model_info: Callable[[ModelRef | str], tuple[ModelInfo, str]] = model_info_for_ref
