"""`llmdeploy doctor` on this real host: it must report what is really installed and running."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

SRC = Path(__file__).resolve().parents[2] / "src"


def _doctor(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "llmdeploy", "doctor", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,  # doctor's own timeouts keep it far below this
        check=False,
    )


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    result = _doctor("--json")
    assert result.returncode in (0, 5), result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    assert data["exit_code"] == result.returncode
    return data


def _version(argv: list[str]) -> str | None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    match = re.search(r"version (\S+?),?(\s|$)", result.stdout)
    return match.group(1) if match else None


def _docker_daemon_answers() -> bool:
    """Ask the daemon independently of doctor: the docker CLI, else the docker SDK."""
    docker_cli = shutil.which("docker")
    if docker_cli:
        result = subprocess.run(
            [docker_cli, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return result.returncode == 0 and bool(result.stdout.strip())
    import docker

    try:
        docker.from_env(timeout=5).ping()
    except docker.errors.DockerException:
        return False
    return True


def test_podman_is_reported_as_this_host_has_it(report: dict[str, Any]) -> None:
    podman = report["engines"]["podman"]
    binary = shutil.which("podman")
    assert podman["installed"] is (binary is not None)
    assert podman["binary"] == binary
    if binary is not None:
        assert podman["version"] == _version([binary, "--version"])
        assert podman["rootless"] is (os.geteuid() != 0)
        assert podman["oci_runtime"] in ("runc", "crun", "crun-wasm", "youki", "kata")


def test_docker_is_reported_as_this_host_has_it(report: dict[str, Any]) -> None:
    docker = report["engines"]["docker"]
    binaries = shutil.which("docker") or shutil.which("dockerd")
    answers = _docker_daemon_answers()
    assert docker["installed"] is bool(binaries or answers)
    assert docker["api_reachable"] is answers
    if docker["installed"] and not answers:
        row = next(c for c in report["checks"] if c["component"] == "docker")
        assert row["status"] in ("warn", "error")
        assert row["fix"]


def test_cgroup_mode_matches_the_host(report: dict[str, Any]) -> None:
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        expected = "v2"
    elif os.path.exists("/sys/fs/cgroup/unified/cgroup.controllers"):
        expected = "hybrid"
    else:
        expected = "v1"
    assert report["cgroups"]["mode"] == expected


def test_gpu_and_packages_match_the_host(report: dict[str, Any]) -> None:
    import importlib.util

    assert report["gpu"]["nvidia_smi"] == shutil.which("nvidia-smi")
    assert report["gpu"]["amd_kfd"] is os.path.exists("/dev/kfd")
    for module, info in report["python_packages"].items():
        assert info["found"] is (importlib.util.find_spec(module) is not None), module


def test_exit_code_follows_engine_usability(report: dict[str, Any]) -> None:
    usable = [name for name, engine in report["engines"].items() if engine["usable"]]
    assert report["ok"] is bool(usable)
    assert report["selected_engine"] == (usable[0] if usable else None)


def test_text_output_has_the_table_and_the_fix_lines(report: dict[str, Any]) -> None:
    result = _doctor()
    assert result.returncode == report["exit_code"]
    assert "component" in result.stdout and "podman" in result.stdout
    if report["fixes"]:
        assert "How to fix:" in result.stdout
