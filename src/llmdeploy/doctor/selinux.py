"""SELinux: the host's mode, what the engines report, and what llmdeploy does about it.

On an SELinux host (Fedora, RHEL, CentOS Stream: Podman's home ground) a confined container
(``container_t``) may not read a bind-mounted directory that keeps its host label
(``user_home_t`` for the model store under ``~/.cache``). llmdeploy starts containers with
``--security-opt label=disable`` (profile ``security.selinux: disable``, the default), so the
read-only model mount works without relabelling anything: the store hard-links ``file://`` and
``pkg://`` models, and a ``:z`` relabel of the store would relabel the user's own files too.
"""

from __future__ import annotations

from collections.abc import Sequence

from llmdeploy.doctor.probe import HostProbe
from llmdeploy.doctor.report import Check, EngineReport, SelinuxInfo, Status

ENFORCE_FILE = "/sys/fs/selinux/enforce"
CONFIG_FILE = "/etc/selinux/config"
PROFILES_DOC = "docs/profiles.md"

_WHAT_LLMDEPLOY_DOES = (
    "llmdeploy starts containers with --security-opt label=disable (profile "
    "security.selinux: disable, the default), so the server reads the read-only model "
    "mount and no file is relabelled"
)


def detect_selinux(probe: HostProbe) -> SelinuxInfo:
    """enforcing / permissive (``/sys/fs/selinux/enforce``), disabled (installed, off) or absent."""
    enforce = probe.read_text(ENFORCE_FILE)
    if enforce is not None and enforce.strip() in ("0", "1"):
        if enforce.strip() == "1":
            return SelinuxInfo("enforcing", f"{ENFORCE_FILE} is 1")
        return SelinuxInfo("permissive", f"{ENFORCE_FILE} is 0: denials are logged, not enforced")
    config = probe.read_text(CONFIG_FILE)
    if config is not None:
        configured = _config_value(config)
        said = f" ({CONFIG_FILE}: SELINUX={configured})" if configured else ""
        return SelinuxInfo("disabled", f"installed but off: selinuxfs is not mounted{said}")
    return SelinuxInfo("absent", f"no {ENFORCE_FILE} and no {CONFIG_FILE}")


def _config_value(text: str) -> str | None:
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key.strip() == "SELINUX":
            return value.strip().strip("\"'") or None
    return None


def selinux_check(selinux: SelinuxInfo, engines: Sequence[EngineReport], model_store: str) -> Check:
    """The ``host: selinux`` row: the mode, what each engine reports, what llmdeploy does."""
    component = "host: selinux"
    reported = [report.selinux_detail for report in engines if report.selinux_detail]
    facts = f"; {', '.join(reported)}" if reported else ""
    engine_sees_selinux = any(report.selinux_enabled for report in engines)
    if selinux.mode == "enforcing" or (
        selinux.mode in ("disabled", "absent") and engine_sees_selinux
    ):
        # an engine reporting SELinux where this host has none: a VM or remote engine
        return Check(
            component,
            Status.INFO,
            f"{selinux.mode} ({selinux.detail}){facts}. {_WHAT_LLMDEPLOY_DOES}",
            fix=confined_fix(model_store),
        )
    if selinux.mode == "permissive":
        return Check(
            component,
            Status.INFO,
            f"permissive ({selinux.detail}){facts}. {_WHAT_LLMDEPLOY_DOES}; a profile with "
            "security.selinux: confined works here but would be denied once enforcing",
        )
    return Check(
        component,
        Status.OK,
        f"{selinux.mode} ({selinux.detail}){facts}: nothing confines containers by label, so "
        "the --security-opt label=disable that profiles pass by default changes nothing",
    )


def confined_fix(model_store: str) -> str:
    """How a ``security.selinux: confined`` profile can read the store without relabelling."""
    pattern = f"{model_store}(/.*)?"
    return (
        "only for profiles that set security.selinux: confined (the container cannot read the "
        "model store otherwise): keep the store on a filesystem other than your model files "
        "(LLMDEPLOY_MODEL_STORE; it then holds copies, not hard links to your files) and label "
        f"it once: `semanage fcontext -a -t container_file_t '{pattern}' && restorecon -R "
        f"{model_store}`; or go back to security.selinux: disable (the default; see "
        f"{PROFILES_DOC})"
    )
