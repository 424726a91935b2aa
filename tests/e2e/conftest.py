"""End-to-end fixtures: real Podman and Docker, a real llama.cpp server, the tiny model."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_helpers import (
    Cli,
    Deployment,
    cli_in,
    engine_ready,
    free_port,
    unavailable,
    write_profile,
)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return cli_in(tmp_path)


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``emulated`` (ARM64 under qemu: minutes) run after every other test, so
    the quick checks report first."""
    items.sort(key=lambda item: item.get_closest_marker("emulated") is not None)
