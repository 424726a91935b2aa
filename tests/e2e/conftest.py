"""End-to-end fixtures: real Podman and Docker, a real llama.cpp server, the tiny model."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_helpers import (
    BASE_IMAGE,
    Cli,
    Deployment,
    engine_ready,
    free_port,
    unavailable,
    write_profile,
)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    env = dict(os.environ)
    env["LLMDEPLOY_CONFIG_DIR"] = str(tmp_path / "config")
    env["LLMDEPLOY_MODEL_STORE"] = os.environ.get(
        "LLMDEPLOY_TEST_MODEL_STORE", str(Path.home() / ".cache" / "llmdeploy-test-models"))
    env["LLMDEPLOY_BASE_IMAGE"] = BASE_IMAGE
    env.pop("LLMDEPLOY_ENGINE", None)
    return Cli(env=env, cwd=tmp_path)


@pytest.fixture(params=["podman", "docker"])
def engine(request: pytest.FixtureRequest) -> str:
    name = str(request.param)
    reason = engine_ready(name)
    if reason:
        unavailable(reason)
    return name


@pytest.fixture
def deployment(engine: str, tmp_path: Path) -> Iterator[Deployment]:
    name = f"e2e-{engine}-{uuid.uuid4().hex[:6]}"
    port = free_port()
    dep = Deployment(engine, name, port, write_profile(tmp_path, engine, name, port))
    yield dep
    subprocess.run([engine, "rm", "-f", f"llmdeploy-{name}"], capture_output=True, timeout=60)
