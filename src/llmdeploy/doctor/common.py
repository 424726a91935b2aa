"""Checks both engines share: OCI runtime vs cgroup mode, storage driver, the ``--deep`` run."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from llmdeploy.constants import ENV_BASE_IMAGE
from llmdeploy.core.sizes import format_bytes
from llmdeploy.doctor.probe import HostProbe
from llmdeploy.doctor.report import CgroupInfo, Check, EngineName, EngineReport, Status

DEEP_LIST_TIMEOUT_S = 10.0
DEEP_RUN_TIMEOUT_S = 60.0
VERSION_TIMEOUT_S = 3.0

#: The image ``--deep`` prefers; any other local tagged image will do.
TEST_BASE_IMAGE = "localhost/llmdeploy-test-base:bookworm"
#: Limits the built-in profiles pass with ``--ulimit``; ``--deep`` retries with them.
MODEST_ULIMITS = ("nofile=4096:4096", "nproc=4096:4096")

HOST_SETUP_DOC = "docs/host-setup.md"

_RUNC_FIX: dict[EngineName, str] = {
    "podman": (
        'use runc: set runtime = "runc" under [engine] in /etc/containers/containers.conf '
        f"(or run scripts/setup-host.sh; see {HOST_SETUP_DOC})"
    ),
    "docker": (
        'use runc: set "default-runtime": "runc" in /etc/docker/daemon.json, then restart dockerd'
    ),
}

ULIMITS_FIX = (
    'set default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"] under [containers] in '
    f"/etc/containers/containers.conf (or run scripts/setup-host.sh; see {HOST_SETUP_DOC})"
)

_STORAGE_FIX: dict[EngineName, str] = {
    "podman": (
        'set driver = "overlay" in /etc/containers/storage.conf (rootless on old kernels: '
        "apt-get install fuse-overlayfs), then `podman system reset`"
    ),
    "docker": 'set "storage-driver": "overlay2" in /etc/docker/daemon.json, then restart dockerd',
}


@dataclass(frozen=True)
class EngineFacts:
    """What an engine that answered says about itself (``podman info``, Docker's ``GET /info``),
    parsed once; the checks and the report read these, never the raw answer."""

    version: str
    rootless: bool
    runtime: str | None = None
    runtime_path: str | None = None
    runtime_version: str | None = None
    cgroup_version: str | None = None
    cgroup_manager: str | None = None
    storage_driver: str | None = None
    storage_root: str | None = None
    selinux_enabled: bool | None = None
    selinux_detail: str | None = None


def answered_report(
    base: EngineReport,
    facts: EngineFacts,
    checks: list[Check],
    probe: HostProbe,
    *,
    runtime_works: bool | None,
    deep_cli: str | None,
    deep: bool,
    blocked: bool = False,
) -> EngineReport:
    """The report of an engine that answered: ``base`` (binary, address) with its facts.

    Usable unless its OCI runtime cannot start containers, ``blocked`` says so (a configured
    API address that is dead), or the ``--deep`` run (with ``deep_cli``) failed.
    """
    rows = list(checks)
    usable = runtime_works is not False and not blocked
    if deep:
        result = deep_check(base.name, deep_cli, probe)
        rows.append(result.check)
        usable = usable and result.works is not False
    return replace(
        base,
        version=facts.version,
        rootless=facts.rootless,
        oci_runtime=facts.runtime,
        oci_runtime_works=runtime_works,
        cgroup_version=facts.cgroup_version,
        storage_driver=facts.storage_driver,
        selinux_enabled=facts.selinux_enabled,
        selinux_detail=facts.selinux_detail,
        usable=usable,
        checks=tuple(rows),
    )


def version_from_output(text: str) -> str | None:
    """``podman version 4.3.1`` / ``Docker version 28.2.2, build e6534b4`` -> the version."""
    words = text.replace(",", " ").split()
    for index, word in enumerate(words):
        if word.lower() == "version" and index + 1 < len(words):
            return words[index + 1]
    return None


def runtime_check(
    engine: EngineName, facts: EngineFacts, cgroups: CgroupInfo, probe: HostProbe
) -> tuple[Check, bool | None]:
    """Whether the engine's OCI runtime can start containers here; (row, works)."""
    component = f"{engine}: oci runtime"
    runtime, runtime_path = facts.runtime, facts.runtime_path
    runtime_version = facts.runtime_version
    if not runtime:
        return Check(component, Status.WARN, "the engine did not report its OCI runtime"), None
    described = " ".join(part for part in (runtime, runtime_version) if part)
    if runtime_path:
        described += f" at {runtime_path}"
    if runtime == "crun" and cgroups.mode == "hybrid":
        return (
            Check(
                component,
                Status.ERROR,
                f"{described}: crun refuses hybrid cgroups "
                "('cgroups in hybrid mode not supported'); every container fails to start",
                fix=_RUNC_FIX[engine] + _runc_install_note(probe),
            ),
            False,
        )
    if runtime_path and runtime_path.startswith("/") and not probe.exists(runtime_path):
        return (
            Check(
                component,
                Status.ERROR,
                f"{described}: the runtime binary is missing",
                fix=f"apt-get install {runtime}",
            ),
            False,
        )
    return Check(component, Status.OK, described), True


def _runc_install_note(probe: HostProbe) -> str:
    return "" if probe.which("runc") else " (runc is not installed: apt-get install runc)"


def storage_check(engine: EngineName, facts: EngineFacts, probe: HostProbe) -> Check:
    component = f"{engine}: storage"
    driver, root = facts.storage_driver, facts.storage_root
    if not driver:
        return Check(component, Status.WARN, "the engine did not report its storage driver")
    detail = driver
    if root:
        free = probe.disk_free(root) if probe.exists(root) else None
        detail += f" at {root}" + (f" ({format_bytes(free)} free)" if free is not None else "")
    if driver == "vfs":
        return Check(
            component,
            Status.WARN,
            f"{detail}: vfs copies every image layer (slow builds, several times the disk)",
            fix=_STORAGE_FIX[engine],
        )
    return Check(component, Status.OK, detail)


@dataclass(frozen=True)
class DeepResult:
    check: Check
    works: bool | None  # None: not tried (no local image)


def deep_check(engine: EngineName, cli: str | None, probe: HostProbe) -> DeepResult:
    """Start a throwaway container (``true``, no network) from a local image, as a user would."""
    component = f"{engine}: container run"
    if cli is None:
        return DeepResult(
            Check(component, Status.INFO, f"skipped: the {engine} CLI is missing"), None
        )
    listing = probe.run(
        [cli, "images", "--format", "{{.Repository}}:{{.Tag}}"], timeout_s=DEEP_LIST_TIMEOUT_S
    )
    if not listing.ok:
        return DeepResult(
            Check(
                component,
                Status.ERROR,
                f"`{engine} images` failed: {listing.first_error_line()}",
                fix=f"run `{engine} images` to see the full error",
            ),
            False,
        )
    image = choose_image(listing.stdout.splitlines(), probe.env().get(ENV_BASE_IMAGE))
    if image is None:
        return DeepResult(
            Check(component, Status.INFO, "skipped: no local image to start (nothing is pulled)"),
            None,
        )
    base = [cli, "run", "--rm", "--network", "none", "--entrypoint", "true"]
    first = probe.run([*base, image], timeout_s=DEEP_RUN_TIMEOUT_S)
    if first.ok:
        return DeepResult(Check(component, Status.OK, f"started and removed {image}"), True)
    reason = first.first_error_line()
    if "rlimit" in reason.lower():
        ulimit_args = [arg for limit in MODEST_ULIMITS for arg in ("--ulimit", limit)]
        second = probe.run([*base, *ulimit_args, image], timeout_s=DEEP_RUN_TIMEOUT_S)
        if second.ok:
            return DeepResult(
                Check(
                    component,
                    Status.WARN,
                    f"{image} fails with the default ulimits ({reason}) and starts with "
                    f"--ulimit {' --ulimit '.join(MODEST_ULIMITS)} (built-in profiles set these)",
                    fix=ULIMITS_FIX if engine == "podman" else _DOCKER_ULIMITS_FIX,
                ),
                True,
            )
        reason = second.first_error_line()
    if _lacks_true(reason):
        return DeepResult(
            Check(
                component,
                Status.WARN,
                f"inconclusive: {image} has no `true` program ({reason})",
                fix=f"import a base image with coreutils (see {HOST_SETUP_DOC}), then rerun --deep",
            ),
            None,
        )
    return DeepResult(
        Check(
            component,
            Status.ERROR,
            f"could not start {image}: {reason}",
            fix=_fix_for_run_error(engine, reason, cli, image),
        ),
        False,
    )


_DOCKER_ULIMITS_FIX = (
    "start dockerd with --default-ulimit nofile=4096:4096 --default-ulimit nproc=4096:4096 "
    '(or "default-ulimits" in /etc/docker/daemon.json)'
)


def choose_image(lines: list[str], preferred: str | None) -> str | None:
    images = [line.strip() for line in lines if line.strip() and "<none>" not in line]
    for wanted in (preferred, TEST_BASE_IMAGE):
        if wanted and wanted in images:
            return wanted
    return images[0] if images else None


def _lacks_true(reason: str) -> bool:
    lowered = reason.lower()
    return "executable file not found" in lowered or (
        "true" in lowered and "no such file or directory" in lowered
    )


def _fix_for_run_error(engine: EngineName, reason: str, cli: str, image: str) -> str:
    lowered = reason.lower()
    if "hybrid mode" in lowered:
        return _RUNC_FIX[engine]
    if "rlimit" in lowered:
        return ULIMITS_FIX if engine == "podman" else _DOCKER_ULIMITS_FIX
    return f"run `{cli} run --rm {image} true` to see the full error"


def parse_json_object(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_str(value: object) -> str | None:
    return str(value) if value else None
