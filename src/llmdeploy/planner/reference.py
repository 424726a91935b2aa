"""What a model reference alone tells, for planning a model that is not downloaded yet."""

from __future__ import annotations

from dataclasses import replace

from llmdeploy.core.model_formats import format_of_ref
from llmdeploy.core.model_info import ModelInfo
from llmdeploy.core.model_ref import ModelRef, parse_ref
from llmdeploy.planner import quant
from llmdeploy.planner.presets import parameters_in_name, preset_for_name


def info_from_reference(
    ref: ModelRef | str, file_sizes: dict[str, int] | None = None
) -> ModelInfo:
    """A ``ModelInfo`` guessed from a reference's name: a known architecture's published
    shape when the name matches a preset, the quantization and parameter count the file or
    repository name announces (``llama-2-7b.Q4_K_M.gguf``), and ``file_sizes`` when known."""
    ref = parse_ref(ref)
    fmt = format_of_ref(ref)
    path = f"{ref.repo}/{ref.leaf}" if ref.scheme == "hf" else ref.location
    found = preset_for_name(path)
    base = found[1] if found else ModelInfo(format=fmt)
    return replace(
        base,
        format=fmt,
        quantization=quant.quant_in_name(ref.leaf) or base.quantization,
        parameters=base.parameters or parameters_in_name(path),
        file_sizes=dict(file_sizes or {}),
    )
