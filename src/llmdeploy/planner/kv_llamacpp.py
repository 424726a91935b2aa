"""llama.cpp's KV cache (llama-server, and Ollama, which runs llama.cpp's engine).

Rules, from llama.cpp's ``src/llama-kv-cache*.cpp`` / ``llama-memory-recurrent.cpp``:

- one cache of ``n_ctx`` cells (``ctx_size``) shared by all slots (``parallel``);
- a full-attention layer holds ``n_embd_k_gqa(il) = key_length x head_count_kv(il)`` K values
  and ``n_embd_v_gqa(il)`` V values per cell, each in its cache type (``--cache-type-k/-v``;
  q8_0 = 34 bytes per 32 values);
- MLA (GGUFs with ``key_length_mla``): K holds the latent (``kv_lora_rank + rope``) and no V
  cache is allocated;
- sliding-window layers (``llama_kv_cache_iswa``) hold ``min(n_ctx, n_swa x n_seq + n_ubatch)``
  cells instead of ``n_ctx``;
- recurrent layers hold ``n_embd_r + n_embd_s`` float32 values per sequence.
"""

from __future__ import annotations

from llmdeploy.core.attention import AttentionLayout
from llmdeploy.planner.kv_cache import KvCacheFigure, element_bytes
from llmdeploy.planner.spec import ServingSpec

RECURRENT_STATE_BYTES = 4  # float32 r and s states (llama.cpp's default type_r / type_s)


def llamacpp_kv_cache(layout: AttentionLayout, spec: ServingSpec) -> KvCacheFigure:
    k_bytes, v_bytes = element_bytes(spec)
    cells = spec.kv_tokens
    sequences = max(spec.sequences, 1)
    by_kind: dict[str, float] = {}
    per_token = 0.0
    for layer in layout.layers:
        if layer.kind == "mla":
            row = layer.latent_length * k_bytes
            by_kind["mla"] = by_kind.get("mla", 0) + row * cells
            per_token += row
        elif layer.kind in ("full", "sliding"):
            row = layer.kv_heads * (layer.key_length * k_bytes + layer.value_length * v_bytes)
            layer_cells = cells
            if layer.kind == "sliding" and layer.window:
                layer_cells = min(cells, layer.window * sequences + spec.step_tokens)
            by_kind[layer.kind] = by_kind.get(layer.kind, 0) + row * layer_cells
            if layer_cells == cells:
                per_token += row
        elif layer.kind == "recurrent":
            state = (layer.conv_state + layer.ssm_state) * RECURRENT_STATE_BYTES * sequences
            by_kind["recurrent"] = by_kind.get("recurrent", 0) + state
    rounded = {kind: round(value) for kind, value in by_kind.items()}
    return KvCacheFigure(sum(rounded.values()), round(per_token), rounded, "llama.cpp")
