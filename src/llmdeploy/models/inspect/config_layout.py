"""The per-layer attention layout (``core.attention``) from config.json, as vLLM and
transformers see it: ``layer_types``, ``sliding_window`` (+ the Gemma patterns), ``kv_lora_rank``
/ ``qk_rope_head_dim`` (MLA), ``v_head_dim``, hybrid patterns (``layer_types``,
``layers_block_type``, ``hybrid_override_pattern``, ``attn_layer_period``), MoE expert counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llmdeploy.core.attention import AttentionLayout, LayerCache, LayerKind
from llmdeploy.models.inspect.values import as_int

_LAYER_TYPE_KINDS: dict[str, LayerKind] = {
    "full_attention": "full",
    "attention": "full",
    "global": "full",
    "sliding_attention": "sliding",
    "sliding": "sliding",
    "local": "sliding",
    "chunked_attention": "sliding",
    "mamba": "recurrent",
    "mamba2": "recurrent",
    "linear_attention": "recurrent",
    "conv": "recurrent",
}


def _config_int(config: Mapping[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = as_int(config.get(key))
        if value is not None:
            return value
    return None


def _layer_kinds(config: Mapping[str, Any], layers: int) -> list[LayerKind] | None:
    """The per-layer kinds a config states, or None (every layer alike)."""
    for key in ("layer_types", "layers_block_type"):
        types = config.get(key)
        if isinstance(types, Sequence) and not isinstance(types, str) and len(types) == layers:
            return [_LAYER_TYPE_KINDS.get(str(t).lower(), "full") for t in types]
    pattern = config.get("hybrid_override_pattern")  # Nemotron-H: M (Mamba), * (attention), -
    if isinstance(pattern, str) and len(pattern) == layers:
        symbols: dict[str, LayerKind] = {"M": "recurrent", "*": "full"}
        return [symbols.get(c, "none") for c in pattern]
    period = as_int(config.get("attn_layer_period"))  # Jamba
    if period and config.get("attn_layer_offset") is not None:
        offset = as_int(config.get("attn_layer_offset")) or 0
        return ["full" if i % period == offset else "recurrent" for i in range(layers)]
    interval = as_int(config.get("full_attention_interval"))  # Qwen3-Next
    if interval:
        return ["full" if (i + 1) % interval == 0 else "recurrent" for i in range(layers)]
    return None


def _sliding_kinds(config: Mapping[str, Any], layers: int) -> list[LayerKind] | None:
    window = as_int(config.get("sliding_window"))
    if not window or config.get("use_sliding_window") is False:
        return None
    model_type = str(config.get("model_type") or "")
    period = as_int(config.get("sliding_window_pattern"))
    if period is None and model_type in ("gemma2",):
        period = 2
    if period:
        return ["sliding" if i % period < period - 1 else "full" for i in range(layers)]
    max_window_layers = as_int(config.get("max_window_layers"))  # Qwen2: the first N are full
    if max_window_layers is not None and config.get("use_sliding_window"):
        return ["full" if i < max_window_layers else "sliding" for i in range(layers)]
    return ["sliding"] * layers  # Mistral-style: every layer


def layout_from_config(config: Mapping[str, Any]) -> AttentionLayout | None:
    """The layout config.json states (the text model's numbers); None without a layer count."""
    layers = _config_int(config, "num_hidden_layers", "n_layer", "num_layers", "n_layers")
    if not layers:
        return None
    heads = _config_int(config, "num_attention_heads", "n_head", "num_heads") or 0
    kv_heads = _config_int(config, "num_key_value_heads", "n_head_kv", "num_kv_heads")
    if kv_heads is None and config.get("multi_query"):
        kv_heads = 1
    kv_heads = kv_heads or heads
    hidden = _config_int(config, "hidden_size", "n_embd", "d_model") or 0
    head_dim = _config_int(config, "head_dim") or (hidden // heads if heads else 0)
    value_dim = _config_int(config, "v_head_dim") or head_dim
    experts = _config_int(config, "num_experts", "num_local_experts", "n_routed_experts")
    experts_used = _config_int(config, "num_experts_per_tok", "moe_topk", "top_k")
    rank = _config_int(config, "kv_lora_rank")
    if rank:
        rope = _config_int(config, "qk_rope_head_dim") or 0
        nope = _config_int(config, "qk_nope_head_dim") or 0
        one = LayerCache("mla", kv_heads=1, key_length=nope + rope, value_length=value_dim,
                         kv_lora_rank=rank, rope_dim=rope)
        return AttentionLayout(tuple(one for _ in range(layers)), "config.json", experts,
                               experts_used)
    kinds = _layer_kinds(config, layers) or _sliding_kinds(config, layers) or ["full"] * layers
    window = as_int(config.get("sliding_window")) or as_int(config.get("attention_chunk_size"))
    conv, state = _config_ssm_state(config, hidden)
    result: list[LayerCache] = []
    for kind in kinds:
        if kind == "recurrent":
            result.append(LayerCache("recurrent", conv_state=conv, ssm_state=state))
        elif kind == "none":
            result.append(LayerCache("none"))
        else:
            result.append(LayerCache(kind, kv_heads, head_dim, value_dim,
                                     window=window if kind == "sliding" else None))
    return AttentionLayout(tuple(result), "config.json", experts, experts_used)


def _config_ssm_state(config: Mapping[str, Any], hidden: int) -> tuple[int, int]:
    """(conv, ssm) state values per sequence of a Mamba-2 style layer from config.json."""
    d_conv = _config_int(config, "mamba_d_conv", "conv_kernel", "d_conv",
                         "linear_conv_kernel_dim") or 0
    d_state = _config_int(config, "mamba_d_state", "state_size", "d_state", "ssm_state_size") or 0
    groups = _config_int(config, "mamba_n_groups", "n_groups", "ngroups") or 0
    expand = _config_int(config, "mamba_expand", "expand") or 2
    heads = _config_int(config, "mamba_n_heads", "num_heads_mamba")
    head_dim = _config_int(config, "mamba_d_head", "mamba_head_dim")
    d_inner = _config_int(config, "mamba_d_inner", "intermediate_size_mamba") or (
        heads * head_dim if heads and head_dim else expand * hidden
    )
    conv = max(d_conv - 1, 0) * (d_inner + 2 * groups * d_state)
    return conv, d_inner * d_state
