"""The ModelPack artifact llmdeploy pushes, and the manifests it accepts or refuses to pull."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from llmdeploy.errors import ModelError
from llmdeploy.models.oci import modelpack as mp
from llmdeploy.models.oci.push import prepare
from split_gguf import write_single, write_split


def _manifest(artifact: mp.Artifact) -> dict[str, Any]:
    return json.loads(artifact.manifest)  # type: ignore[no-any-return]


def test_a_gguf_is_one_raw_weight_layer_with_modelpack_types(tmp_path: Path) -> None:
    gguf = write_single(tmp_path / "tiny.Q8_0.gguf")
    artifact, notes = prepare(gguf)
    manifest = _manifest(artifact)
    assert notes == ()
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["artifactType"] == "application/vnd.cncf.model.manifest.v1+json"
    assert manifest["config"]["mediaType"] == "application/vnd.cncf.model.config.v1+json"
    [layer] = manifest["layers"]
    data = gguf.read_bytes()
    assert layer["mediaType"] == "application/vnd.cncf.model.weight.v1.raw"
    assert layer["digest"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert layer["size"] == len(data)
    notes_of = layer["annotations"]
    assert notes_of["org.cncf.model.filepath"] == "tiny.Q8_0.gguf"
    assert notes_of["org.opencontainers.image.title"] == "tiny.Q8_0.gguf"
    metadata = json.loads(notes_of["org.cncf.model.file.metadata+json"])
    assert metadata["name"] == "tiny.Q8_0.gguf" and metadata["size"] == len(data)
    assert metadata["typeflag"] == ord("0")  # a regular file, as in a tar header
    # the config: what Docker Model Runner reads (format for .raw layers) and the spec requires
    config = json.loads(artifact.config)
    assert manifest["config"]["digest"] == "sha256:" + hashlib.sha256(artifact.config).hexdigest()
    assert config["config"]["format"] == "gguf"
    assert config["descriptor"]["name"] == "tiny.Q8_0"
    assert config["descriptor"]["family"] == "llama"
    assert config["descriptor"]["createdAt"].endswith("Z")
    assert config["modelfs"] == {"type": "layers", "diffIds": [layer["digest"]]}
    assert artifact.manifest_digest == "sha256:" + hashlib.sha256(artifact.manifest).hexdigest()


def test_the_same_files_give_the_same_digest_and_a_change_another(tmp_path: Path) -> None:
    gguf = write_single(tmp_path / "tiny.gguf")
    first, _ = prepare(gguf)
    again, _ = prepare(gguf)
    assert first.manifest == again.manifest  # createdAt is the file's mtime, not the push time
    with gguf.open("ab") as handle:
        handle.write(b"\0")
    changed, _ = prepare(gguf)
    assert changed.manifest_digest != first.manifest_digest


def test_a_split_gguf_pushes_every_part_in_order(tmp_path: Path) -> None:
    parts = write_split(tmp_path / "tiny.gguf", parts=3)
    artifact, _ = prepare(parts[0])
    names = [layer["annotations"]["org.cncf.model.filepath"] for layer in _manifest(artifact)["layers"]]
    assert names == [p.name for p in parts]
    assert all(layer.blob.media_type == mp.WEIGHT_RAW for layer in artifact.layers)
    assert json.loads(artifact.config)["descriptor"]["name"] == "tiny"  # no -00001-of-00003
    with pytest.raises(ModelError, match="first"):
        prepare(parts[1])


def _hf_folder(folder: Path) -> Path:
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    (folder / "tokenizer.json").write_text("{}")
    (folder / "README.md").write_text("# tiny\n")
    (folder / "LICENSE").write_text("Apache-2.0\n")
    (folder / "model.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    (folder / ".cache").mkdir()
    (folder / ".cache" / "junk").write_text("not part of the model")
    return folder


def test_a_hugging_face_folder_is_weights_weight_config_and_docs(tmp_path: Path) -> None:
    files, model_format = mp.model_files(_hf_folder(tmp_path / "tiny-hf"))
    assert model_format == "safetensors"
    artifact = mp.build_artifact(files, model_format=model_format, name="tiny-hf")
    types = {layer.name: layer.blob.media_type for layer in artifact.layers}
    assert types == {
        "LICENSE": "application/vnd.cncf.model.doc.v1.raw",
        "README.md": "application/vnd.cncf.model.doc.v1.raw",
        "config.json": "application/vnd.cncf.model.weight.config.v1.raw",
        "model.safetensors": "application/vnd.cncf.model.weight.v1.raw",
        "tokenizer.json": "application/vnd.cncf.model.weight.config.v1.raw",
    }
    assert json.loads(artifact.config)["config"]["format"] == "safetensors"


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: (p / "notes.txt").write_text("x") and p / "notes.txt", "is not a GGUF file"),
        (lambda p: p / "missing.gguf", "no such model file or folder"),
        (lambda p: _only(p / "d", {"model.safetensors": b"x"}), "no config.json"),
        (lambda p: _only(p / "d", {"config.json": b"{}"}), "neither GGUF nor safetensors"),
        (lambda p: _only(p / "d", {}), "holds no files to push"),
    ],
)
def test_what_is_not_a_model_is_refused(tmp_path: Path, make: Any, says: str) -> None:
    with pytest.raises(ModelError, match=says):
        mp.model_files(make(tmp_path))


def _only(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


@pytest.mark.parametrize(
    ("parameters", "text"),
    [(134_515_008, "134.5M"), (7_615_616_512, "7.6B"), (8_000_000_000, "8B"), (999, None),
     (1_500, "1.5K"), (None, None)],
)
def test_param_size_is_a_count_with_one_decimal_and_a_scale(
    parameters: int | None, text: str | None
) -> None:
    assert mp.param_size(parameters) == text


# -- pulling: what is accepted, what is refused before any download ---------------------------


def _doc(layers: list[dict[str, Any]], **top: Any) -> bytes:
    manifest = {
        "schemaVersion": 2,
        "mediaType": mp.OCI_MANIFEST,
        "artifactType": mp.ARTIFACT_TYPE,
        "config": {"mediaType": mp.CONFIG, "digest": "sha256:" + "c" * 64, "size": 10},
        "layers": layers,
    }
    manifest.update(top)
    return json.dumps(manifest).encode()


def _layer(media_type: str, name: str | None = "model.gguf", digest: str = "d") -> dict[str, Any]:
    layer: dict[str, Any] = {"mediaType": media_type, "digest": "sha256:" + digest * 64, "size": 5}
    if name is not None:
        layer["annotations"] = {"org.cncf.model.filepath": name}
    return layer


def test_a_pushed_manifest_parses_back_into_its_layers(tmp_path: Path) -> None:
    artifact, _ = prepare(write_single(tmp_path / "tiny.gguf"))
    parsed = mp.parse_manifest(artifact.manifest, mp.OCI_MANIFEST, "oci://r/m:1")
    assert [(x.name, x.kind, x.packing) for x in parsed.layers] == [("tiny.gguf", "weight", "raw")]
    assert parsed.config_blob == artifact.config_blob


def test_layers_by_title_tar_and_dmr_types_are_read_code_and_datasets_skipped() -> None:
    parsed = mp.parse_manifest(
        _doc([
            {**_layer(mp.DMR_WEIGHT_GGUF, None, "1"),
             "annotations": {"org.opencontainers.image.title": "m.gguf"}},
            _layer("application/vnd.cncf.model.weight.config.v1.tar+gzip", None, "2"),
            _layer("application/vnd.cncf.model.code.v1.raw", "run.py", "3"),
            _layer("application/vnd.cncf.model.dataset.v1.tar", "data", "4"),
        ]),
        mp.OCI_MANIFEST,
        "oci://r/m:1",
    )
    assert [(x.name, x.kind, x.packing) for x in parsed.layers] == [
        ("m.gguf", "weight", "raw"), ("", "weight.config", "tar+gzip")
    ]
    assert len(parsed.skipped) == 2 and "run.py" in parsed.skipped[0]


@pytest.mark.parametrize(
    ("raw", "media_type", "says"),
    [
        (_doc([_layer("application/vnd.cncf.model.weight.v1.tar+zstd")]), mp.OCI_MANIFEST,
         "has the media type application/vnd.cncf.model.weight.v1.tar+zstd, which llmdeploy "
         "does not read"),
        (_doc([_layer("application/vnd.oci.image.layer.v1.tar+gzip")],
              config={"mediaType": "application/vnd.oci.image.config.v1+json",
                      "digest": "sha256:" + "c" * 64, "size": 10}, artifactType=None),
         mp.OCI_MANIFEST, "is not a ModelPack model artifact"),
        (_doc([_layer(mp.WEIGHT_RAW)], artifactType="application/vnd.example+type"),
         mp.OCI_MANIFEST, "its type is application/vnd.example+type"),
        (b'{"schemaVersion": 2, "manifests": []}', mp.OCI_INDEX, "is an image index"),
        (_doc([_layer(mp.WEIGHT_RAW, None)]), mp.OCI_MANIFEST, "has no file name"),
        (_doc([_layer(mp.WEIGHT_RAW, "../../etc/passwd")]), mp.OCI_MANIFEST,
         "is not a file path inside a model"),
        (_doc([_layer(mp.WEIGHT_RAW, "/abs.gguf")]), mp.OCI_MANIFEST, "is not a file path"),
        (_doc([_layer(mp.WEIGHT_RAW, ".llmdeploy-model.json")]), mp.OCI_MANIFEST,
         "is not a file path"),
        (_doc([_layer(mp.WEIGHT_RAW, "a.gguf", "1"), _layer(mp.WEIGHT_RAW, "a.gguf", "2")]),
         mp.OCI_MANIFEST, "two layers are both named 'a.gguf'"),
        (_doc([_layer(mp.DOC_RAW, "README.md")]), mp.OCI_MANIFEST, "has no weight layer"),
        (_doc([]), mp.OCI_MANIFEST, "lists no layers"),
        (_doc([{"mediaType": mp.WEIGHT_RAW, "digest": "md5:x", "size": 1}]), mp.OCI_MANIFEST,
         "not a valid descriptor"),
        (b"not json", mp.OCI_MANIFEST, "is not JSON"),
    ],
)
def test_what_cannot_be_served_is_refused_before_any_blob(
    raw: bytes, media_type: str, says: str
) -> None:
    with pytest.raises(ModelError) as caught:
        mp.parse_manifest(raw, media_type, "oci://r.example/m:1")
    assert says in caught.value.message
    assert caught.value.exit_code == 4


@pytest.mark.parametrize(
    ("names", "fmt", "chosen"),
    [
        (["m.gguf"], "gguf", "m.gguf"),
        (["m-00002-of-00002.gguf", "m-00001-of-00002.gguf"], "gguf", "m-00001-of-00002.gguf"),
        (["mmproj-m.gguf", "m.gguf"], None, "m.gguf"),
        (["config.json", "model.safetensors"], "safetensors", ""),
        (["config.json", "model.safetensors"], None, ""),
    ],
)
def test_the_file_the_server_is_given(names: list[str], fmt: str | None, chosen: str) -> None:
    assert mp.model_file(names, fmt) == chosen


def test_two_gguf_models_in_one_artifact_are_ambiguous() -> None:
    with pytest.raises(ModelError, match="holds 2 GGUF models"):
        mp.model_file(["a.gguf", "b.gguf"], "gguf")
