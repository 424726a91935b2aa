"""vLLM's KV cache (V1 engine): paged blocks per layer, sized from the model's layout.

Rules, from ``vllm/v1/kv_cache_interface.py`` and ``vllm/v1/core/kv_cache_utils.py``:

- a full-attention layer's page holds ``block_size`` tokens x ``2 x num_kv_heads x head_size``
  values in the cache dtype; with tensor parallelism each GPU holds ``ceil(kv_heads / tp)``
  heads (at least one: heads are replicated when tp exceeds them);
- MLA: one latent "head" of ``kv_lora_rank + qk_rope_head_dim`` values per token, no V, and
  replicated on every tensor-parallel rank;
- sliding-window layers need at most ``window`` tokens (plus one block) per sequence;
- recurrent (Mamba) layers one state per sequence.
"""

from __future__ import annotations

import math

from llmdeploy.core.attention import AttentionLayout
from llmdeploy.planner import constants as c
from llmdeploy.planner.kv_cache import KvCacheFigure, element_bytes
from llmdeploy.planner.spec import ServingSpec


def _block_tokens(spec: ServingSpec) -> int:
    return c.VLLM_BLOCK_TOKENS[spec.device]


def _per_token(layout: AttentionLayout, spec: ServingSpec) -> dict[str, float]:
    """Bytes per token of each attention kind, over all tensor-parallel ranks."""
    k_bytes, _ = element_bytes(spec)
    tp = max(spec.tensor_parallel_size, 1)
    found: dict[str, float] = {}
    for layer in layout.layers:
        if layer.kind == "mla":
            found["mla"] = found.get("mla", 0) + layer.latent_length * k_bytes * tp
        elif layer.kind in ("full", "sliding"):
            heads = max(1, math.ceil(layer.kv_heads / tp)) * tp
            row = heads * (layer.key_length + layer.value_length) * k_bytes
            found[layer.kind] = found.get(layer.kind, 0) + row
    return found


def vllm_kv_cache(layout: AttentionLayout, spec: ServingSpec) -> KvCacheFigure:
    """The cache the worst case needs: every sequence at ``max_model_len`` at once."""
    rows = _per_token(layout, spec)
    context, sequences = spec.context_per_sequence, max(spec.sequences, 1)
    by_kind: dict[str, float] = {}
    for kind, row in rows.items():
        tokens = context
        if kind == "sliding":
            window = max((lay.window or context) for lay in layout.layers if lay.kind == kind)
            tokens = min(context, window + _block_tokens(spec))
        by_kind[kind] = row * tokens * sequences
    recurrent = sum(
        (lay.conv_state + lay.ssm_state) for lay in layout.layers if lay.kind == "recurrent"
    )
    if recurrent:
        by_kind["recurrent"] = recurrent * element_bytes(spec)[0] * sequences
    per_token = rows.get("full", 0) + rows.get("mla", 0)
    rounded = {kind: round(value) for kind, value in by_kind.items()}
    return KvCacheFigure(sum(rounded.values()), round(per_token), rounded, "vLLM")


def vllm_capacity_tokens(layout: AttentionLayout, spec: ServingSpec, kv_bytes: int) -> int:
    """Tokens vLLM reports its cache holds ("KV cache size: N tokens") for ``kv_bytes``."""
    rows = _per_token(layout, spec)
    per_token = sum(rows.values())
    block = _block_tokens(spec)
    if kv_bytes <= 0 or per_token <= 0:
        return 0
    return int(kv_bytes // (per_token * block) * block)
