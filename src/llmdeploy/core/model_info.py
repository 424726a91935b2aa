"""What llmdeploy knows about a model's shape: read from GGUF metadata or config.json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from llmdeploy.core.attention import AttentionLayout

ModelFormat = Literal["gguf", "safetensors", "ollama", "unknown"]


@dataclass(frozen=True)
class ModelInfo:
    """Architecture facts the planner and ``models inspect`` need; None where unknown.

    ``quantization`` is spelled like llama.cpp's file types: Q4_1, Q4_K_M, Q8_0, F16, BF16,
    F32, MXFP4; Hugging Face folders add FP8, INT8/INT4 (compressed-tensors), AWQ-INT4,
    GPTQ-INT4, BNB-NF4, BNB-INT8.
    """

    format: ModelFormat
    architecture: str | None = None
    parameters: int | None = None  # total parameter count
    layers: int | None = None
    attention_heads: int | None = None
    kv_heads: int | None = None
    head_dim: int | None = None
    hidden_size: int | None = None
    context_length: int | None = None
    vocab_size: int | None = None
    quantization: str | None = None  # e.g. Q4_1, Q4_K_M, BF16, F16, MXFP4
    torch_dtype: str | None = None  # config.json's dtype for safetensors models
    file_sizes: dict[str, int] = field(default_factory=dict)  # relative path -> bytes
    # added with `models inspect`:
    name: str | None = None  # general.name (GGUF) or the folder's name
    tensor_types: dict[str, int] = field(default_factory=dict)  # storage type -> parameters
    has_chat_template: bool | None = None
    # every layer's cache (core.attention); None: only the uniform shape above is known
    attention: AttentionLayout | None = None

    @property
    def total_size_bytes(self) -> int:
        return sum(self.file_sizes.values())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelInfo:
        """The inverse of ``dataclasses.asdict`` (the inspection cache); TypeError or
        ValueError for a record of another shape."""
        fields = dict(data)
        raw = fields.pop("attention", None)
        return cls(**fields, attention=AttentionLayout.from_dict(raw) if raw else None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``models inspect --json``), with ``total_size_bytes``."""
        data = asdict(self)
        data["attention"] = self.attention.to_dict() if self.attention else None
        data["total_size_bytes"] = self.total_size_bytes
        return data
