"""The per-layer attention layout (``core.attention``) from GGUF metadata, as llama.cpp sees it.

What llama.cpp's loader (ggml-org/llama.cpp ``src/llama-model.cpp`` and each architecture's
``load_arch_hparams`` under ``src/models/``; sizes in ``src/llama-hparams.cpp``) makes of the
metadata, checked against the server (llama.cpp b11549 in ``xllamacpp`` 2026.10.11549) on
synthetic files of each family (``tests/e2e/test_planner_vs_llamacpp_real.py``):

- KV heads per layer: ``attention.head_count_kv``, one value or an array (``deci``, OpenELM,
  hybrids, where 0 marks a layer without attention);
- head sizes: ``attention.key_length`` / ``value_length`` (default ``embedding_length /
  head_count``); sliding-window layers use ``key_length_swa`` / ``value_length_swa`` when
  present;
- MLA (``attention.kv_lora_rank`` with ``attention.key_length_mla``): one latent "head" of
  ``key_length`` (= ``kv_lora_rank`` + rope) values per token, no V (llama.cpp's K-only MLA
  cache). Conversions without ``key_length_mla`` (older DeepSeek GGUFs) keep
  ``head_count_kv = head_count`` and are cached per head, K and V;
- sliding window: ``attention.sliding_window`` on the architectures that use it
  (``GGUF_SWA``); the layer pattern is the file's ``attention.sliding_window_pattern`` (an
  array of flags, or a period) else the architecture's period, applied by
  ``llama_hparams::set_swa_pattern``: layer ``il`` slides when ``il % n < n - 1`` (the last
  layer of each period is full), or ``il % n != 0`` for dense-first architectures. Other
  architectures ignore the window (llama/mistral/qwen2 run full attention everywhere);
- recurrent state per sequence (``llama_hparams::n_embd_r`` / ``n_embd_s``): Mamba-style
  ``(d_conv - 1) x (d_inner + 2 x n_group x d_state)`` and ``d_state x d_inner``; RWKV
  ``token_shift_count x n_embd`` and ``n_embd x wkv.head_size``; LFM2's short convolution
  ``n_embd x (l_cache - 1)``. Which layers are recurrent: all of them in Mamba/RWKV; in
  hybrids the layers with ``head_count_kv`` 0 (Jamba, Granite 4 hybrid, LFM2; Nemotron-H's
  MLP-only layers, with a feed-forward, have no cache), every layer in Falcon-H1 (attention
  and an SSM side by side), all but every ``full_attention_interval``-th in Qwen3-Next;
- ``attention.shared_kv_layers`` (Gemma 3n): the last N layers reuse earlier layers' cache.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llmdeploy.core.attention import AttentionLayout, LayerCache
from llmdeploy.models.inspect.values import as_int


@dataclass(frozen=True)
class SwaRule:
    """How an architecture's ``load_arch_hparams`` sets sliding-window attention.

    ``period``: ``load_swa_pattern(ml, period, dense_first)``'s default (None: the file's
    per-layer array only); ``window``: the window llama.cpp uses whatever the file says
    (Llama 4's chunk), else the file's ``attention.sliding_window`` or ``default_window``.
    """

    period: int | None
    dense_first: bool = False
    default_window: int | None = None
    window: int | None = None


# llama.cpp's sliding-window architectures and their patterns (src/models/<arch>.cpp,
# load_arch_hparams; before the split, llama-model.cpp load_hparams: set_swa_pattern(N))
GGUF_SWA: dict[str, SwaRule] = {
    "gemma2": SwaRule(2, default_window=4096),
    "gemma3": SwaRule(6),  # only with attention.sliding_window > 0
    "gemma3n": SwaRule(5),
    "gemma4": SwaRule(None),
    "cohere2": SwaRule(4),
    "exaone4": SwaRule(4),
    "gpt-oss": SwaRule(2),
    "llama4": SwaRule(4, window=8192),  # chunked attention, chunks of 8192
    "smallthinker": SwaRule(4, dense_first=True),
}
# architectures made only of recurrent layers (no attention at all)
GGUF_RECURRENT_ONLY = frozenset({"mamba", "mamba2", "rwkv6", "rwkv6qwen2", "rwkv7", "arwkv7"})
# hybrids whose every layer holds attention and a recurrent state side by side
GGUF_PARALLEL_HYBRID = frozenset({"falcon-h1"})
# hybrids whose recurrent layers are all but every full_attention_interval-th
GGUF_INTERVAL_HYBRID = frozenset({"qwen3next"})

Getter = Callable[[str], Any]


def _per_layer(value: Any, layers: int) -> list[int] | None:
    if isinstance(value, list):
        ints = [int(v) for v in value if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(ints) == layers:
            return ints
        return None
    single = as_int(value)
    return None if single is None else [single] * layers


def swa_layers(pattern: Any, rule: SwaRule, layers: int) -> list[bool]:
    """Which layers slide: the file's per-layer flags, else ``set_swa_pattern`` with the
    file's period or the architecture's (``llama-hparams.cpp``)."""
    if isinstance(pattern, list):
        flags = [bool(v) for v in pattern[:layers]]
        return flags + [False] * (layers - len(flags))
    n = as_int(pattern) or rule.period
    if not n or n < 1:
        return [False] * layers
    if rule.dense_first:
        return [il % n != 0 for il in range(layers)]
    return [il % n < n - 1 for il in range(layers)]


def layout_from_gguf(arch: str | None, get: Getter) -> AttentionLayout | None:
    """The layout llama.cpp builds from a GGUF's metadata; ``get(name)`` returns the value of
    ``{arch}.{name}`` (None when absent). None when the layer count is unknown."""
    layers = as_int(get("block_count"))
    if not layers:
        return None
    arch = arch or ""
    heads = as_int(get("attention.head_count")) or 0
    hidden = as_int(get("embedding_length")) or 0
    kv = _per_layer(get("attention.head_count_kv"), layers) or [heads] * layers
    key_len = as_int(get("attention.key_length")) or (hidden // heads if heads else 0)
    value_len = as_int(get("attention.value_length")) or key_len
    notes: list[str] = []
    experts = _experts(get)
    mla_rank = as_int(get("attention.kv_lora_rank"))
    if mla_rank and get("attention.key_length_mla") is not None:
        one = LayerCache(
            "mla", kv_heads=1, key_length=as_int(get("attention.key_length_mla")) or 0,
            value_length=as_int(get("attention.value_length_mla")) or 0,
            kv_lora_rank=mla_rank, rope_dim=max(key_len - mla_rank, 0),
        )
        return AttentionLayout(tuple(one for _ in range(layers)), "gguf", *experts)
    if mla_rank:
        notes.append(
            "an MLA model converted before llama.cpp cached its latent (no "
            "attention.key_length_mla): llama.cpp caches K and V per head; re-converting "
            "the GGUF shrinks the cache to the latent"
        )
    state = _recurrent_state(get, hidden)
    recurrent = _recurrent_layers(arch, get, kv, state is not None, layers)
    sliding, window = _sliding(arch, get, layers, notes)
    swa_key = as_int(get("attention.key_length_swa")) or key_len
    swa_value = as_int(get("attention.value_length_swa")) or swa_key
    shared = as_int(get("attention.shared_kv_layers")) or 0
    ff = _per_layer(get("feed_forward_length"), layers)
    conv, ssm = state or (0, 0)
    result: list[LayerCache] = []
    for il in range(layers):
        if il >= layers - shared:
            result.append(LayerCache("none"))
        elif arch in GGUF_PARALLEL_HYBRID and kv[il]:
            result.append(LayerCache("full", kv[il], key_len, value_len,
                                     conv_state=conv, ssm_state=ssm))
        elif recurrent[il]:
            result.append(LayerCache("recurrent", conv_state=conv, ssm_state=ssm))
        elif kv[il] == 0 or (arch.startswith("nemotron_h") and ff is not None and ff[il]):
            result.append(LayerCache("none"))
        elif sliding[il]:
            result.append(LayerCache("sliding", kv[il], swa_key, swa_value, window=window))
        else:
            result.append(LayerCache("full", kv[il], key_len, value_len))
    return AttentionLayout(tuple(result), "gguf", *experts, notes=tuple(notes))


def _sliding(arch: str, get: Getter, layers: int, notes: list[str]) -> tuple[list[bool], int]:
    """(sliding flag per layer, window) as the architecture's loader sets them."""
    window = as_int(get("attention.sliding_window"))
    rule = GGUF_SWA.get(arch)
    if rule is None:
        if window:
            notes.append(f"sliding_window {window} in the file, but llama.cpp runs {arch} with "
                         "full attention on every layer")
        return [False] * layers, 0
    if rule.window is not None:
        if window == 0:  # Llama 4 converted without chunked attention
            return [False] * layers, 0
        window = rule.window
    window = window if window is not None else rule.default_window
    if not window:
        return [False] * layers, 0
    return swa_layers(get("attention.sliding_window_pattern"), rule, layers), window


def _recurrent_layers(
    arch: str, get: Getter, kv: list[int], has_state: bool, layers: int
) -> list[bool]:
    if arch in GGUF_RECURRENT_ONLY:
        return [True] * layers
    if not has_state or arch in GGUF_PARALLEL_HYBRID:
        return [False] * layers
    if arch in GGUF_INTERVAL_HYBRID:
        interval = as_int(get("full_attention_interval")) or 4
        return [(il + 1) % interval != 0 for il in range(layers)]
    ff = _per_layer(get("feed_forward_length"), layers)
    if arch.startswith("nemotron_h") and ff is not None:  # MLP-only layers hold no state
        return [kv[il] == 0 and ff[il] == 0 for il in range(layers)]
    return [n == 0 for n in kv]


def _recurrent_state(get: Getter, hidden: int) -> tuple[int, int] | None:
    """(``n_embd_r``, ``n_embd_s``): values per sequence of a recurrent layer, or None."""
    wkv = as_int(get("wkv.head_size"))
    if wkv:  # RWKV
        shifts = as_int(get("token_shift_count")) or 2
        return shifts * hidden, hidden * wkv
    l_cache = as_int(get("shortconv.l_cache"))
    if l_cache:  # LFM2's short convolution
        return hidden * max(l_cache - 1, 0), 0
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
