"""The CLI maps errors to exit codes, prints message + hint, and never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmdeploy.engines.docker_engine import DockerEngine
from llmdeploy.engines.selection import choose_engine, open_engine
from llmdeploy.errors import EngineUnavailableError


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmdeploy", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def test_bad_profile_exits_3_naming_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "llmdeploy.yaml").write_text(
        "name: x\nextends: edge-podman\nserver: {prot: 9000}\n"
    )
    result = run("up", cwd=tmp_path)
    assert result.returncode == 3
    assert "llmdeploy.yaml" in result.stderr and "server.prot" in result.stderr
    assert "did you mean 'port'" in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_flag_shows_the_traceback(tmp_path: Path) -> None:
    result = run("--debug", "profiles", "show", "no-such-profile", cwd=tmp_path)
    assert result.returncode == 3
    assert "Traceback" in result.stderr and "no profile named" in result.stderr


def test_unknown_command_is_a_usage_error(tmp_path: Path) -> None:
    result = run("launch", cwd=tmp_path)
    assert result.returncode == 2
    assert "No such command" in result.stderr and "Traceback" not in result.stderr


def test_dry_run_prints_the_command_line_without_an_engine(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    (tmp_path / "llmdeploy.yaml").write_text(
        f"name: dry\nextends: edge-podman\nmodel: {{ref: 'file://{gguf}'}}\n"
    )
    result = run("up", "--dry-run", cwd=tmp_path, env={"PATH": "/nonexistent"})
    assert result.returncode == 0, result.stderr
    assert "podman run \\\n    --detach \\\n    --name llmdeploy-dry \\\n" in result.stdout
    assert ":/models:ro" in result.stdout


def test_docker_not_running_is_engine_unavailable(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailableError) as info:
        DockerEngine(base_url=f"unix://{tmp_path}/no-docker.sock", timeout_s=2)
    assert info.value.exit_code == 5
    assert info.value.hint and "start" in info.value.hint


def test_podman_not_installed_is_engine_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(EngineUnavailableError, match="Podman is not installed"):
        open_engine(choose_engine("podman"))


def test_auto_with_no_engine_lists_each_problem(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    with pytest.raises(EngineUnavailableError) as info:
        open_engine(choose_engine("auto"))
    assert "podman: not installed" in info.value.message
    assert "docker:" in info.value.message


def test_brackets_in_messages_are_printed_verbatim(tmp_path: Path) -> None:
    result = run("profiles", "show", "[/weird]name", cwd=tmp_path)
    assert result.returncode == 3
    assert "[/weird]name" in result.stderr and "MarkupError" not in result.stderr


@pytest.mark.parametrize("command", [["up", "--dry-run"], ["render", "--out", "o"], ["plan"]])
def test_a_directory_given_as_profile_file_is_a_profile_error(command: list[str],
                                                               tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    result = run(*command, "-f", str(tmp_path / "adir"), cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "adir" in result.stderr and "directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_profiles_validate_takes_a_name_too(tmp_path: Path) -> None:
    ok = run("profiles", "validate", "edge-podman", cwd=tmp_path)
    assert ok.returncode == 0 and "profile 'edge-podman' is valid" in ok.stdout
    typo = run("profiles", "validate", "edge-podmn", cwd=tmp_path)
    assert typo.returncode == 3 and "did you mean 'edge-podman'" in typo.stderr


@pytest.mark.parametrize("out", ["/etc/passwd", "/proc/no-such-dir", "{file}/sub"])
def test_render_to_a_path_it_cannot_write_is_an_error_not_a_traceback(out: str,
                                                                     tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    target = out.format(file=tmp_path / "afile")
    result = run("render", "--profile", "edge-podman", "--out", target, cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "cannot write the rendered files there" in result.stderr
    assert "Traceback" not in result.stderr


def test_bench_refuses_an_unwritable_output_before_running(tmp_path: Path) -> None:
    result = run("bench", "--url", "http://127.0.0.1:9/v1", "-n", "1", "--output",
                 str(tmp_path / "missing" / "r.json"), cwd=tmp_path)
    assert result.returncode == 2 and "does not exist" in result.stderr
    assert "cannot reach" not in result.stderr  # refused before any request
