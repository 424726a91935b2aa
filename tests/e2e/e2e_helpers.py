"""End-to-end helpers: real Podman and Docker, a real llama.cpp server, the tiny model.

Set LLMDEPLOY_E2E=require (``.ci/run`` does) to turn a missing engine or base image into a
failure instead of a skip, so CI can never pass with these tests skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

BASE_IMAGE = os.environ.get("LLMDEPLOY_TEST_BASE_IMAGE", "localhost/llmdeploy-base:bookworm")
REQUIRE = os.environ.get("LLMDEPLOY_E2E") == "require"


def unavailable(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"end-to-end prerequisite missing (LLMDEPLOY_E2E=require): {reason}")
    pytest.skip(reason)


def engine_ready(engine: str) -> str | None:
    """None when the engine answers, else why not."""
    if shutil.which(engine) is None:
        return f"{engine} is not installed (run scripts/setup-host.sh)"
    probe = subprocess.run([engine, "info"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        return f"`{engine} info` failed: {probe.stderr.strip()[-300:]}"
    image = subprocess.run([engine, "image", "inspect", BASE_IMAGE], capture_output=True,
                           timeout=60)
    if image.returncode != 0:
        return f"base image {BASE_IMAGE} missing in {engine} (scripts/make-base-image.sh)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cli:
    env: dict[str, str]
    cwd: Path

    def __call__(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "llmdeploy", *args],
            capture_output=True, text=True, env=self.env, cwd=self.cwd, timeout=timeout,
        )

    def json(self, *args: str, timeout: float = 600) -> object:
        result = self(*args, "--json", timeout=timeout)
        assert result.returncode == 0, result.stderr + result.stdout
        return json.loads(result.stdout)


def cli_in(folder: Path) -> Cli:
    """A CLI with its own config folder under ``folder``, the test model store and base image."""
    env = dict(os.environ)
    env["LLMDEPLOY_CONFIG_DIR"] = str(folder / "config")
    env["LLMDEPLOY_MODEL_STORE"] = os.environ.get(
        "LLMDEPLOY_TEST_MODEL_STORE", str(Path.home() / ".cache" / "llmdeploy-test-models"))
    env["LLMDEPLOY_BASE_IMAGE"] = BASE_IMAGE
    env.pop("LLMDEPLOY_ENGINE", None)
    return Cli(env=env, cwd=folder)


@dataclass
class Deployment:
    engine: str
    name: str
    port: int
    profile_file: Path


def write_profile(tmp_path: Path, engine: str, name: str, port: int, extra: str = "") -> Path:
    path = tmp_path / f"{name}.yaml"
    parent = "edge-podman" if engine == "podman" else "cpu-docker"
    path.write_text(
        f"name: {name}\nextends: {parent}\nserver: {{port: {port}}}\n"
        f"health: {{timeout_s: 90}}\n{extra}"
    )
    return path


def leftovers(engine: str, name: str) -> list[str]:
    out = subprocess.run(
        [engine, "ps", "-a", "--filter", f"label=io.llmdeploy.deployment={name}",
         "--format", "{{.Names}}"],
        capture_output=True, text=True, timeout=60,
    )
    return [line for line in out.stdout.split() if line]


def built_image(profile_name: str, engine: str, tmp_path: Path, model_filename: str) -> str:
    """The image this checkout's ``up --profile PROFILE_NAME`` runs, built in ``engine`` the way
    ``up`` builds it (``deploy.images.ensure_image``) when it is not there yet. Built-in tags are
    content-addressed, so the tests run the image of this code, never an older build left in
    the engine."""
    from llmdeploy.core.reporting import NullReporter
    from llmdeploy.deploy.images import ensure_image
    from llmdeploy.deploy.plan import plan_deployment
    from llmdeploy.engines.selection import connect
    from llmdeploy.profiles.loader import resolve

    env = {**os.environ, "LLMDEPLOY_BASE_IMAGE": BASE_IMAGE}
    profile = resolve(profile_name, cwd=tmp_path, env=env).profile
    plan = plan_deployment(profile, model_dir=tmp_path, model_filename=model_filename)
    connected = connect(engine)
    try:
        return ensure_image(connected, plan.images, pull="never", reporter=NullReporter()).image
    finally:
        connected.close()


def llamacpp_image(engine: str, tmp_path: Path) -> str:
    """The CPU llama.cpp image of the tiny-model profile (``edge-podman``), built if missing."""
    return built_image("edge-podman", engine, tmp_path, "model.gguf")
