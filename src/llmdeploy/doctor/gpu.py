"""GPUs: NVIDIA (nvidia-smi, CDI specs, nvidia-ctk) and AMD (/dev/kfd, /dev/dri)."""

from __future__ import annotations

import re

from llmdeploy.doctor.probe import HostProbe
from llmdeploy.doctor.report import CdiSpec, Check, GpuReport, NvidiaGpu, Status

NVIDIA_SMI_TIMEOUT_S = 5.0
CDI_DIRS = ("/etc/cdi", "/var/run/cdi")
CDI_SUFFIXES = (".yaml", ".yml", ".json")
NVIDIA_CDI_KIND = "nvidia.com/gpu"
CDI_GENERATE = "nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml"
TOOLKIT_INSTALL = (
    "install the NVIDIA Container Toolkit (package nvidia-container-toolkit from NVIDIA's apt "
    "repository)"
)

_KIND = re.compile(r"""["']?kind["']?\s*:\s*["']?([A-Za-z0-9._-]+/[A-Za-z0-9._-]+)""")


def check_gpus(probe: HostProbe) -> GpuReport:
    smi = probe.which("nvidia-smi")
    ctk = probe.which("nvidia-ctk")
    specs = tuple(_cdi_specs(probe))
    kfd = probe.exists("/dev/kfd")
    dri = tuple(probe.list_dir("/dev/dri"))

    gpus: tuple[NvidiaGpu, ...] = ()
    checks: list[Check] = []
    nvidia_row, gpus = _nvidia_check(probe, smi)
    checks.append(nvidia_row)
    nvidia_present = bool(gpus) or probe.exists("/dev/nvidia0")
    checks.append(_cdi_check(specs, nvidia_present, ctk))
    checks.append(_toolkit_check(ctk, nvidia_present))
    checks.append(_amd_check(probe, kfd, dri))
    return GpuReport(
        nvidia_smi=smi,
        nvidia_gpus=gpus,
        nvidia_ctk=ctk,
        cdi_specs=specs,
        amd_kfd=kfd,
        dri_devices=dri,
        checks=tuple(checks),
    )


def parse_nvidia_smi(text: str) -> tuple[NvidiaGpu, ...]:
    """``name, memory.total, driver_version`` CSV lines (no header) -> GPUs."""
    gpus = []
    for line in text.splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) >= 3 and fields[0]:
            gpus.append(NvidiaGpu(fields[0], fields[1], fields[2]))
    return tuple(gpus)


def _nvidia_check(probe: HostProbe, smi: str | None) -> tuple[Check, tuple[NvidiaGpu, ...]]:
    component = "gpu: nvidia"
    if smi is None:
        if probe.exists("/dev/nvidia0"):
            return (
                Check(
                    component,
                    Status.WARN,
                    "/dev/nvidia0 exists but nvidia-smi is not on PATH",
                    fix="install the NVIDIA driver utilities (nvidia-smi, e.g. package "
                    "nvidia-utils or nvidia-smi)",
                ),
                (),
            )
        return Check(component, Status.INFO, "no nvidia-smi: no NVIDIA GPU in use"), ()
    run = probe.run(
        [smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
        timeout_s=NVIDIA_SMI_TIMEOUT_S,
    )
    if not run.ok:
        return (
            Check(
                component,
                Status.ERROR,
                f"nvidia-smi failed: {run.first_error_line()}",
                fix="load or reinstall the NVIDIA driver until `nvidia-smi` lists the GPU "
                "(reboot after a driver upgrade)",
            ),
            (),
        )
    gpus = parse_nvidia_smi(run.stdout)
    if not gpus:
        return Check(component, Status.INFO, "nvidia-smi lists no GPU"), ()
    listed = "; ".join(f"{gpu.name} ({gpu.memory_total})" for gpu in gpus)
    return (
        Check(
            component, Status.OK, f"{len(gpus)} GPU(s): {listed}; driver {gpus[0].driver_version}"
        ),
        gpus,
    )


def _cdi_specs(probe: HostProbe) -> list[CdiSpec]:
    specs = []
    for directory in CDI_DIRS:
        for name in probe.list_dir(directory):
            if not name.endswith(CDI_SUFFIXES):
                continue
            path = f"{directory}/{name}"
            text = probe.read_text(path) or ""
            kinds = tuple(dict.fromkeys(_KIND.findall(text)))
            specs.append(CdiSpec(path, kinds))
    return specs


def _cdi_check(specs: tuple[CdiSpec, ...], nvidia_present: bool, ctk: str | None) -> Check:
    component = "gpu: cdi"
    nvidia_specs = [spec.path for spec in specs if spec.names_nvidia_gpu]
    if nvidia_specs:
        return Check(component, Status.OK, f"{NVIDIA_CDI_KIND} in {', '.join(nvidia_specs)}")
    found = ", ".join(f"{spec.path} ({', '.join(spec.kinds) or 'no kind'})" for spec in specs)
    if nvidia_present:
        fix = f"run `{CDI_GENERATE}`" if ctk else f"{TOOLKIT_INSTALL}, then run `{CDI_GENERATE}`"
        return Check(
            component,
            Status.WARN,
            f"no CDI spec names {NVIDIA_CDI_KIND} under {' or '.join(CDI_DIRS)}"
            + (f" (found: {found})" if found else "")
            + ": Podman cannot pass the GPU (--device nvidia.com/gpu=all)",
            fix=fix,
        )
    return Check(component, Status.INFO, f"specs: {found}" if found else "no CDI specs")


def _toolkit_check(ctk: str | None, nvidia_present: bool) -> Check:
    component = "gpu: nvidia-ctk"
    if ctk is not None:
        return Check(component, Status.OK, f"NVIDIA Container Toolkit at {ctk}")
    if nvidia_present:
        return Check(
            component,
            Status.WARN,
            "NVIDIA GPU present but nvidia-ctk is missing: "
            "Docker --gpus and CDI generation need it",
            fix=f"{TOOLKIT_INSTALL}, then `nvidia-ctk runtime configure --runtime=docker`",
        )
    return Check(component, Status.INFO, "not installed (only needed for NVIDIA GPUs)")


def _amd_check(probe: HostProbe, kfd: bool, dri: tuple[str, ...]) -> Check:
    component = "gpu: amd"
    render_nodes = [name for name in dri if name.startswith("renderD")]
    if not kfd:
        if dri:
            return Check(
                component,
                Status.INFO,
                f"/dev/dri ({', '.join(dri)}) but no /dev/kfd: no ROCm compute device",
            )
        return Check(component, Status.INFO, "no /dev/kfd: no AMD ROCm GPU")
    if not render_nodes:
        return Check(
            component,
            Status.WARN,
            "/dev/kfd exists but /dev/dri has no render node",
            fix="load the amdgpu kernel driver (modprobe amdgpu) and check `dmesg | grep amdgpu`",
        )
    detail = f"ROCm devices /dev/kfd and /dev/dri/{', /dev/dri/'.join(render_nodes)}"
    if not probe.is_writable("/dev/kfd"):
        return Check(
            component,
            Status.WARN,
            f"{detail}, but this user cannot open /dev/kfd",
            fix="usermod -aG render,video $USER (then log in again)",
        )
    return Check(component, Status.OK, detail)
