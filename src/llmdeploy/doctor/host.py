"""Host facts shared by the engine checks: cgroup mode, rlimits, capabilities, containers.conf."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmdeploy.constants import ENV_CONTAINERS_CONF, ENV_HOME, ENV_XDG_CONFIG_HOME
from llmdeploy.doctor.probe import HostProbe
from llmdeploy.doctor.report import CgroupInfo

CGROUP_ROOT = "/sys/fs/cgroup"
CAP_SYS_RESOURCE = 24
UNLIMITED = -1

#: RLIMIT names in ``/proc/self/limits`` for the ulimits Podman sets by default.
_LIMIT_LABELS = {"nofile": "Max open files", "nproc": "Max processes"}


@dataclass(frozen=True)
class _Mount:
    point: str
    fstype: str
    options: str


def _parse_mountinfo(text: str) -> list[_Mount]:
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields = left.split()
        rest = right.split()
        if not sep or len(fields) < 5 or len(rest) < 3:
            continue
        mounts.append(_Mount(point=fields[4], fstype=rest[0], options=rest[2]))
    return mounts


def _parse_proc_mounts(text: str) -> list[_Mount]:
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 4:
            mounts.append(_Mount(point=fields[1], fstype=fields[2], options=fields[3]))
    return mounts


def detect_cgroups(probe: HostProbe) -> CgroupInfo:
    """v2 (unified), v1 (legacy) or hybrid (v1 controllers plus a v2 tree), from the mount table."""
    text = probe.read_text("/proc/self/mountinfo")
    mounts = _parse_mountinfo(text) if text else []
    if not mounts:
        text = probe.read_text("/proc/mounts")
        mounts = _parse_proc_mounts(text) if text else []
    under = [m for m in mounts if m.point == CGROUP_ROOT or m.point.startswith(CGROUP_ROOT + "/")]
    if any(m.point == CGROUP_ROOT and m.fstype == "cgroup2" for m in under):
        return CgroupInfo("v2", f"unified cgroup2 at {CGROUP_ROOT}")
    v1 = [m for m in under if m.fstype == "cgroup"]
    v2 = [m for m in under if m.fstype == "cgroup2"]
    if v1 and v2:
        return CgroupInfo(
            "hybrid",
            f"{len(v1)} v1 controller mounts plus cgroup2 at {v2[0].point} "
            "(crun refuses this mode; runc works)",
        )
    if v1:
        return CgroupInfo("v1", f"{len(v1)} v1 controller mounts under {CGROUP_ROOT}")
    return CgroupInfo("unknown", f"no cgroup filesystem mounted under {CGROUP_ROOT}")


def has_systemd(probe: HostProbe) -> bool:
    """Whether systemd manages this machine (so ``systemctl`` fixes apply)."""
    return probe.exists("/run/systemd/system")


def hard_limits(probe: HostProbe) -> dict[str, int]:
    """Hard nofile/nproc limits of this process (``UNLIMITED``: none); absent when unknown."""
    text = probe.read_text("/proc/self/limits") or ""
    limits: dict[str, int] = {}
    for line in text.splitlines():
        for name, label in _LIMIT_LABELS.items():
            if line.startswith(label):
                fields = line[len(label) :].split()
                if len(fields) >= 2:
                    value = _limit_value(fields[1])
                    if value is not None:
                        limits[name] = value
    return limits


def _limit_value(text: str) -> int | None:
    if text in ("unlimited", "-1"):
        return UNLIMITED
    try:
        return int(text)
    except ValueError:
        return None


def has_capability(probe: HostProbe, bit: int) -> bool | None:
    """Whether this process holds a capability (from ``CapEff``); None when unknown."""
    text = probe.read_text("/proc/self/status") or ""
    for line in text.splitlines():
        if line.startswith("CapEff:"):
            try:
                return bool(int(line.split()[1], 16) >> bit & 1)
            except (IndexError, ValueError):
                return None
    return None


def containers_conf_files(probe: HostProbe, *, rootless: bool) -> list[str]:
    """containers.conf files Podman reads, in the order later ones override earlier ones."""
    env = probe.env()
    override = env.get(ENV_CONTAINERS_CONF)
    if override:
        return [override]
    files = ["/usr/share/containers/containers.conf", "/etc/containers/containers.conf"]
    files += _dropins(probe, "/etc/containers/containers.conf.d")
    if rootless:
        home = env.get(ENV_HOME, "")
        config_home = env.get(ENV_XDG_CONFIG_HOME) or f"{home}/.config"
        files.append(f"{config_home}/containers/containers.conf")
        files += _dropins(probe, f"{config_home}/containers/containers.conf.d")
    return [path for path in files if probe.exists(path)]


def _dropins(probe: HostProbe, directory: str) -> list[str]:
    return [f"{directory}/{name}" for name in probe.list_dir(directory) if name.endswith(".conf")]


def _load_toml(text: str) -> dict[str, Any] | None:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: no TOML reader in the standard library
        return None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None


@dataclass(frozen=True)
class UlimitSetting:
    """``default_ulimits`` as Podman will apply it, and the file that set it (None: built in)."""

    limits: Mapping[str, int]
    source: str | None


def podman_default_ulimits(probe: HostProbe, files: list[str]) -> UlimitSetting:
    """Hard limits from the last ``[containers] default_ulimits`` in ``files``."""
    limits: dict[str, int] = {}
    source: str | None = None
    for path in files:
        data = _load_toml(probe.read_text(path) or "")
        section = data.get("containers") if data else None
        if not isinstance(section, dict) or "default_ulimits" not in section:
            continue
        entries = section["default_ulimits"]
        if not isinstance(entries, list):
            continue
        source = path
        limits = {}
        for entry in entries:
            parsed = _parse_ulimit(str(entry))
            if parsed is not None:
                limits[parsed[0]] = parsed[1]
    return UlimitSetting(limits, source)


def _parse_ulimit(entry: str) -> tuple[str, int] | None:
    """``"nproc=4096:8192"`` -> ("nproc", 8192): the hard limit is what needs the capability."""
    name, sep, value = entry.partition("=")
    if not sep:
        return None
    hard = value.split(":")[-1].strip()
    parsed = _limit_value(hard)
    return (name.strip(), parsed) if parsed is not None else None
