"""What llmdeploy knows about a model's shape: read from GGUF metadata or config.json."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ModelFormat = Literal["gguf", "safetensors", "ollama", "unknown"]


@dataclass(frozen=True)
class ModelInfo:
    """Architecture facts the planner and ``models inspect`` need; None where unknown."""

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
    quantization: str | None = None  # e.g. Q4_1, Q4_K_M, BF16, FP16, MXFP4
    torch_dtype: str | None = None  # config.json's dtype for safetensors models
    file_sizes: dict[str, int] = field(default_factory=dict)  # relative path -> bytes

    @property
    def total_size_bytes(self) -> int:
        return sum(self.file_sizes.values())
