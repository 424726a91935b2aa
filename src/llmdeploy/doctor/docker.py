"""Docker: CLI and daemon binaries, the daemon API (DOCKER_HOST), rootless, runtime, storage.

The daemon is asked over its HTTP API (``GET /info``), as the ``docker`` SDK llmdeploy uses does:
a hung dockerd costs at most ``API_TIMEOUT_S``. The address is the one the Docker engine adapter
uses (``engines/addresses.docker_address``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from llmdeploy.constants import DOCKER_DEFAULT_HOST, ENV_DOCKER_HOST
from llmdeploy.doctor.common import (
    VERSION_TIMEOUT_S,
    EngineFacts,
    answered_report,
    as_dict,
    as_str,
    runtime_check,
    storage_check,
    version_from_output,
)
from llmdeploy.doctor.host import has_systemd
from llmdeploy.doctor.probe import HostProbe, ProbeError
from llmdeploy.doctor.report import CgroupInfo, Check, EngineReport, Status
from llmdeploy.engines.addresses import docker_address

API_TIMEOUT_S = 2.0
SOCKET_TIMEOUT_S = 1.0

INSTALL_FIX = "apt-get install docker.io (or run scripts/setup-host.sh)"
START_SYSTEMD_FIX = "start the daemon: `systemctl start docker`"
START_MANUAL_FIX = (
    "start the daemon (no systemd here): `setsid dockerd --default-ulimit nofile=4096:4096 "
    "--default-ulimit nproc=4096:4096 >/var/log/dockerd.log 2>&1 &`"
)


def check_docker(probe: HostProbe, cgroups: CgroupInfo, *, deep: bool = False) -> EngineReport:
    cli = probe.which("docker")
    daemon = probe.which("dockerd")
    api = docker_address(probe.env())
    address = api.url
    checkable = api.socket_path is not None or address.startswith("tcp://")
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
            f"{where}; cannot check {ENV_DOCKER_HOST}={address} "
            "(only unix:// and tcp:// are checked)",
            fix="run `docker info` to check that daemon yourself",
        )
        return _with(not_usable, row)
    if not accepts:
        if api.configured:
            detail = f"{where}, but no daemon answers at {address}{api.origin}"
            fix = (
                f"point {ENV_DOCKER_HOST} at a running daemon, "
                f"or unset it to use {DOCKER_DEFAULT_HOST}"
            )
        elif daemon is not None:
            detail = f"installed ({where}) but no daemon answers at {address}"
            fix = START_SYSTEMD_FIX if has_systemd(probe) else START_MANUAL_FIX
        else:
            detail = f"{where}, but no daemon answers at {address} and dockerd is not installed"
            fix = f"{INSTALL_FIX}, or point {ENV_DOCKER_HOST} at a running daemon"
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

    facts = _facts(info, client_version, probe)
    checks: list[Check] = [
        Check(
            "docker",
            Status.OK,
            f"{facts.version} ({where}; {'rootless' if facts.rootless else 'rootful'})",
        ),
        Check("docker: api", Status.OK, f"daemon answers at {address}"),
    ]
    runtime_row, runtime_works = runtime_check("docker", facts, cgroups, probe)
    reported = ", ".join(
        part
        for part in (
            f"v{facts.cgroup_version}" if facts.cgroup_version else None,
            facts.cgroup_manager,
        )
        if part
    )
    checks += [
        runtime_row,
        Check("docker: cgroups", Status.OK, f"host {cgroups.mode}; docker reports {reported}"),
        storage_check("docker", facts, probe),
    ]
    base = replace(not_usable, api_reachable=True)
    return answered_report(
        base, facts, checks, probe, runtime_works=runtime_works, deep_cli=cli, deep=deep
    )


def _facts(info: dict[str, Any], client_version: str | None, probe: HostProbe) -> EngineFacts:
    """Docker's ``GET /info`` answer, parsed."""
    security = [str(option) for option in info.get("SecurityOptions") or []]
    # dockerd labels containers only when started with --selinux-enabled on an SELinux host
    labels = any(option.split(",")[0] == "name=selinux" for option in security)
    runtime = as_str(info.get("DefaultRuntime"))
    runtime_path = as_str(as_dict(as_dict(info.get("Runtimes")).get(runtime or "")).get("path"))
    if runtime_path and not runtime_path.startswith("/"):
        runtime_path = probe.which(runtime_path) or runtime_path
    return EngineFacts(
        version=as_str(info.get("ServerVersion")) or client_version or "unknown",
        rootless=any("name=rootless" in option for option in security),
        runtime=runtime,
        runtime_path=runtime_path,
        cgroup_version=as_str(info.get("CgroupVersion")),
        cgroup_manager=as_str(info.get("CgroupDriver")),
        storage_driver=as_str(info.get("Driver")),
        storage_root=as_str(info.get("DockerRootDir")),
        selinux_enabled=labels,
        selinux_detail="docker labels containers (name=selinux in SecurityOptions)"
        if labels
        else "docker does not label containers (no name=selinux in SecurityOptions)",
    )


def _with(report: EngineReport, row: Check, *, api_reachable: bool = False) -> EngineReport:
    return replace(report, api_reachable=api_reachable, checks=(row,))
