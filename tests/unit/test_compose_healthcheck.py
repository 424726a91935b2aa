"""The in-container health check of the Quadlet and compose exports (render/healthcheck.py).

The command is run for real with /bin/sh against a local HTTP server, once per tool it may
find in an image (curl, wget, python3, bash's /dev/tcp), with a PATH holding only that tool:
it must pass on 200, fail on 503 (llama.cpp while loading) and fail when nothing listens.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from single_host_exports import export_inputs, inputs_for_profile
from test_golden_files import profile_for

from llmdeploy.errors import RenderError
from llmdeploy.render.healthcheck import health_check, health_command, startup_budget_s


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/ready" else 503
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()


def only(tmp_path: Path, tool: str) -> dict[str, str]:
    """An environment whose PATH has /bin/sh's helpers and ``tool``, nothing else."""
    folder = tmp_path / "bin"
    folder.mkdir()
    found = {"python3": sys.executable}.get(tool) or shutil.which(tool)
    if found is None:
        pytest.skip(f"{tool} is not installed here")
    for name, target in {"sh": "/bin/sh", "head": shutil.which("head"),
                         "grep": shutil.which("grep"), tool: found}.items():
        assert target, name
        (folder / name).symlink_to(target)
    return {"PATH": str(folder)}


@pytest.mark.parametrize("tool", ["curl", "wget", "python3", "bash"])
def test_the_check_passes_only_on_a_2xx_answer(tool: str, tmp_path: Path, server_port: int) -> None:
    env = only(tmp_path, tool)

    def run(port: int, path: str) -> int:
        command = health_command(port, path)
        return subprocess.run(["/bin/sh", "-c", command], env=env, capture_output=True,
                              timeout=30).returncode

    assert run(server_port, "/ready") == 0
    assert run(server_port, "/loading") != 0
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    assert run(closed, "/ready") != 0


def test_the_check_holds_no_character_compose_or_systemd_would_rewrite() -> None:
    command = health_command(8080, "/health")
    assert "$" not in command and "%" not in command and "\n" not in command


def test_a_health_path_that_would_need_quoting_is_refused() -> None:
    with pytest.raises(RenderError, match="health path"):
        health_command(8080, "/health'; rm -rf /")


def test_the_check_asks_the_readiness_path_on_the_container_port() -> None:
    check = health_check(export_inputs("cpu-docker"))
    assert "http://127.0.0.1:8080/health" in check.command


def test_a_backend_with_post_start_steps_is_checked_on_its_liveness_path() -> None:
    """Ollama's readiness path (/v1/models/NAME) answers 404 until the printed one-time step
    created the model: on one host the check must not wait for it (Quadlet would kill it)."""
    inputs = export_inputs("local-ollama")
    assert inputs.plan.launch.post_start
    assert inputs.plan.launch.readiness_path.startswith("/v1/models/")
    check = health_check(inputs)
    assert "http://127.0.0.1:11434/api/version" in check.command
    assert "/v1/models/" not in check.command
    ready = health_check(export_inputs("edge-podman", {"probes": {"ready_path": "/v1/models"}}))
    assert "http://127.0.0.1:8080/v1/models" in ready.command
    assert (ready.interval_s, ready.retries) == (10, 3)


@pytest.mark.parametrize(
    ("weights", "overrides", "budget"),
    [
        (98_000_000, {}, 120),  # a small model: up's own patience (health.timeout_s) wins
        (100 * 2**30, {}, 1084),  # 100 GiB at 200 MiB/s: 2 x (512 s + 30 s)
        (100 * 2**30, {"probes": {"load_bandwidth_mib_s": 1024}}, 260),  # 2 x (100 + 30)
        (None, {}, 120),  # size unknown
        (100 * 2**30, {"probes": {"startup_timeout_s": 77}}, 77),  # the profile decides
    ],
)
def test_start_period_covers_a_cold_load(
    weights: int | None, overrides: dict[str, object], budget: int
) -> None:
    profile = profile_for("edge-podman")
    if overrides:
        from llmdeploy.profiles.merge import deep_merge
        from llmdeploy.profiles.schema import Profile

        data = deep_merge(profile.model_dump(mode="json", exclude_none=True), overrides)
        profile = Profile.model_validate(data)
    inputs = replace(inputs_for_profile(profile), weights_bytes=weights)
    assert startup_budget_s(inputs) == budget

