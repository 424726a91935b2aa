"""Docker: CLI and daemon binaries, the daemon API (DOCKER_HOST), rootless, runtime, storage.

The daemon is asked over its HTTP API (``GET /info``), as the ``docker`` SDK llmdeploy uses does:
a hung dockerd costs at most ``API_TIMEOUT_S``.
"""

from __future__ import annotations

from dataclasses import replace

from llmdeploy.constants import DOCKER_DEFAULT_HOST, ENV_DOCKER_HOST
from llmdeploy.doctor.common import (
    VERSION_TIMEOUT_S,
    as_dict,
    as_str,
    deep_check,
    runtime_check,
    storage_check,
    version_from_output,
)
from llmdeploy.doctor.host import has_systemd
from llmdeploy.doctor.probe import HostProbe, ProbeError, unix_path
from llmdeploy.doctor.report import CgroupInfo, Check, EngineReport, Status

API_TIMEOUT_S = 2.0
SOCKET_TIMEOUT_S = 1.0

INSTALL_FIX = "apt-get install docker.io (or run scripts/setup-host.sh)"
START_SYSTEMD_FIX = "start the daemon: `systemctl start docker`"
START_MANUAL_FIX = (
    "start the daemon (no systemd here): `setsid dockerd --default-ulimit nofile=4096:4096 "
    "--default-ulimit nproc=4096:4096 >/var/log/dockerd.log 2>&1 &`"
)


def docker_address(probe: HostProbe) -> str:
    return probe.env().get(ENV_DOCKER_HOST) or DOCKER_DEFAULT_HOST


def check_docker(probe: HostProbe, cgroups: CgroupInfo, *, deep: bool = False) -> EngineReport:
    cli = probe.which("docker")
    daemon = probe.which("dockerd")
    address = docker_address(probe)
    checkable = unix_path(address) is not None or address.startswith("tcp://")
    accepts = checkable and probe.socket_accepts(address, timeout_s=SOCKET_TIMEOUT_S)
    binary = cli or daemon
    if binary is None and not accepts:
        return EngineReport(
            name="docker",
            installed=False,
            api_address=address,
            checks=(
                Check(
                    "docker",
                    Status.WARN,
                    "not installed (no docker or dockerd on PATH)",
                    INSTALL_FIX,
                ),
            ),
        )
    client_version = None
    if cli is not None:
        run = probe.run([cli, "--version"], timeout_s=VERSION_TIMEOUT_S)
        client_version = version_from_output(run.stdout) if run.ok else None
    where = (
        ", ".join(
            f"{label} at {path}" for label, path in (("CLI", cli), ("dockerd", daemon)) if path
        )
        or "no docker binaries on PATH"
    )
    not_usable = EngineReport(
        name="docker", installed=True, binary=binary, version=client_version, api_address=address
    )

    if not checkable:
        row = Check(
            "docker",
            Status.WARN,
            f"{where}; cannot check DOCKER_HOST={address} (only unix:// and tcp:// are checked)",
            fix="run `docker info` to check that daemon yourself",
        )
        return _with(not_usable, row)
    if not accepts:
        if probe.env().get(ENV_DOCKER_HOST):
            detail = f"{where}, but no daemon answers at {address} (from $DOCKER_HOST)"
            fix = f"point DOCKER_HOST at a running daemon, or unset it to use {DOCKER_DEFAULT_HOST}"
        elif daemon is not None:
            detail = f"installed ({where}) but no daemon answers at {address}"
            fix = START_SYSTEMD_FIX if has_systemd(probe) else START_MANUAL_FIX
        else:
            detail = f"{where}, but no daemon answers at {address} and dockerd is not installed"
            fix = f"{INSTALL_FIX}, or point DOCKER_HOST at a running daemon"
        return _with(not_usable, Check("docker", Status.WARN, detail, fix))

    try:
        info = as_dict(probe.http_get_json(address, "/info", timeout_s=API_TIMEOUT_S))
    except ProbeError as exc:
        row = Check(
            "docker",
            Status.ERROR,
            f"{where}; the daemon at {address} accepts connections but GET /info failed: {exc}",
            fix="restart dockerd (`systemctl restart docker`, or stop and start it by hand) "
            "and read its log (`journalctl -u docker`, or the file its output goes to)",
        )
        return _with(not_usable, row, api_reachable=True)

    version = as_str(info.get("ServerVersion")) or client_version or "unknown"
    security = [str(option) for option in info.get("SecurityOptions") or []]
    rootless = any("name=rootless" in option for option in security)
    # dockerd labels containers only when started with --selinux-enabled on an SELinux host
    labels = any(option.split(",")[0] == "name=selinux" for option in security)
    runtime = as_str(info.get("DefaultRuntime"))
    runtime_path = as_str(as_dict(as_dict(info.get("Runtimes")).get(runtime or "")).get("path"))
    if runtime_path and not runtime_path.startswith("/"):
        runtime_path = probe.which(runtime_path) or runtime_path
    cgroup_version = as_str(info.get("CgroupVersion"))

    checks: list[Check] = [
        Check(
            "docker",
            Status.OK,
            f"{version} ({where}; {'rootless' if rootless else 'rootful'})",
        ),
        Check("docker: api", Status.OK, f"daemon answers at {address}"),
    ]
    runtime_row, runtime_works = runtime_check(
        "docker", runtime, runtime_path, None, cgroups, probe
    )
    checks.append(runtime_row)
    manager = as_str(info.get("CgroupDriver"))
    reported = ", ".join(
        part for part in (f"v{cgroup_version}" if cgroup_version else None, manager) if part
    )
    checks.append(
        Check("docker: cgroups", Status.OK, f"host {cgroups.mode}; docker reports {reported}")
    )
    checks.append(
        storage_check(
            "docker", as_str(info.get("Driver")), as_str(info.get("DockerRootDir")), probe
        )
    )
    usable = runtime_works is not False
    if deep:
        if cli is None:
            checks.append(
                Check("docker: container run", Status.INFO, "skipped: the docker CLI is missing")
            )
        else:
            result = deep_check("docker", cli, probe)
            checks.append(result.check)
            usable = usable and result.works is not False

    return EngineReport(
        name="docker",
        installed=True,
        binary=binary,
        version=version,
        api_address=address,
        api_reachable=True,
        rootless=rootless,
        oci_runtime=runtime,
        oci_runtime_works=runtime_works,
        cgroup_version=cgroup_version,
        storage_driver=as_str(info.get("Driver")),
        selinux_enabled=labels,
        selinux_detail="docker labels containers (name=selinux in SecurityOptions)"
        if labels
        else "docker does not label containers (no name=selinux in SecurityOptions)",
        usable=usable,
        checks=tuple(checks),
    )


def _with(report: EngineReport, row: Check, *, api_reachable: bool = False) -> EngineReport:
    return replace(report, api_reachable=api_reachable, checks=(row,))
