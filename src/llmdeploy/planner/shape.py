"""What the planner needs from a model: its attention shape, size and stored format."""

from __future__ import annotations

from dataclasses import dataclass

from llmdeploy.core.attention import AttentionLayout
from llmdeploy.core.model_info import ModelInfo
from llmdeploy.errors import ModelError
from llmdeploy.planner import quant

_WEIGHT_SUFFIX_GROUPS = ((".safetensors",), (".bin", ".pt", ".pth"), (".gguf",))
_SHAPE_HINT = (
    "pass the missing figures: --arch NAME (e.g. llama-2-7b), or --layers N --kv-heads N "
    "--head-dim N, and --params 7B --quant Q4_K_M for the weights"
)


@dataclass(frozen=True)
class ModelShape:
    """The model facts the memory formulas use (resolved from a ``ModelInfo``)."""

    layers: int
    attention_heads: int | None
    hidden_size: int | None
    vocab_size: int | None
    context_length: int | None
    parameters: int | None
    weights_file_bytes: int | None  # the weight files on disk, when known
    stored_format: str | None  # canonical quantization / dtype of those files
    layout: AttentionLayout  # every layer's cache (uniform when only KV heads x head dim is known)
    tensor_bytes: int | None = None  # the weights from each tensor's stored type, when known

    @property
    def stored_bits_per_weight(self) -> float | None:
        return quant.bits_per_weight(self.stored_format)


def weight_file_bytes(file_sizes: dict[str, int]) -> int | None:
    """Bytes of the weight files among a model's files (tokenizers and configs left out).

    A repository holding both safetensors and PyTorch ``.bin`` copies counts one of them.
    """
    for suffixes in _WEIGHT_SUFFIX_GROUPS:
        picked = [size for name, size in file_sizes.items() if name.lower().endswith(suffixes)]
        if picked:
            return sum(picked)
    return None


def _layout_of(info: ModelInfo) -> AttentionLayout | None:
    """The model's per-layer layout when it agrees with its layer count (a preset or an
    explicit --layers laid over an inspected model drops it)."""
    layout = info.attention
    if layout is None or layout.count != info.layers:
        return None
    return layout


def shape_of(info: ModelInfo) -> ModelShape:
    """Resolve the attention shape; raises ModelError naming what is missing."""
    missing = []
    if not info.layers:
        missing.append("layers (--layers)")
    layout = _layout_of(info)
    attention = [lay for lay in layout.layers if lay.kv_heads] if layout else []
    head_dim = info.head_dim or max((lay.key_length for lay in attention), default=0) or None
    if not head_dim and info.hidden_size and info.attention_heads:
        head_dim = info.hidden_size // info.attention_heads
    if not head_dim and layout is None:
        missing.append("head dimension (--head-dim)")
    kv_heads = info.kv_heads or info.attention_heads
    kv_heads = kv_heads or max((lay.kv_heads for lay in attention), default=0) or None
    if not kv_heads and layout is None:
        missing.append("KV heads (--kv-heads)")
    if missing or not info.layers:
        raise ModelError(
            "cannot size the KV cache: the model's " + ", ".join(missing) + " are unknown",
            hint=_SHAPE_HINT,
        )
    hidden = info.hidden_size
    if not hidden and info.attention_heads and head_dim:
        hidden = info.attention_heads * head_dim
    if layout is None:
        assert kv_heads and head_dim  # checked above
        layout = AttentionLayout.uniform(info.layers, kv_heads, head_dim)
    return ModelShape(
        layers=info.layers,
        attention_heads=info.attention_heads,
        hidden_size=hidden,
        vocab_size=info.vocab_size,
        context_length=info.context_length,
        parameters=info.parameters,
        weights_file_bytes=weight_file_bytes(info.file_sizes),
        stored_format=quant.canonical(info.quantization) or quant.canonical(info.torch_dtype),
        layout=layout,
        tensor_bytes=quant.tensor_bytes(info.tensor_types) if info.tensor_types else None,
    )


@dataclass(frozen=True)
class WeightsEstimate:
    bytes: int
    format: str | None  # the format the weights are held in at run time
    bits_per_weight: float | None
    source: str  # how the figure was obtained, for people


def estimate_weights(shape: ModelShape, runtime_format: str | None) -> WeightsEstimate:
    """Weights memory: the real file sizes when the files are known and held as stored, else
    each tensor's stored type x its elements (a header read without the files), else parameters
    x bits per weight, else the file sizes scaled between formats.

    ``runtime_format`` is the format the server holds the weights in when it differs from
    the files (vLLM converting FP32 to FP16, online FP8, a smaller GGUF file); None = as stored.
    """
    stored = shape.stored_format
    wanted = quant.canonical(runtime_format) or stored
    files = shape.weights_file_bytes
    as_stored = runtime_format is None or wanted == stored
    if not files and shape.tensor_bytes and as_stored:
        # no files on disk (a header-only read): each tensor at its stored type, not an average
        return WeightsEstimate(
            shape.tensor_bytes, wanted, _measured_bpw(shape.tensor_bytes, shape),
            "tensor types in the file's header",
        )
    bpw = quant.bits_per_weight(wanted)
    stored_bpw = shape.stored_bits_per_weight
    if files and (wanted == stored or (bpw is not None and bpw == stored_bpw)):
        return WeightsEstimate(files, wanted, _measured_bpw(files, shape), "weight file sizes")
    if shape.parameters and bpw:
        return WeightsEstimate(
            round(shape.parameters * bpw / 8),
            wanted,
            bpw,
            f"{shape.parameters:,} parameters x {bpw:g} bits",
        )
    if files and bpw and stored_bpw:
        return WeightsEstimate(
            round(files * bpw / stored_bpw),
            wanted,
            bpw,
            f"weight file sizes x {bpw:g}/{stored_bpw:g} ({stored} -> {wanted})",
        )
    if files and runtime_format is None:
        return WeightsEstimate(files, stored, _measured_bpw(files, shape), "weight file sizes")
    what = wanted or "unknown"
    raise ModelError(
        f"cannot size the weights: no weight files on disk, and parameters "
        f"({shape.parameters or 'unknown'}) x bits per weight of {what} is not computable",
        hint=_SHAPE_HINT,
    )


def _measured_bpw(files: int, shape: ModelShape) -> float | None:
    if shape.parameters:
        return files * 8 / shape.parameters
    return shape.stored_bits_per_weight
