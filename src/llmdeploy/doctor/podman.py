"""Podman: binary, version, API socket, rootless, OCI runtime, cgroups, storage, default ulimits."""

from __future__ import annotations

from typing import Any

from llmdeploy.constants import ENV_PODMAN_SOCKET, PODMAN_ROOTFUL_SOCKET
from llmdeploy.doctor.common import (
    ULIMITS_FIX,
    VERSION_TIMEOUT_S,
    as_dict,
    as_str,
    deep_check,
    parse_json_object,
    runtime_check,
    storage_check,
    version_from_output,
)
from llmdeploy.doctor.host import (
    CAP_SYS_RESOURCE,
    UNLIMITED,
    containers_conf_files,
    hard_limits,
    has_capability,
    has_systemd,
    podman_default_ulimits,
)
from llmdeploy.doctor.probe import HostProbe, unix_path
from llmdeploy.doctor.report import CgroupInfo, Check, EngineReport, Status

INFO_TIMEOUT_S = 8.0
SOCKET_TIMEOUT_S = 1.0
#: Podman (4.x, rootful) asks for nofile and nproc of 1048576 unless containers.conf says otherwise.
PODMAN_DEFAULT_RLIMIT = 1048576

INSTALL_FIX = "apt-get install podman runc (or run scripts/setup-host.sh)"


def configured_socket(probe: HostProbe) -> tuple[str, str] | None:
    """The socket the user pointed llmdeploy at (path, variable), as ``engines/podman_service``
    reads it: ``LLMDEPLOY_PODMAN_SOCKET``, else a unix ``CONTAINER_HOST``."""
    env = probe.env()
    override = env.get(ENV_PODMAN_SOCKET)
    if override:
        return unix_path(override) or override, ENV_PODMAN_SOCKET
    container_host = env.get("CONTAINER_HOST", "")
    if container_host.startswith("unix://"):
        return container_host[len("unix://") :], "CONTAINER_HOST"
    return None


def socket_candidates(probe: HostProbe) -> list[str]:
    """API sockets in the order llmdeploy tries them (see ``engines/podman_service.py``): a
    configured socket alone (llmdeploy never falls back from it), else the default one."""
    configured = configured_socket(probe)
    if configured is not None:
        return [configured[0]]
    env = probe.env()
    if probe.euid() == 0:
        return [PODMAN_ROOTFUL_SOCKET]
    runtime_dir = env.get("XDG_RUNTIME_DIR") or f"/run/user/{probe.euid()}"
    return [f"{runtime_dir}/podman/podman.sock"]


def check_podman(probe: HostProbe, cgroups: CgroupInfo, *, deep: bool = False) -> EngineReport:
    binary = probe.which("podman")
    if binary is None:
        return EngineReport(
            name="podman",
            installed=False,
            checks=(
                Check("podman", Status.WARN, "not installed (no podman on PATH)", INSTALL_FIX),
            ),
        )
    version_run = probe.run([binary, "--version"], timeout_s=VERSION_TIMEOUT_S)
    version = version_from_output(version_run.stdout) if version_run.ok else None
    sockets = socket_candidates(probe)
    listening = next(
        (path for path in sockets if probe.socket_accepts(path, timeout_s=SOCKET_TIMEOUT_S)), None
    )
    socket_row = _socket_check(probe, sockets, listening)

    info_run = probe.run([binary, "info", "--format", "json"], timeout_s=INFO_TIMEOUT_S)
    info = parse_json_object(info_run.stdout) if info_run.ok else None
    if info is None:
        reason = info_run.first_error_line() if not info_run.ok else "unreadable JSON"
        return EngineReport(
            name="podman",
            installed=True,
            binary=binary,
            version=version,
            api_address=listening or sockets[0],
            api_reachable=listening is not None,
            checks=(
                Check(
                    "podman",
                    Status.ERROR,
                    f"{version or 'unknown version'} at {binary}, "
                    f"but `podman info` failed: {reason}",
                    fix="run `podman info` to see the full error (see docs/host-setup.md)",
                ),
                socket_row,
            ),
        )

    host = as_dict(info.get("host"))
    store = as_dict(info.get("store"))
    security = as_dict(host.get("security"))
    runtime_info = as_dict(host.get("ociRuntime"))
    rootless = bool(security.get("rootless", probe.euid() != 0))
    version = str(as_dict(info.get("version")).get("Version") or version or "unknown")
    cgroup_version = str(host.get("cgroupVersion") or "") or None
    mode = "rootless" if rootless else "rootful"
    selinux = security.get("selinuxEnabled")
    selinux_enabled = selinux if isinstance(selinux, bool) else None

    checks: list[Check] = [
        Check("podman", Status.OK, f"{version} at {binary} ({mode})"),
        socket_row,
    ]
    if rootless:
        checks.append(_subid_check(host))
    runtime_row, runtime_works = runtime_check(
        "podman",
        as_str(runtime_info.get("name")),
        as_str(runtime_info.get("path")),
        version_from_output(str(runtime_info.get("version") or "")),
        cgroups,
        probe,
    )
    checks.append(runtime_row)
    checks.append(
        _cgroup_check(cgroup_version, as_str(host.get("cgroupManager")), cgroups, rootless)
    )
    checks.append(
        storage_check(
            "podman", as_str(store.get("graphDriverName")), as_str(store.get("graphRoot")), probe
        )
    )
    checks.append(ulimits_check(probe, rootless=rootless))
    usable = runtime_works is not False and not _configured_but_dead(probe, listening)
    if deep:
        result = deep_check("podman", binary, probe)
        checks.append(result.check)
        usable = usable and result.works is not False

    return EngineReport(
        name="podman",
        installed=True,
        binary=binary,
        version=version,
        api_address=listening or sockets[0],
        api_reachable=listening is not None,
        rootless=rootless,
        oci_runtime=as_str(runtime_info.get("name")),
        oci_runtime_works=runtime_works,
        cgroup_version=cgroup_version,
        storage_driver=as_str(store.get("graphDriverName")),
        selinux_enabled=selinux_enabled,
        selinux_detail=None
        if selinux_enabled is None
        else f"podman reports SELinux {'on' if selinux_enabled else 'off'} (selinuxEnabled)",
        usable=usable,
        checks=tuple(checks),
    )


