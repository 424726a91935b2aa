"""A strict reader of systemd unit files as Quadlet (Podman 4.4 - 5.8) reads them, for tests.

Not llmdeploy code: a reading of systemd.syntax(7) and of Podman's Quadlet
(``pkg/systemd/parser/unitfile.go``, ``split.go``, ``pkg/systemd/quadlet/quadlet.go`` at the tags
v4.4.0 ... v5.8.0), stricter than both, so a unit llmdeploy writes either means exactly one
thing to every Quadlet from the version it claims on, or fails here:

- syntax: ``[Section]`` lines, ``Key=value`` lines, comments (``#``/``;``), continuation lines
  (a trailing backslash; no comment inside one); anything else is an error with its line;
- keys: the ``[Container]``/``[Volume]``/``[Network]`` keys Quadlet knows at the given Podman
  version (KEY_SINCE, the release that added each), a list of systemd's keys for ``[Unit]``,
  ``[Service]``, ``[Install]``; an unknown key, or a single-valued key given twice, is an error;
- values: ``%`` must be ``%%`` (no specifier is used) and, where the value reaches ExecStart,
  ``$`` must be ``$$``; word lists (Exec, PodmanArgs, Environment, Label, Secret) are split with
  systemd's quoting and C escapes, and unbalanced quotes or unknown escapes are errors;
- Quadlet's own rules: an Image, booleans spelled as systemd spells them, Service Type
  notify/oneshot, KillMode mixed/control-group.

:func:`quadlet_run_args` then turns a ``.container`` into the ``podman run`` arguments
Quadlet's ConvertContainer generates, key by key, so tests compare them with llmdeploy's own
``podman run`` line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

Version = tuple[int, int]

# Quadlet's keys and the Podman release that added each (quadlet.go, v4.4.0 ... v5.8.0)
_CONTAINER_SINCE = {
    (4, 4): "AddCapability AddDevice Annotation ContainerName DropCapability Environment "
    "EnvironmentFile EnvironmentHost Exec ExposeHostPort Group Image Label Network "
    "NoNewPrivileges Notify PodmanArgs PublishPort ReadOnly RemapGid RemapUid RemapUidSize "
    "RemapUsers RunInit SeccompProfile Timezone User VolatileTmp Volume",
    (4, 5): "HealthCmd HealthInterval HealthOnFailure HealthRetries HealthStartPeriod "
    "HealthStartupCmd HealthStartupInterval HealthStartupRetries HealthStartupSuccess "
    "HealthStartupTimeout HealthTimeout IP IP6 LogDriver Mount Rootfs Secret "
    "SecurityLabelDisable SecurityLabelFileType SecurityLabelLevel SecurityLabelType Tmpfs UserNS",
    (4, 6): "AutoUpdate HostName Mask Pull SecurityLabelNested Sysctl Unmask WorkingDir",
    (4, 7): "DNS DNSOption DNSSearch PidsLimit ShmSize Ulimit",
    (4, 8): "ContainersConfModule GIDMap GlobalArgs ReadOnlyTmpfs SubGIDMap SubUIDMap UIDMap",
    (5, 0): "Entrypoint Pod StopTimeout",
    (5, 1): "GroupAdd",
    (5, 2): "LogOpt NetworkAlias StopSignal",
    (5, 3): "AddHost CgroupsMode HealthLogDestination HealthMaxLogCount HealthMaxLogSize "
    "ServiceName StartWithPod",
    (5, 5): "Memory ReloadCmd ReloadSignal Retry RetryDelay",
    (5, 7): "HttpProxy",
    (5, 8): "AppArmor",
}
_VOLUME_SINCE = {
    (4, 4): "Copy Device Group Label Options Type User",
    (4, 6): "PodmanArgs",
    (4, 7): "VolumeName",
    (4, 8): "ContainersConfModule Driver GlobalArgs Image",
    (5, 3): "ServiceName",
}
_NETWORK_SINCE = {
    (4, 4): "DisableDNS Driver Gateway IPAMDriver IPRange IPv6 Internal Label Options Subnet",
    (4, 6): "PodmanArgs",
    (4, 7): "DNS NetworkName",
    (4, 8): "ContainersConfModule GlobalArgs",
    (5, 3): "ServiceName",
    (5, 5): "NetworkDeleteOnStop",
    (5, 6): "InterfaceName",
}
KEY_SINCE: dict[str, dict[str, Version]] = {
    group: {key: version for version, keys in table.items() for key in keys.split()}
    for group, table in (
        ("Container", _CONTAINER_SINCE), ("Volume", _VOLUME_SINCE), ("Network", _NETWORK_SINCE)
    )
}
# systemd keys (systemd.unit(5), systemd.service(5), systemd.exec(5)): the ones a Quadlet unit
# plausibly carries; single-valued ones may appear once
_SYSTEMD_KEYS = {
    "Unit": "Description* Documentation Wants Requires Requisite BindsTo PartOf Upholds Conflicts "
    "Before After OnFailure OnSuccess StartLimitIntervalSec* StartLimitBurst* RequiresMountsFor "
    "DefaultDependencies* StopWhenUnneeded* ConditionPathExists AssertPathExists",
    "Service": "Type* Restart* RestartSec* TimeoutStartSec* TimeoutStopSec* TimeoutSec* "
    "ExecStartPre ExecStartPost ExecStop ExecStopPost ExecReload Environment EnvironmentFile "
    "KillMode* KillSignal* SyslogIdentifier* NotifyAccess* Delegate* WorkingDirectory* User* "
    "Group* RemainAfterExit* SuccessExitStatus RestartPreventExitStatus Slice*",
    "Install": "WantedBy RequiredBy UpheldBy Alias Also DefaultInstance*",
}
SYSTEMD_KEYS = {
    group: {key.rstrip("*"): key.endswith("*") for key in keys.split()}
    for group, keys in _SYSTEMD_KEYS.items()
}
# Quadlet keys read as lists of words (LookupAllArgs / LookupLastArgs / LookupAllKeyVal /
# LookupAllStrv), and keys that may be given more than once
_ARG_KEYS = {"Exec", "PodmanArgs", "Secret", "Mask", "Unmask", "EnvironmentFile", "Mount",
             "GlobalArgs", "HealthStartupCmd"}
_KEYVAL_KEYS = {"Environment", "Label", "Annotation"}
_STRV_KEYS = {"DropCapability", "AddCapability", "AddDevice", "Sysctl", "RemapUid", "RemapGid",
              "AutoUpdate"}
_MULTI_KEYS = _ARG_KEYS - {"Exec"} | _KEYVAL_KEYS | _STRV_KEYS | {
    "Volume", "PublishPort", "ExposeHostPort", "Network", "Tmpfs", "DNS", "DNSOption",
    "DNSSearch", "AddHost", "GroupAdd", "LogOpt", "NetworkAlias", "UIDMap", "GIDMap", "Options",
    "Subnet", "Gateway", "IPRange", "ReloadCmd",
}
_BOOL_KEYS = {"NoNewPrivileges", "SecurityLabelDisable", "SecurityLabelNested", "ReadOnly",
              "VolatileTmp", "RunInit", "Notify", "EnvironmentHost", "ReadOnlyTmpfs", "Copy",
              "DisableDNS", "Internal", "IPv6"}
_BOOLEANS = {"1", "yes", "true", "on", "0", "no", "false", "off"}
_SECTIONS = {".container": "Container", ".volume": "Volume", ".network": "Network"}
_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
_C_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
              "\\": "\\", '"': '"', "'": "'", "s": " "}


class UnitParseError(ValueError):
    """A unit a real Quadlet or systemd would refuse or read differently; names the line."""


@dataclass
class Entry:
    key: str
    value: str  # as written, continuation applied, escapes not yet decoded
    line: int


@dataclass
class Unit:
    """A parsed unit: sections in order; values decoded the way Quadlet reads each key."""

    kind: str  # .container | .volume | .network
    sections: dict[str, list[Entry]] = field(default_factory=dict)

    def keys(self, section: str) -> list[str]:
        return [entry.key for entry in self.sections.get(section, [])]

    def raw_values(self, section: str, key: str) -> list[str]:
        return [e.value for e in self.sections.get(section, []) if e.key == key]

    def values(self, section: str, key: str) -> list[str]:
        """Each value as the program finally sees it: ``%%`` -> ``%`` (and ``$$`` -> ``$`` in
        the Quadlet section, whose values end in ExecStart)."""
        return [_unescape_exec(v) if section in _SECTIONS.values() else v.replace("%%", "%")
                for v in self.raw_values(section, key)]

    def value(self, section: str, key: str) -> str | None:
        found = self.values(section, key)
        return found[-1] if found else None

    def words(self, section: str, key: str) -> list[str]:
        """A word-list key (Exec, PodmanArgs, Secret, ...): all its lines, split and decoded."""
        out: list[str] = []
        for raw in self.raw_values(section, key):
            out += [_unescape_exec(word) for word in split_words(raw)]
        return out

    def assignments(self, section: str, key: str) -> dict[str, str]:
        """``Environment=``/``Label=`` lines as one mapping (later lines win, as in Quadlet)."""
        out: dict[str, str] = {}
        for word in self.words(section, key):
            name, sep, value = word.partition("=")
            if not sep:
                raise UnitParseError(f"{key}={word!r}: not NAME=VALUE")
            out[name] = value
        return out


def parse_unit(text: str, *, kind: str = ".container", podman: Version = (4, 7)) -> Unit:
    """Parse ``text`` strictly as a Quadlet ``kind`` file for Podman ``podman`` and later."""
    group = _SECTIONS[kind]
    unit = Unit(kind=kind)
    current: str | None = None
    lines = text.split("\n")
    if "\r" in text:
        raise UnitParseError("carriage return in a unit file")
    index = 0
    while index < len(lines):
        number, line = index + 1, lines[index].strip()
        index += 1
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            if not re.fullmatch(r"\[[^\[\]\x00-\x1f]+\]", line):
                raise UnitParseError(f"line {number}: bad section header {line!r}")
            current = line[1:-1]
            allowed = {group, *SYSTEMD_KEYS}
            if current not in allowed:
                raise UnitParseError(f"line {number}: unknown section [{current}] in a {kind}")
            if current in unit.sections:
                raise UnitParseError(f"line {number}: section [{current}] given twice")
            unit.sections[current] = []
            continue
        if "=" not in line:
            raise UnitParseError(f"line {number}: not a section, key=value or comment: {line!r}")
        while line.endswith("\\"):
            if index >= len(lines):
                raise UnitParseError(f"line {number}: continuation at the end of the file")
            following = lines[index].strip()
            if following.startswith(("#", ";")):
                raise UnitParseError(f"line {index + 1}: comment inside a continued line")
            line = line[:-1] + " " + following
            index += 1
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if current is None:
            raise UnitParseError(f"line {number}: {key}= before any section")
        _check_key(unit, current, group, key, number, podman)
        _check_value(current, group, key, value, number)
        unit.sections[current].append(Entry(key, value, number))
    if kind == ".container":
        _check_container(unit)
    return unit


def _check_key(unit: Unit, section: str, group: str, key: str, line: int, podman: Version) -> None:
    if not _KEY_RE.match(key):
        raise UnitParseError(f"line {line}: bad key name {key!r}")
    if section == group:
        since = KEY_SINCE[group].get(key)
        if since is None:
            raise UnitParseError(f"line {line}: unsupported key '{key}' in group '{group}'")
        if since > podman:
            raise UnitParseError(
                f"line {line}: {key}= needs Podman {since[0]}.{since[1]} (target {podman[0]}."
                f"{podman[1]})"
            )
        multi = key in _MULTI_KEYS or (key == "Ulimit" and podman >= (5, 0))
    else:
        single = SYSTEMD_KEYS[section].get(key)
        if single is None:
            raise UnitParseError(f"line {line}: unknown key {key}= in [{section}]")
        multi = not single
    if not multi and key in unit.keys(section):
        raise UnitParseError(f"line {line}: {key}= given twice in [{section}] (only one counts)")


def _check_value(section: str, group: str, key: str, value: str, line: int) -> None:
    for match in re.finditer(r"%+", value):
        if len(match.group()) % 2:
            raise UnitParseError(f"line {line}: {key}={value!r}: a lone % is a specifier")
    if section == group:
        for match in re.finditer(r"\$+", value):
            if len(match.group()) % 2:
                raise UnitParseError(
                    f"line {line}: {key}={value!r}: a lone $ is expanded by systemd in ExecStart"
                )
    if key in _BOOL_KEYS and value.lower() not in _BOOLEANS:
        raise UnitParseError(f"line {line}: {key}={value!r} is not a boolean")
    if section == group and key in _ARG_KEYS | _KEYVAL_KEYS | _STRV_KEYS:
        words = split_words(value)
        if key in _KEYVAL_KEYS and any("=" not in w for w in words):
            raise UnitParseError(f"line {line}: {key}={value!r}: every word must be NAME=VALUE")
    if section == "Service" and key == "Type" and value not in ("notify", "oneshot"):
        raise UnitParseError(f"line {line}: Quadlet refuses Type={value}")
    if section == "Service" and key == "KillMode" and value not in ("mixed", "control-group"):
        raise UnitParseError(f"line {line}: Quadlet refuses KillMode={value}")


def _check_container(unit: Unit) -> None:
    has_image = bool(unit.raw_values("Container", "Image"))
    has_rootfs = bool(unit.raw_values("Container", "Rootfs"))
    if has_image == has_rootfs:
        raise UnitParseError("a .container needs exactly one of Image= and Rootfs=")


def _unescape_exec(text: str) -> str:
    return text.replace("%%", "%").replace("$$", "$")


def split_words(text: str) -> list[str]:
    """Split like systemd's ExecStart (extract_first_word with UNQUOTE | CUNESCAPE), strictly:
    unbalanced quotes and unknown escapes are errors."""
    words: list[str] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            return words
        word, quote = [], ""
        while i < n:
            c = text[i]
            if c == "\\":
                if i + 1 >= n:
                    raise UnitParseError(f"trailing backslash in {text!r}")
                nxt = text[i + 1]
                if nxt == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", text[i + 2:i + 4]):
                    word.append(chr(int(text[i + 2:i + 4], 16)))
                    i += 4
                    continue
                if nxt not in _C_ESCAPES:
                    raise UnitParseError(f"unknown escape \\{nxt} in {text!r}")
                word.append(_C_ESCAPES[nxt])
                i += 2
                continue
            if quote:
                if c == quote:
                    quote = ""
                else:
                    word.append(c)
            elif c in "\"'":
                quote = c
            elif c in " \t":
                break
            else:
                word.append(c)
            i += 1
        if quote:
            raise UnitParseError(f"unbalanced quotes in {text!r}")
        words.append("".join(word))


# --- what Quadlet generates ------------------------------------------------------------------

# keys whose value becomes `--flag=value` / `--flag value` (quadlet.go, ConvertContainer)
_VALUE_FLAGS = {
    "ShmSize": "--shm-size", "PidsLimit": "--pids-limit", "Ulimit": "--ulimit",
    "AddDevice": "--device", "Secret": "--secret", "Memory": "--memory", "GroupAdd": "--group-add",
    "HealthCmd": "--health-cmd", "HealthInterval": "--health-interval",
    "HealthOnFailure": "--health-on-failure", "HealthRetries": "--health-retries",
    "HealthStartPeriod": "--health-start-period", "HealthTimeout": "--health-timeout",
    "PublishPort": "--publish", "Entrypoint": "--entrypoint",
}
QUADLET_OWN = ("--cidfile", "--replace", "--rm", "--cgroups", "--sdnotify", "-d")
_HANDLED = {"ContainerName", "Image", "Exec", "Environment", "Label", "Volume", "DropCapability",
            "AddCapability", "NoNewPrivileges", "SecurityLabelDisable", "ReadOnly", "VolatileTmp",
            "User", "Group", "PodmanArgs", *_VALUE_FLAGS}


def quadlet_run_args(unit: Unit, volume_names: dict[str, str] | None = None) -> list[str]:
    """The ``podman run`` argv Quadlet writes into ExecStart for this ``.container``.

    ``volume_names``: ``X.volume`` file -> the volume's name (its VolumeName=), as Quadlet
    resolves them. Keys this emulation does not know are an error, not silently dropped.
    """
    unknown = set(unit.keys("Container")) - _HANDLED
    if unknown:
        raise UnitParseError(f"quadlet_run_args does not emulate {sorted(unknown)}")
    c = "Container"
    name = unit.value(c, "ContainerName") or "systemd-%N"
    args = ["podman", "run", f"--name={name}", "--cidfile=%t/%N.cid", "--replace", "--rm",
            "--cgroups=split", "--sdnotify=conmon", "-d"]
    if _true(unit.value(c, "NoNewPrivileges")):
        args.append("--security-opt=no-new-privileges")
    if _true(unit.value(c, "SecurityLabelDisable")):
        args += ["--security-opt", "label:disable"]
    for key in ("PidsLimit", "Ulimit"):
        args += [a for v in unit.values(c, key) for a in (_VALUE_FLAGS[key], v)]
    args += [f"--device={d}" for d in _strv(unit, "AddDevice")]
    args += [f"--cap-drop={cap.lower()}" for cap in _strv(unit, "DropCapability")]
    args += [f"--cap-add={cap.lower()}" for cap in _strv(unit, "AddCapability")]
    args += [f"--shm-size={v}" for v in unit.values(c, "ShmSize")]
    read_only = unit.value(c, "ReadOnly")
    if read_only is not None:
        args.append(f"--read-only={'true' if _true(read_only) else 'false'}")
        if _true(read_only) and not _true(unit.value(c, "VolatileTmp")):
            args.append("--read-only-tmpfs=false")
    user, group = unit.value(c, "User"), unit.value(c, "Group")
    if user is not None or group is not None:
        args += ["--user", f"{user or 0}:{group}" if group is not None else str(user)]
    for volume in unit.values(c, "Volume"):
        source, _, rest = volume.partition(":")
        if source.endswith(".volume"):
            source = (volume_names or {}).get(source, "systemd-" + source[: -len(".volume")])
        args += ["-v", f"{source}:{rest}"]
    args += [a for v in unit.values(c, "PublishPort") for a in ("--publish", v)]
    for key, value in sorted(unit.assignments(c, "Environment").items()):
        args += ["--env", f"{key}={value}"]
    for key, value in sorted(unit.assignments(c, "Label").items()):
        args += ["--label", f"{key}={value}"]
    args += [a for v in unit.words(c, "Secret") for a in ("--secret", v)]
    for key in ("HealthCmd", "HealthInterval", "HealthOnFailure", "HealthRetries",
                "HealthStartPeriod", "HealthTimeout"):
        value = unit.value(c, key)
        if value:
            args += [_VALUE_FLAGS[key], value]
    for key in ("Memory", "GroupAdd", "Entrypoint"):
        args += [a for v in unit.values(c, key) for a in (_VALUE_FLAGS[key], v)]
    args += unit.words(c, "PodmanArgs")
    args.append(unit.value(c, "Image") or "")
    return args + unit.words(c, "Exec")


def _strv(unit: Unit, key: str) -> list[str]:
    return unit.words("Container", key)


def _true(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "yes", "true", "on")
