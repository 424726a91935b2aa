"""Podman: binary, version, API socket, rootless, OCI runtime, cgroups, storage, default ulimits."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from llmdeploy.doctor.common import (
    ULIMITS_FIX,
    VERSION_TIMEOUT_S,
    EngineFacts,
    answered_report,
    as_dict,
    as_str,
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
from llmdeploy.doctor.probe import HostProbe
from llmdeploy.doctor.report import CgroupInfo, Check, EngineReport, Status
from llmdeploy.engines.addresses import ApiAddress, podman_addresses

INFO_TIMEOUT_S = 8.0
SOCKET_TIMEOUT_S = 1.0
#: Podman (4.x, rootful) asks for nofile and nproc of 1048576 unless containers.conf says otherwise.
PODMAN_DEFAULT_RLIMIT = 1048576

INSTALL_FIX = "apt-get install podman runc (or run scripts/setup-host.sh)"


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
    # the addresses the Podman engine tries, in its order (engines/addresses.py)
    addresses = podman_addresses(probe.env(), probe.euid())
    listening = next((address for address in addresses if _answers(probe, address)), None)
    socket_row = _socket_check(probe, addresses, listening)
    base = EngineReport(
        name="podman",
        installed=True,
        binary=binary,
        version=version,
        api_address=_shown(listening or addresses[0]),
        api_reachable=listening is not None,
    )

    info_run = probe.run([binary, "info", "--format", "json"], timeout_s=INFO_TIMEOUT_S)
    info = parse_json_object(info_run.stdout) if info_run.ok else None
    if info is None:
        reason = info_run.first_error_line() if not info_run.ok else "unreadable JSON"
        failed = Check(
            "podman",
            Status.ERROR,
            f"{version or 'unknown version'} at {binary}, but `podman info` failed: {reason}",
            fix="run `podman info` to see the full error (see docs/host-setup.md)",
        )
        return replace(base, checks=(failed, socket_row))

    facts = _facts(info, version, probe)
    mode = "rootless" if facts.rootless else "rootful"
    checks: list[Check] = [
        Check("podman", Status.OK, f"{facts.version} at {binary} ({mode})"),
        socket_row,
    ]
    if facts.rootless:
        checks.append(_subid_check(as_dict(info.get("host"))))
    runtime_row, runtime_works = runtime_check("podman", facts, cgroups, probe)
    checks += [
        runtime_row,
        _cgroup_check(facts, cgroups),
        storage_check("podman", facts, probe),
        ulimits_check(probe, rootless=facts.rootless),
    ]
    configured = addresses[0]
    return answered_report(
        base,
        facts,
        checks,
        probe,
        runtime_works=runtime_works,
        deep_cli=binary,
        deep=deep,
        # llmdeploy never falls back from a configured address: a dead one blocks Podman
        blocked=listening is None and configured.configured and _checkable(configured),
    )


def _facts(info: dict[str, Any], version: str | None, probe: HostProbe) -> EngineFacts:
    """``podman info --format json``, parsed."""
    host = as_dict(info.get("host"))
    store = as_dict(info.get("store"))
    security = as_dict(host.get("security"))
    runtime_info = as_dict(host.get("ociRuntime"))
    selinux = security.get("selinuxEnabled")
    selinux_enabled = selinux if isinstance(selinux, bool) else None
    return EngineFacts(
        version=str(as_dict(info.get("version")).get("Version") or version or "unknown"),
        rootless=bool(security.get("rootless", probe.euid() != 0)),
        runtime=as_str(runtime_info.get("name")),
        runtime_path=as_str(runtime_info.get("path")),
        runtime_version=version_from_output(str(runtime_info.get("version") or "")),
        cgroup_version=str(host.get("cgroupVersion") or "") or None,
        cgroup_manager=as_str(host.get("cgroupManager")),
        storage_driver=as_str(store.get("graphDriverName")),
        storage_root=as_str(store.get("graphRoot")),
        selinux_enabled=selinux_enabled,
        selinux_detail=None
        if selinux_enabled is None
        else f"podman reports SELinux {'on' if selinux_enabled else 'off'} (selinuxEnabled)",
    )


def _checkable(address: ApiAddress) -> bool:
    """Whether doctor can tell if the address answers (unix:// and tcp://, not ssh://)."""
    return address.socket_path is not None or address.url.startswith("tcp://")


def _answers(probe: HostProbe, address: ApiAddress) -> bool:
    return _checkable(address) and probe.socket_accepts(
        address.url, timeout_s=SOCKET_TIMEOUT_S
    )


def _shown(address: ApiAddress) -> str:
    """A unix socket as its path, any other address as its URL."""
    return address.socket_path or address.url


def _socket_check(
    probe: HostProbe, addresses: tuple[ApiAddress, ...], listening: ApiAddress | None
) -> Check:
    component = "podman: api socket"
    if listening is not None:
        return Check(component, Status.OK, f"listening at {_shown(listening)}{listening.origin}")
    first = addresses[0]
    if first.configured and not _checkable(first):
        return Check(
            component,
            Status.WARN,
            f"llmdeploy talks to {first.url}{first.origin}; doctor checks only unix:// and "
            "tcp:// addresses",
            fix=f"run `podman --url {first.url} info` to check that service yourself",
        )
    if first.configured:
        return Check(
            component,
            Status.ERROR,
            f"nothing listens at {_shown(first)}{first.origin}; llmdeploy uses that socket and "
            "never falls back to the local Podman, so every Podman command fails",
            fix=f"start it (`podman system service --time=0 {first.url} &`), or unset "
            f"{first.variable} to use the local Podman",
        )
    manual = f"`podman system service --time=0 {first.url} &`"
    if has_systemd(probe):
        user = "--user " if probe.euid() != 0 else ""
        fix = f"keep one listening: `systemctl {user}enable --now podman.socket` (or {manual})"
    else:
        fix = f"keep one listening: {manual}"
    return Check(
        component,
        Status.WARN,
        f"nothing listens at {', '.join(_shown(a) for a in addresses)}; llmdeploy starts a "
        "transient `podman system service` for each command (slower start)",
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


def _cgroup_check(facts: EngineFacts, cgroups: CgroupInfo) -> Check:
    reported = (
        ", ".join(part for part in (facts.cgroup_version, facts.cgroup_manager) if part)
        or "not reported"
    )
    detail = f"host {cgroups.mode}; podman reports {reported}"
    if facts.rootless and cgroups.mode in ("v1", "hybrid"):
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
