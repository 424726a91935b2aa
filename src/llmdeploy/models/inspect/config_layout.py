"""The per-layer attention layout (``core.attention``) from config.json, as vLLM sees it.

vLLM reads config.json through transformers' config classes and builds one KV-cache spec per
layer (``planner.kv_vllm``); this reader follows the same keys (vLLM 0.32.0, transformers 5):

- layer kinds: ``layer_types`` (``full_attention``, ``sliding_attention``, ``linear_attention``
  (gated DeltaNet), ``mamba``, ``conv`` (LFM2 short convolutions)), ``layers_block_type``,
  ``hybrid_override_pattern`` (Nemotron-H), ``attn_layer_period`` / ``attn_layer_offset``
  (Jamba), ``full_attention_interval`` (Qwen3-Next: every 4th layer full);
- sliding windows without ``layer_types``: the Gemma 2 (every other layer) and Gemma 3
  (``sliding_window_pattern``) patterns as transformers' configs expand them; Qwen2's
  ``use_sliding_window`` with ``max_window_layers`` (the first N full); else every layer slides
  (Mistral, Phi-3: vLLM's ``EngineArgs.create_engine_config`` sets the model-wide window when
  ``layer_types`` is absent). ``chunked_attention`` (Llama 4) counts as full: vLLM turns the
  hybrid KV-cache manager off for chunked local attention (``VllmConfig.__post_init__``), so
  those layers get full-attention blocks;
- MLA (``kv_lora_rank``): one latent of ``kv_lora_rank + qk_rope_head_dim`` values per token
  (``MLAAttention.get_kv_cache_spec``: ``num_kv_heads=1``, no V);
- recurrent state per sequence (``model_executor/layers/mamba/mamba_utils.py``,
  ``MambaStateShapeCalculator``): Mamba-1/2 ``conv = (d_conv - 1) x (d_inner + 2 x groups x
  d_state)``, ``ssm = d_inner x d_state``; gated DeltaNet ``conv = (kernel - 1) x (2 x k_heads x
  k_dim + v_heads x v_dim)``, ``ssm = v_heads x v_dim x k_dim``; short conv ``conv = (L_cache -
  1) x conv_dim``; ``LayerCache.mixer`` names the family;
- MoE expert counts (reports only).
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
    "chunked_attention": "full",  # vLLM: hybrid manager off, full-attention blocks
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
    window = as_int(config.get("sliding_window"))
    conv, state, mixer = _config_ssm_state(config, hidden)
    result: list[LayerCache] = []
    for kind in kinds:
        if kind == "recurrent":
            result.append(LayerCache("recurrent", conv_state=conv, ssm_state=state, mixer=mixer))
        elif kind == "none":
            result.append(LayerCache("none"))
        else:
            result.append(LayerCache(kind, kv_heads, head_dim, value_dim,
                                     window=window if kind == "sliding" else None))
    return AttentionLayout(tuple(result), "config.json", experts, experts_used)


def _config_ssm_state(config: Mapping[str, Any], hidden: int) -> tuple[int, int, str]:
    """(conv, ssm, mixer) of one recurrent layer from config.json: its state values per
    sequence, as vLLM's ``MambaStateShapeCalculator`` (``model_executor/layers/mamba/
    mamba_utils.py``) shapes them, and its family: gated DeltaNet
    (``gated_delta_net_state_shape``), short convolutions (``short_conv_state_shape``,
    ``conv_dim`` wide), Mamba-2 (``mamba2_state_shape``: configs with groups or heads) or
    Mamba-1 (``mamba1_state_shape``: the same without groups)."""
    gdn = _gdn_state(config)
    if gdn is not None:
        return (*gdn, "gdn")
    l_cache = _config_int(config, "conv_L_cache")  # LFM2
    if l_cache:
        width = _config_int(config, "conv_dim") or hidden
        return max(l_cache - 1, 0) * width, 0, "short_conv"
    d_conv = _config_int(config, "mamba_d_conv", "conv_kernel", "d_conv") or 0
    d_state = _config_int(config, "mamba_d_state", "state_size", "d_state", "ssm_state_size") or 0
    groups = _config_int(config, "mamba_n_groups", "n_groups", "ngroups", "mamba_ngroups")
    expand = _config_int(config, "mamba_expand", "expand") or 2
    heads = _config_int(config, "mamba_n_heads", "mamba_num_heads", "num_heads_mamba")
    head_dim = _config_int(config, "mamba_d_head", "mamba_head_dim")
    d_inner = _config_int(config, "mamba_d_inner", "intermediate_size_mamba") or (
        heads * head_dim if heads and head_dim else expand * hidden
    )
    conv = max(d_conv - 1, 0) * (d_inner + 2 * (groups or 0) * d_state)
    mixer = "mamba2" if groups is not None or heads is not None else "mamba1"
    return conv, d_inner * d_state, mixer


def _gdn_state(config: Mapping[str, Any]) -> tuple[int, int] | None:
    """Gated DeltaNet (Qwen3-Next, Qwen3.5): ``linear_*`` keys, or None."""
    k_heads = _config_int(config, "linear_num_key_heads")
    v_heads = _config_int(config, "linear_num_value_heads")
    k_dim = _config_int(config, "linear_key_head_dim")
    v_dim = _config_int(config, "linear_value_head_dim")
    kernel = _config_int(config, "linear_conv_kernel_dim")
    if not (k_heads and v_heads and k_dim and v_dim and kernel):
        return None
    conv = (kernel - 1) * (2 * k_heads * k_dim + v_heads * v_dim)
    return conv, v_heads * v_dim * k_dim
