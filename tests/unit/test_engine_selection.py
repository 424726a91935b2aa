"""One engine resolver for every command: --engine > $LLMDEPLOY_ENGINE > profile > auto."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmdeploy.engines.podman_engine import PodmanEngine
from llmdeploy.engines.selection import choose_engine, reachable_engines, render_engine
from llmdeploy.errors import EngineUnavailableError, UsageError


def run(*args: str, cwd: Path, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmdeploy", *args], capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, **(env or {})}, timeout=60)


@pytest.mark.parametrize(("flag", "env", "profile", "expected", "source"), [
    ("podman", "docker", "docker", "podman", "--engine"),
    (None, "docker", "podman", "docker", "LLMDEPLOY_ENGINE"),
    (None, None, "docker", "docker", "profile"),
    (None, None, None, "auto", "default"),
    (None, "", "podman", "podman", "profile"),  # an empty variable is unset
    ("Docker", None, None, "docker", "--engine"),  # names are case-insensitive
])
def test_precedence(flag: str | None, env: str | None, profile: str | None, expected: str,
                    source: str) -> None:
    environ = {} if env is None else {"LLMDEPLOY_ENGINE": env}
    choice = choose_engine(flag, profile, environ)
    assert (choice.requested, choice.source) == (expected, source)


@pytest.mark.parametrize(("flag", "env", "names"), [
    ("dokker", None, "--engine"),
    (None, "lxc", "$LLMDEPLOY_ENGINE"),
])
def test_unknown_engine_is_a_usage_error_naming_its_source(flag: str | None, env: str | None,
                                                           names: str) -> None:
    environ = {} if env is None else {"LLMDEPLOY_ENGINE": env}
    with pytest.raises(UsageError) as info:
        choose_engine(flag, "podman", environ)
    assert info.value.exit_code == 2
    assert names in info.value.message


def test_auto_renders_for_the_first_installed_engine(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text("#!/bin/sh\nexit 0\n")
    docker.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert render_engine(choose_engine(None, "auto", {})) == "docker"
    assert render_engine(choose_engine("podman", "auto", {})) == "podman"


def test_dry_run_and_up_follow_the_environment(tmp_path: Path) -> None:
    """LLMDEPLOY_ENGINE=docker: up --dry-run prints docker commands, as up would use Docker."""
    result = run("up", "--profile", "edge-podman", "--dry-run", cwd=tmp_path,
                 env={"LLMDEPLOY_ENGINE": "docker"})
    assert result.returncode == 0, result.stderr
    assert "docker run" in result.stdout and "podman run" not in result.stdout
    flag_wins = run("up", "--profile", "cpu-docker", "--dry-run", "--engine", "podman",
                    cwd=tmp_path, env={"LLMDEPLOY_ENGINE": "docker"})
    assert "podman run" in flag_wins.stdout and "docker run" not in flag_wins.stdout


@pytest.mark.parametrize("command", [
    ["render", "--profile", "edge-podman", "--engine", "dokker", "--out", "out"],
    ["up", "--profile", "edge-podman", "--engine", "dokker", "--dry-run"],
    ["up", "--profile", "edge-podman", "--engine", "dokker"],
    ["status", "--engine", "dokker"],
    ["down", "x", "--engine", "dokker"],
    ["logs", "x", "--engine", "dokker"],
    ["doctor", "--engine", "dokker"],
])
def test_every_command_refuses_an_unknown_engine_with_exit_2(command: list[str],
                                                             tmp_path: Path) -> None:
    result = run(*command, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "unknown engine 'dokker'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()  # render wrote nothing


def test_a_dead_docker_host_is_named(tmp_path: Path) -> None:
    result = run("up", "--profile", "cpu-docker", cwd=tmp_path,
                 env={"DOCKER_HOST": f"unix://{tmp_path}/dead.sock"})
    assert result.returncode == 5
    assert "DOCKER_HOST" in result.stderr and "dead.sock" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_dead_container_host_is_named_not_silently_replaced(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CONTAINER_HOST", f"unix://{tmp_path}/dead-podman.sock")
    monkeypatch.delenv("LLMDEPLOY_PODMAN_SOCKET", raising=False)
    with pytest.raises(EngineUnavailableError) as info:
        PodmanEngine(timeout_s=2)
    assert "CONTAINER_HOST" in info.value.message and "dead-podman.sock" in info.value.message
    assert info.value.hint and "unset CONTAINER_HOST" in info.value.hint


def test_status_warns_about_an_engine_it_could_not_reach(tmp_path: Path) -> None:
    env = {"PATH": "/nonexistent", "DOCKER_HOST": f"unix://{tmp_path}/dead.sock"}
    result = run("status", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "docker could not be reached" in result.stderr and "DOCKER_HOST" in result.stderr
    as_json = run("status", "--json", cwd=tmp_path, env=env)
    assert as_json.stdout.strip() == "[]"  # stdout stays machine-readable


def test_reachable_engines_skips_what_is_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    for var in ("DOCKER_HOST", "CONTAINER_HOST", "LLMDEPLOY_PODMAN_SOCKET"):
        monkeypatch.delenv(var, raising=False)
    found = reachable_engines(choose_engine(None, None, {}))
    assert found.engines == [] and found.unreachable == {}


def test_down_does_not_claim_success_when_it_could_not_look(tmp_path: Path) -> None:
    env = {"CONTAINER_HOST": f"unix://{tmp_path}/dead-podman.sock",
           "DOCKER_HOST": f"unix://{tmp_path}/dead-docker.sock"}
    result = run("down", "somewhere", cwd=tmp_path, env=env)
    assert result.returncode == 5, result.stdout + result.stderr
    assert "nothing was removed, but it may still run" in result.stderr
    assert "CONTAINER_HOST" in result.stderr and "DOCKER_HOST" in result.stderr
    assert "nothing to remove" not in result.stdout
    logs = run("logs", "somewhere", cwd=tmp_path, env=env)
    assert logs.returncode == 6 and "not looked in" in logs.stderr
