"""The per-layer attention layout (``core.attention``) from GGUF metadata, as llama.cpp sees it.

Per-layer ``attention.head_count_kv`` arrays (0: a recurrent or cache-less layer),
``key_length`` / ``value_length``, MLA as llama.cpp caches it (only GGUFs converted with
``attention.key_length_mla``: older DeepSeek conversions are cached per head), sliding-window
layers from ``attention.sliding_window`` and the architecture's layer pattern (llama.cpp sets it
per architecture in ``llama-model.cpp``: ``set_swa_pattern(n)`` makes every layer ``il`` with
``il % n < n - 1`` a sliding one; a GGUF may state the pattern as an array), Mamba-style state
sizes from ``ssm.*`` (``n_embd_r = (d_conv - 1) x (d_inner + 2 x n_group x d_state)``,
``n_embd_s = d_state x d_inner``, llama.cpp's ``llama_hparams``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llmdeploy.core.attention import AttentionLayout, LayerCache, LayerKind
from llmdeploy.models.inspect.values import as_int

# llama.cpp's sliding-window layer pattern per architecture (llama-model.cpp, load_hparams:
# hparams.set_swa_pattern(N)); architectures not listed run every layer with full attention
# even when the GGUF states a window (llama.cpp's llama/mistral ignore it).
GGUF_SWA_PERIOD: dict[str, int] = {
    "gemma2": 2,
    "gemma3": 6,
    "gemma3n": 5,
    "cohere2": 4,
    "gpt-oss": 2,
    "exaone4": 4,
}
# architectures made only of recurrent layers (no attention at all)
GGUF_RECURRENT_ONLY = frozenset({"mamba", "mamba2", "rwkv6", "rwkv6qwen2", "rwkv7", "arwkv7"})

Getter = Callable[[str], Any]


def _per_layer(value: Any, layers: int) -> list[int] | None:
    if isinstance(value, list):
        ints = [int(v) for v in value if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(ints) == layers:
            return ints
        return None
    single = as_int(value)
    return None if single is None else [single] * layers


def _swa_flags(pattern: Any, period: int | None, layers: int) -> list[bool]:
    if isinstance(pattern, list) and len(pattern) == layers:
        return [bool(v) for v in pattern]
    n = as_int(pattern) or period
    if not n or n < 1:
        return [False] * layers
    return [il % n < n - 1 for il in range(layers)]


def layout_from_gguf(arch: str | None, get: Getter) -> AttentionLayout | None:
    """The layout llama.cpp builds from a GGUF's metadata; ``get(name)`` returns the value of
    ``{arch}.{name}`` (None when absent). None when the layer count is unknown."""
    layers = as_int(get("block_count"))
    if not layers:
        return None
    heads = as_int(get("attention.head_count")) or 0
    hidden = as_int(get("embedding_length")) or 0
    kv = _per_layer(get("attention.head_count_kv"), layers) or [heads] * layers
    key_len = as_int(get("attention.key_length")) or (hidden // heads if heads else 0)
    value_len = as_int(get("attention.value_length")) or key_len
    notes: list[str] = []
    mla_rank = as_int(get("attention.kv_lora_rank"))
    if mla_rank and get("attention.key_length_mla") is not None:
        rope = as_int(get("rope.dimension_count")) or max(key_len - mla_rank, 0)
        one = LayerCache(
            "mla", kv_heads=1, key_length=as_int(get("attention.key_length_mla")) or 0,
            value_length=as_int(get("attention.value_length_mla")) or 0,
            kv_lora_rank=mla_rank, rope_dim=rope,
        )
        return AttentionLayout(
            tuple(one for _ in range(layers)), "gguf", *_experts(get), notes=tuple(notes)
        )
    if mla_rank:
        notes.append(
            "an MLA model converted before llama.cpp cached its latent (no "
            "attention.key_length_mla): llama.cpp caches K and V per head; re-converting "
            "the GGUF shrinks the cache to the latent"
        )
    ssm = _ssm_state(get, hidden)
    window = as_int(get("attention.sliding_window"))
    period = GGUF_SWA_PERIOD.get(arch or "")
    sliding = (
        _swa_flags(get("attention.sliding_window_pattern"), period, layers)
        if window
        else [False] * layers
    )
    if window and period is None and get("attention.sliding_window_pattern") is None:
        notes.append(f"sliding_window {window} in the file, but llama.cpp runs {arch} with full "
                     "attention on every layer")
    result: list[LayerCache] = []
    for il in range(layers):
        if arch in GGUF_RECURRENT_ONLY or (kv[il] == 0 and ssm is not None):
            conv, state = ssm or (0, 0)
            result.append(LayerCache("recurrent", conv_state=conv, ssm_state=state))
            continue
        if kv[il] == 0:
            result.append(LayerCache("none"))
            continue
        kind: LayerKind = "sliding" if sliding[il] else "full"
        result.append(
            LayerCache(kind, kv[il], key_len, value_len, window=window if sliding[il] else None)
        )
    return AttentionLayout(tuple(result), "gguf", *_experts(get), notes=tuple(notes))


def _ssm_state(get: Getter, hidden: int) -> tuple[int, int] | None:
    """(conv state, ssm state) values per sequence of a Mamba-style layer, or None."""
    d_conv = as_int(get("ssm.conv_kernel"))
    d_inner = as_int(get("ssm.inner_size"))
    d_state = as_int(get("ssm.state_size"))
    if d_conv is None and d_inner is None and d_state is None:
        return None
    groups = as_int(get("ssm.group_count")) or 0
    d_conv, d_inner, d_state = d_conv or 0, d_inner or hidden, d_state or 0
    conv = max(d_conv - 1, 0) * (d_inner + 2 * groups * d_state)
    return conv, d_state * d_inner


def _experts(get: Getter) -> tuple[int | None, int | None]:
    return as_int(get("expert_count")), as_int(get("expert_used_count"))
