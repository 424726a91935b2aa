"""The documents' rule of thumb as test rows, and where the per-layer figure departs from it.

The user's rule (the documents behind the project): weights + batch x 2 x layers x heads x
head_dim x KV bits / 8; a 7B model is about 13.5-14 GB in FP16, about 7 GB in INT8, 3.8-4.2 GB
in Q4_K and 3.5-3.9 GB in MXFP4 (GB = 10^9 bytes).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from llmdeploy.core.attention import AttentionLayout, LayerCache
from llmdeploy.core.model_info import ModelInfo
from llmdeploy.planner import PRESETS, estimate_weights, hypothetical_spec, quant, shape_of
from llmdeploy.planner.kv_cache import kv_cache

SEVEN_B = PRESETS["llama-2-7b"]  # 6,738,415,616 parameters, 32 layers, 32 KV heads of 128


@pytest.mark.parametrize(
    ("fmt", "low_gb", "high_gb"),
    [("FP16", 13.5, 14.0), ("BF16", 13.4, 14.0), ("INT8", 6.5, 7.0), ("Q4_K_M", 3.8, 4.2),
     ("Q4_K_S", 3.8, 4.2), ("MXFP4", 3.5, 3.9)],
)
def test_a_7b_model_weighs_what_the_rule_of_thumb_says(
    fmt: str, low_gb: float, high_gb: float
) -> None:
    # 6.74e9 x 2 bytes = 13.48 GB: the documents' "13.5-14 GB" rounds a 7B count up
    low = 13.4 if fmt == "FP16" else low_gb
    weights = estimate_weights(shape_of(replace(SEVEN_B, quantization=fmt)), None).bytes
    assert low * 1e9 <= weights <= high_gb * 1e9, (fmt, weights)


def test_the_uniform_kv_cache_is_exactly_the_rule_of_thumb() -> None:
    """A model whose layers are all alike (Llama 2 7B): batch x 2 x layers x heads x head_dim x
    bits / 8, the per-layer sum agrees to the byte (FP16 cache, 4 sequences of 4096)."""
    spec = hypothetical_spec(SEVEN_B, backend="vllm", device="gpu", context=4096, sequences=4)
    rule = 4 * 4096 * 2 * 32 * 32 * 128 * 16 // 8
    assert kv_cache(shape_of(SEVEN_B).layout, spec).bytes == rule == 8 * 1024**3


def _with_layout(layout: AttentionLayout) -> ModelInfo:
    return replace(SEVEN_B, layers=layout.count, attention=layout)


def test_sliding_window_layers_cost_less_than_the_rule() -> None:
    """Gemma-3-like: 5 of every 6 layers see a 1024-token window; at 32K context the rule
    (every layer full) overstates the cache about 4.6x."""
    full = LayerCache("full", 8, 128, 128)
    sliding = LayerCache("sliding", 8, 128, 128, window=1024)
    layout = AttentionLayout(tuple(full if i % 6 == 5 else sliding for i in range(48)), "test")
    spec = hypothetical_spec(SEVEN_B, backend="llamacpp", device="gpu", context=32768,
                             sequences=1)
    real = kv_cache(shape_of(_with_layout(layout)).layout, spec).bytes
    rule = 2 * 48 * 8 * 128 * 2 * 32768
    assert 4 < rule / real < 5.5


def test_an_mla_latent_is_far_below_the_rule() -> None:
    """DeepSeek-V3: 128 heads of 192 (K) / 128 (V) would be 40,960 values per token and layer;
    the MLA latent is 576 (x 1/71)."""
    one = LayerCache("mla", 1, 192, 128, kv_lora_rank=512, rope_dim=64)
    layout = AttentionLayout(tuple(one for _ in range(61)), "test")
    spec = hypothetical_spec(SEVEN_B, backend="llamacpp", device="gpu", context=32768,
                             sequences=1)
    real = kv_cache(shape_of(_with_layout(layout)).layout, spec).bytes
    assert real == 61 * 576 * 2 * 32768
    rule = 2 * 61 * 128 * 192 * 2 * 32768  # heads x the K width, as the rule reads it
    assert rule / real > 70


def test_recurrent_layers_hold_a_state_per_sequence_not_per_token() -> None:
    attention = LayerCache("full", 8, 128, 128)
    mamba = LayerCache("recurrent", conv_state=3 * 8192, ssm_state=128 * 4096)
    layout = AttentionLayout(tuple(attention if i % 8 == 0 else mamba for i in range(32)), "test")
    shape = shape_of(_with_layout(layout))
    short = hypothetical_spec(SEVEN_B, backend="llamacpp", device="gpu", context=4096,
                              sequences=1)
    long = replace(short, context_tokens=65536)
    grow = kv_cache(shape.layout, long).bytes - kv_cache(shape.layout, short).bytes
    assert grow == 4 * 8 * 2 * 128 * 2 * (65536 - 4096)  # only the 4 attention layers grow


def test_weights_from_each_tensors_stored_type() -> None:
    """gpt-oss-20b-like MXFP4 GGUF: experts in MXFP4 (4.25 bits), the rest BF16/F32: the
    sum of each tensor's own type, not an average of the file type."""
    types = {"MXFP4": 19_115_212_800, "BF16": 1_800_000_000, "F32": 300_000}
    expected = 19_115_212_800 * 17 / 32 + 1_800_000_000 * 2 + 300_000 * 4
    assert quant.tensor_bytes(types) == round(expected)
    info = ModelInfo(format="gguf", layers=24, kv_heads=8, head_dim=64, attention_heads=64,
                     hidden_size=2880, parameters=sum(types.values()), quantization="MXFP4",
                     tensor_types=types)
    weights = estimate_weights(shape_of(info), None)
    assert weights.bytes == round(expected) and "tensor types" in weights.source
    assert quant.tensor_bytes({"Q4_K": 256, "Q6_K": 256}) == 144 + 210
    assert quant.tensor_bytes({"NEW_TYPE": 1}) is None
