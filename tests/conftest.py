"""Shared fixtures: isolated config, model-store and state directories for every test."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    base = tmp_path_factory.mktemp("llmdeploy-home")
    monkeypatch.setenv("LLMDEPLOY_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("LLMDEPLOY_MODEL_STORE", str(base / "models"))
    monkeypatch.setenv("XDG_STATE_HOME", str(base / "state"))  # time-to-ready records
    monkeypatch.delenv("LLMDEPLOY_ENGINE", raising=False)


@pytest.fixture
def tiny_gguf(tmp_path: Path) -> Path:
    """A small stand-in file with a .gguf name (content is irrelevant to unit tests)."""
    path = tmp_path / "weights" / "tiny-model.Q4_0.gguf"
    path.parent.mkdir()
    path.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    return path
