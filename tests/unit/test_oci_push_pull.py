"""models push / pull against the in-memory registry: round trips, and failures that leave
nothing half-done (no tag moved by a failed push, no unverified file under its final name)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from fakes.oci_registry import FakeRegistry
from llmdeploy.core.model_ref import parse_ref
from llmdeploy.errors import ModelError, RegistryAuthError, RegistryError, RegistryUnreachableError
from llmdeploy.models.oci import modelpack as mp
from llmdeploy.models.oci.credentials import RegistryAccess
from llmdeploy.models.oci.push import push
from llmdeploy.models.store import ModelStore, read_manifest
from split_gguf import write_single, write_split

REF = "oci://registry.test/models/tiny:q8"
ACCESS = RegistryAccess()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def store_with(tmp_path: Path, registry: FakeRegistry) -> ModelStore:
    return ModelStore(tmp_path / "store", registry_client=lambda ref, access: registry)


def test_push_then_pull_gives_back_the_same_bytes(tmp_path: Path) -> None:
    registry = FakeRegistry()
    gguf = write_single(tmp_path / "tiny.Q8_0.gguf")
    pushed = push(gguf, parse_ref(REF), ACCESS, registry=registry)
    assert registry.tags == {"q8": pushed.digest}
    assert pushed.uploaded_bytes == gguf.stat().st_size
    stored = store_with(tmp_path, registry).ensure(REF)
    assert stored.filename == "tiny.Q8_0.gguf" and not stored.reused
    assert sha(stored.path) == sha(gguf) == stored.sha256
    assert stored.digest == pushed.digest
    manifest = read_manifest(stored.directory)
    assert manifest is not None
    assert (manifest.scheme, manifest.registry, manifest.repo, manifest.revision) == (
        "oci", "registry.test", "models/tiny", "q8"
    )
    assert not list(stored.directory.glob(".oci-*"))  # no partial file left


def test_a_complete_entry_is_reused_without_asking_the_registry(tmp_path: Path) -> None:
    registry = FakeRegistry()
    pushed = push(write_single(tmp_path / "tiny.gguf"), parse_ref(REF), ACCESS, registry=registry)
    store = store_with(tmp_path, registry)
    store.ensure(REF)
    registry.calls.clear()
    again = store.ensure(REF)
    assert again.reused and registry.calls == []
    refreshed = store.ensure(REF, refresh=True)  # asks again; the same layer is not fetched
    assert f"GET {pushed.layers[0].digest}" not in registry.calls
    assert "GET manifest q8" in registry.calls
    assert refreshed.digest == again.digest


def test_pushing_an_unchanged_model_uploads_nothing(tmp_path: Path) -> None:
    registry = FakeRegistry()
    gguf = write_single(tmp_path / "tiny.gguf")
    first = push(gguf, parse_ref(REF), ACCESS, registry=registry)
    registry.calls.clear()
    second = push(gguf, parse_ref(REF), ACCESS, registry=registry)
    assert second.digest == first.digest and second.uploaded_bytes == 0
    assert not [c for c in registry.calls if c.startswith("PUSH")]


def test_a_failed_push_moves_no_tag(tmp_path: Path) -> None:
    registry = FakeRegistry()
    old = push(write_single(tmp_path / "old.gguf"), parse_ref(REF), ACCESS, registry=registry)
    parts = write_split(tmp_path / "new.gguf", parts=3)
    registry.fail_on_blob = 2  # the connection drops on the second part
    with pytest.raises(RegistryUnreachableError) as caught:
        push(parts[0], parse_ref(REF), ACCESS, registry=registry)
    assert caught.value.exit_code == 13
    assert registry.tags == {"q8": old.digest}  # still the previous, complete version
    assert not [c for c in registry.calls if c.startswith("PUT manifest") and "new" in c]


def test_a_push_target_needs_a_tag_and_an_oci_scheme(tmp_path: Path) -> None:
    gguf = write_single(tmp_path / "tiny.gguf")
    registry = FakeRegistry()
    for target, says in (
        ("oci://registry.test/m@sha256:" + "a" * 64, "a push needs a tag"),
        ("hf://org/repo", "a push target is an oci:// reference"),
    ):
        with pytest.raises(ModelError, match=says):
            push(gguf, parse_ref(target), ACCESS, registry=registry)
    assert registry.calls == []


def test_a_split_gguf_round_trips_and_the_first_part_is_served(tmp_path: Path) -> None:
    registry = FakeRegistry()
    parts = write_split(tmp_path / "tiny.gguf", parts=3)
    push(parts[0], parse_ref(REF), ACCESS, registry=registry)
    stored = store_with(tmp_path, registry).ensure(REF)
    assert stored.filename == parts[0].name
    assert sorted(stored.files) == sorted(p.name for p in parts)
    for part in parts:
        assert sha(stored.directory / part.name) == sha(part)


def test_a_corrupt_blob_is_not_kept_and_the_pull_resumes_later(tmp_path: Path) -> None:
    registry = FakeRegistry()
    parts = write_split(tmp_path / "tiny.gguf", parts=3)
    pushed = push(parts[0], parse_ref(REF), ACCESS, registry=registry)
    third = next(layer for layer in pushed.layers if layer.name == parts[2].name)
    registry.corrupt = {third.digest}
    store = store_with(tmp_path, registry)
    with pytest.raises(ModelError, match="does not match its descriptor") as caught:
        store.ensure(REF)
    entry = store.entry_dir(parse_ref(REF))
    assert not (entry / parts[2].name).exists()  # never under its final name
    assert not list(entry.glob(".oci-*"))
    assert read_manifest(entry) is None  # incomplete: not used by up
    assert "pull again" in (caught.value.hint or "")
    registry.corrupt = set()
    registry.calls.clear()
    stored = store.ensure(REF)
    fetched = [c for c in registry.calls if c.startswith("GET sha256:")]
    layer_digests = {layer.digest for layer in pushed.layers}
    assert [c for c in fetched if c[4:] in layer_digests] == [f"GET {third.digest}"]
    assert sha(stored.directory / parts[2].name) == sha(parts[2])


def test_an_unknown_media_type_is_refused_before_any_blob_is_fetched(tmp_path: Path) -> None:
    registry = FakeRegistry()
    manifest = {
        "schemaVersion": 2,
        "mediaType": mp.OCI_MANIFEST,
        "artifactType": mp.ARTIFACT_TYPE,
        "config": {"mediaType": mp.CONFIG, "digest": "sha256:" + "c" * 64, "size": 2},
        "layers": [{"mediaType": "application/vnd.cncf.model.weight.v1.tar+zstd",
                    "digest": "sha256:" + "d" * 64, "size": 9}],
    }
    registry.put_manifest("q8", json.dumps(manifest).encode(), mp.OCI_MANIFEST)
    registry.calls.clear()
    store = store_with(tmp_path, registry)
    with pytest.raises(ModelError, match="tar\\+zstd, which llmdeploy does not read"):
        store.ensure(REF)
    assert registry.calls == ["GET manifest q8"]
    assert not store.entry_dir(parse_ref(REF)).exists()  # nothing half-done in the store


def test_registry_refusals_keep_their_exit_codes(tmp_path: Path) -> None:
    registry = FakeRegistry()
    store = store_with(tmp_path, registry)
    with pytest.raises(RegistryError) as missing:
        store.ensure(REF)
    assert missing.value.exit_code == 14 and "has no manifest 'q8'" in missing.value.message
    registry.refuse_auth = True
    with pytest.raises(RegistryAuthError) as refused:
        store.ensure(REF)
    assert refused.value.exit_code == 12
    assert not store.entry_dir(parse_ref(REF)).exists()  # nothing written for either
    assert store.list() == []


def test_a_digest_pinned_reference_checks_the_manifest_bytes(tmp_path: Path) -> None:
    registry = FakeRegistry()
    pushed = push(write_single(tmp_path / "tiny.gguf"), parse_ref(REF), ACCESS, registry=registry)
    pinned = f"oci://registry.test/models/tiny@{pushed.digest}"
    assert store_with(tmp_path, registry).ensure(pinned).digest == pushed.digest
    other = "sha256:" + "e" * 64
    registry.manifests[other] = registry.manifests[pushed.digest]  # served under another name
    with pytest.raises(ModelError, match="whose digest is"):
        store_with(tmp_path / "2", registry).ensure(f"oci://registry.test/models/tiny@{other}")


def _tar_gz(files: dict[str, bytes], link: str | None = None) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            archive.addfile(info)
    return gzip.compress(raw.getvalue(), mtime=0)


def _publish(registry: FakeRegistry, layers: list[tuple[str, bytes, dict[str, str]]]) -> None:
    descriptors = []
    for media_type, data, notes in layers:
        blob = mp.Blob(media_type, "sha256:" + hashlib.sha256(data).hexdigest(), len(data),
                       notes)
        registry.push_bytes(blob, data)
        descriptors.append(blob.descriptor())
    config = json.dumps({"descriptor": {}, "config": {"format": "safetensors"},
                         "modelfs": {"type": "layers", "diffIds": []}}).encode()
    config_blob = mp.Blob(mp.CONFIG, "sha256:" + hashlib.sha256(config).hexdigest(), len(config))
    registry.push_bytes(config_blob, config)
    manifest = {"schemaVersion": 2, "mediaType": mp.OCI_MANIFEST, "artifactType": mp.ARTIFACT_TYPE,
                "config": config_blob.descriptor(), "layers": descriptors}
    registry.put_manifest("q8", json.dumps(manifest).encode(), mp.OCI_MANIFEST)


def test_tar_layers_of_other_packers_are_extracted_into_a_folder_model(tmp_path: Path) -> None:
    registry = FakeRegistry()
    weights = b"\x02\x00\x00\x00\x00\x00\x00\x00{}"
    _publish(registry, [
        (mp.WEIGHT_RAW, weights, {"org.cncf.model.filepath": "model.safetensors"}),
        ("application/vnd.cncf.model.weight.config.v1.tar+gzip",
         _tar_gz({"config.json": b"{}", "./tokenizer.json": b"{}"}), {}),
    ])
    stored = store_with(tmp_path, registry).ensure(REF)
    assert stored.filename == ""  # a folder model (vLLM)
    assert sorted(stored.files) == ["config.json", "model.safetensors", "tokenizer.json"]
    assert (stored.directory / "model.safetensors").read_bytes() == weights


def test_a_link_inside_a_tar_layer_is_refused(tmp_path: Path) -> None:
    registry = FakeRegistry()
    _publish(registry, [
        (mp.WEIGHT_RAW, b"w", {"org.cncf.model.filepath": "model.safetensors"}),
        ("application/vnd.cncf.model.weight.config.v1.tar+gzip",
         _tar_gz({"config.json": b"{}"}, link="evil"), {}),
    ])
    store = store_with(tmp_path, registry)
    with pytest.raises(ModelError, match="not a regular file"):
        store.ensure(REF)
    assert not (store.entry_dir(parse_ref(REF)) / "evil").exists()


def test_export_pins_the_image_volume_to_the_digest_the_store_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmdeploy.deploy.export import ExportRequest, export_inputs
    from llmdeploy.profiles.schema import Profile

    registry = FakeRegistry()
    pushed = push(write_single(tmp_path / "tiny.gguf"), parse_ref(REF), ACCESS, registry=registry)
    monkeypatch.setenv("LLMDEPLOY_MODEL_STORE", str(tmp_path / "store"))
    profile = Profile.model_validate(
        {"name": "p", "backend": {"kind": "llamacpp"}, "model": {"ref": REF}}
    )
    before = export_inputs(ExportRequest(profile=profile, target="kube"))
    assert before.model_digest is None  # not pulled yet
    store_with(tmp_path, registry).ensure(REF)
    after = export_inputs(ExportRequest(profile=profile, target="kube"))
    assert after.model_digest == pushed.digest
    assert after.plan.model.filename == "tiny.gguf"