def _configured_but_dead(probe: HostProbe, listening: str | None) -> bool:
    return listening is None and configured_socket(probe) is not None


def _socket_check(probe: HostProbe, sockets: list[str], listening: str | None) -> Check:
    configured = configured_socket(probe)
    if listening is not None:
        origin = f" (from ${configured[1]})" if configured else ""
        return Check("podman: api socket", Status.OK, f"listening at {listening}{origin}")
    if configured is not None:
        path, variable = configured
        return Check(
            "podman: api socket",
            Status.ERROR,
            f"nothing listens at {path} (from ${variable}); llmdeploy uses that socket and "
            "never falls back to the local Podman, so every Podman command fails",
            fix=f"start it (`podman system service --time=0 unix://{path} &`), or unset "
            f"{variable} to use the local Podman",
        )
    manual = f"`podman system service --time=0 unix://{sockets[0]} &`"
    if has_systemd(probe):
        user = "--user " if probe.euid() != 0 else ""
        fix = f"keep one listening: `systemctl {user}enable --now podman.socket` (or {manual})"
    else:
        fix = f"keep one listening: {manual}"
    return Check(
        "podman: api socket",
        Status.WARN,
        f"nothing listens at {', '.join(sockets)}; llmdeploy starts a transient "
        "`podman system service` for each command (slower start)",
        fix=fix,
    )


def _subid_check(host: dict[str, Any]) -> Check:
    mappings = as_dict(host.get("idMappings"))
    uidmap = mappings.get("uidmap")
    size = sum(int(as_dict(entry).get("size", 0)) for entry in uidmap or [])
    if isinstance(uidmap, list) and size > 1:
        return Check("podman: rootless", Status.OK, f"{size} subordinate UIDs mapped")
    return Check(
        "podman: rootless",
        Status.WARN,
        "no subordinate UIDs for this user: images that use several users fail to unpack",
        fix="usermod --add-subuids 100000-165535 --add-subgids 100000-165535 $USER, "
        "then `podman system migrate`",
    )


def _cgroup_check(
    engine_version: str | None, manager: str | None, cgroups: CgroupInfo, rootless: bool
) -> Check:
    reported = ", ".join(part for part in (engine_version, manager) if part) or "not reported"
    detail = f"host {cgroups.mode}; podman reports {reported}"
    if rootless and cgroups.mode in ("v1", "hybrid"):
        return Check(
            "podman: cgroups",
            Status.WARN,
            f"{detail}: rootless Podman cannot apply memory/CPU limits without cgroup v2",
            fix="boot with cgroup v2 (kernel argument systemd.unified_cgroup_hierarchy=1) "
            "or run Podman as root",
        )
    return Check("podman: cgroups", Status.OK, detail)


def ulimits_check(probe: HostProbe, *, rootless: bool) -> Check:
    """Rootful Podman asks for high nofile/nproc limits; without CAP_SYS_RESOURCE that fails."""
    component = "podman: default ulimits"
    if rootless:
        return Check(
            component, Status.OK, "rootless Podman caps its defaults at this user's limits"
        )
    files = containers_conf_files(probe, rootless=False)
    setting = podman_default_ulimits(probe, files)
    source = setting.source or "Podman's built-in defaults"
    wanted = {name: setting.limits.get(name, PODMAN_DEFAULT_RLIMIT) for name in ("nofile", "nproc")}
    shown = ", ".join(f"{name}={_show(value)}" for name, value in wanted.items())
    if has_capability(probe, CAP_SYS_RESOURCE):
        return Check(component, Status.OK, f"{shown} from {source} (CAP_SYS_RESOURCE held)")
    hard = hard_limits(probe)
    too_high = {
        name: value
        for name, value in wanted.items()
        if name in hard and hard[name] != UNLIMITED and (value == UNLIMITED or value > hard[name])
    }
    if not too_high:
        return Check(component, Status.OK, f"{shown} from {source} fit this host's hard limits")
    limits = ", ".join(f"{name} {_show(hard[name])}" for name in too_high)
    names = ", ".join(f"RLIMIT_{name.upper()}" for name in too_high)
    return Check(
        component,
        Status.WARN,
        f"{shown} from {source} exceed the hard limits here ({limits}) and this process may "
        f"not raise them: containers run without --ulimit fail (setrlimit {names}: "
        "Operation not permitted); llmdeploy's built-in profiles pass their own ulimits",
        fix=ULIMITS_FIX,
    )


def _show(value: int) -> str:
    return "unlimited" if value == UNLIMITED else str(value)
