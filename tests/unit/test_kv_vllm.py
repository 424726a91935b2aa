"""vLLM's KV-cache rules (``planner.kv_vllm``) on the synthetic configs of ``tests/data/vllm_kv``.

The token counts are vLLM 0.32.0's own startup lines ("CPU KV cache size: N tokens, Maximum
concurrency for L tokens per request: Cx") from its CPU image with VLLM_CPU_KVCACHE_SPACE=1,
as ``tests/data/vllm_kv/cases.json`` records them; ``tests/e2e/test_planner_vs_vllm_real.py``
re-reads them from the real server and fails when they change.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from llmdeploy.core.attention import AttentionLayout
from llmdeploy.models.inspect.config_layout import layout_from_config
from llmdeploy.planner import constants as c
from llmdeploy.planner.kv_vllm import vllm_cache, vllm_capacity_tokens, vllm_kv_cache
from llmdeploy.planner.spec import ServingSpec

DATA = Path(__file__).resolve().parents[1] / "data" / "vllm_kv"
CASES: dict[str, Any] = json.loads((DATA / "cases.json").read_text(encoding="utf-8"))
GiB = 1024**3
SPACE = CASES["cpu_kvcache_space_gib"] * GiB
CPU_SERVER_MAX_NUM_SEQS = 128  # vLLM's OpenAI server on the CPU (EngineArgs.get_batch_defaults)


def config(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / name / "config.json").read_text(encoding="utf-8"))
    return data


def layout_of(name: str) -> AttentionLayout:
    layout = layout_from_config(config(name))
    assert layout is not None
    return layout


def cpu_spec(max_model_len: int, sequences: int = CPU_SERVER_MAX_NUM_SEQS) -> ServingSpec:
    return ServingSpec(
        backend="vllm",
        device="cpu",
        context_tokens=max_model_len,
        sequences=sequences,
        kv_k_format="BF16",
        kv_v_format="BF16",
        cpu_kv_cache_bytes=SPACE,
        step_tokens=c.STEP_TOKENS_DEFAULT["vllm"],
    )


def case_spec(case: dict[str, Any]) -> ServingSpec:
    return cpu_spec(case["max_model_len"], case.get("max_num_seqs", CPU_SERVER_MAX_NUM_SEQS))


@pytest.mark.parametrize("case", CASES["cases"], ids=lambda case: case["name"])
def test_capacity_is_the_tokens_vllm_logs(case: dict[str, Any]) -> None:
    layout = layout_of(case["config"])
    spec = case_spec(case)
    tokens = vllm_capacity_tokens(layout, spec, SPACE)
    assert tokens == case["logged_tokens"]
    assert round(tokens / case["max_model_len"], 2) == case["logged_concurrency"]


def test_a_max_model_len_off_the_block_loses_the_rest_of_its_last_block() -> None:
    # 4 layers x 2 KV heads x (64 + 64) x 2 B = 2,048 B/token; 128-token blocks of 262,144 B:
    # 4,096 blocks in 1 GiB; 3,000 tokens take 24 blocks (3,072 slots): 170.67 requests
    layout = layout_of("llama")
    cache = vllm_cache(layout, cpu_spec(3000))
    assert cache.bytes_per_block == 4 * 128 * 2048 // 4
    assert cache.blocks_per_request == 24
    assert vllm_capacity_tokens(layout, cpu_spec(3000), SPACE) == 512_000  # not 4,096 x 128
    assert vllm_capacity_tokens(layout, cpu_spec(4096), SPACE) == 4096 * 128


def test_a_sliding_window_holds_window_plus_one_batch_plus_one_block() -> None:
    layout = layout_of("mistral")  # every layer slides over 1,024 tokens
    # cdiv(min(1024 - 1 + 2048, 8192), 128) + 1: the window, one batch in flight, one block
    assert vllm_cache(layout, cpu_spec(8192)).blocks_per_request == 25
    # max_num_batched_tokens is capped at max_num_seqs x max_model_len = 1,000 here
    assert vllm_cache(layout, cpu_spec(1000, sequences=1)).blocks_per_request == 9
    full = replace(layout, layers=tuple(replace(lay, kind="full") for lay in layout.layers))
    assert vllm_capacity_tokens(layout, cpu_spec(8192), SPACE) > 2.5 * vllm_capacity_tokens(
        full, cpu_spec(8192), SPACE
    )


def test_interleaved_sliding_layers_get_groups_of_their_own() -> None:
    # Gemma 3: 10 sliding + 2 full layers -> groups of 2 layers: 1 full, 5 sliding; a block id
    # costs 2 pages; a request at 8,192 takes 64 full blocks + 5 x (cdiv(511 + 2048, 128) + 1)
    cache = vllm_cache(layout_of("gemma3"), cpu_spec(8192))
    assert sorted(group.kind for group in cache.groups) == ["full"] + ["sliding"] * 5
    assert all(len(group.layers) == 2 for group in cache.groups)
    assert cache.bytes_per_block == 2 * 128 * 1 * (128 + 128) * 2
    assert cache.blocks_per_request == 64 + 5 * 21


def test_mla_caches_one_latent_without_v_in_16_token_blocks_on_the_cpu() -> None:
    layout = layout_of("deepseek-v2")  # kv_lora_rank 512 + qk_rope_head_dim 64
    cache = vllm_cache(layout, cpu_spec(4000))
    assert {layer.block for group in cache.groups for layer in group.layers} == {16}
    assert cache.bytes_per_block == 3 * 16 * 576 * 2
    figure = vllm_kv_cache(layout, cpu_spec(4000, sequences=2))
    assert figure.per_token == 3 * 576 * 2  # not heads x (K 192 + V 128)
    assert figure.bytes == 2 * 250 * cache.bytes_per_block


def test_mla_is_whole_on_every_rank_and_kv_heads_replicate_beyond_tp() -> None:
    gpu = replace(cpu_spec(4096), device="gpu", tensor_parallel_size=4)
    # MLA: every GPU holds the whole latent; GPU MLA backends use 64-token blocks (FlashMLA)
    mla = vllm_kv_cache(layout_of("deepseek-v2"), gpu)
    assert mla.per_token == 4 * 3 * 576 * 2
    assert {lay.block for g in vllm_cache(layout_of("deepseek-v2"), gpu).groups
            for lay in g.layers} == {64}
    # 2 KV heads over 4 GPUs: each holds one (replicated), not half
    dense = vllm_kv_cache(layout_of("llama"), gpu)
    assert dense.per_token == 4 * 4 * 1 * (64 + 64) * 2


def test_gpu_capacity_shares_the_memory_between_the_ranks() -> None:
    layout = layout_of("llama")
    one = replace(cpu_spec(4096), device="gpu")
    two = replace(one, tensor_parallel_size=2)
    # each of 2 GPUs holds one of the 2 KV heads: half the bytes per token per GPU, so the
    # same total memory holds as many tokens as one GPU with both heads
    assert vllm_capacity_tokens(layout, two, 2 * GiB) == vllm_capacity_tokens(layout, one, 2 * GiB)
    assert vllm_capacity_tokens(layout, one, 2 * GiB) == 2 * GiB // (4 * 512 * 16) * 16


def test_hybrid_attention_blocks_grow_to_hold_a_mamba_state() -> None:
    # Qwen3-Next: gated DeltaNet state (3 x 1,024 conv values in BF16 + 8 x 64 x 64 SSM values
    # in float32 on the CPU) = 137,216 B > a 128-token attention page (65,536 B): the block
    # grows to 384 tokens and the state page is padded to 196,608 B
    cache = vllm_cache(layout_of("qwen3-next"), cpu_spec(4096))
    attention = [lay for g in cache.groups for lay in g.layers if lay.kind == "full"]
    states = [lay for g in cache.groups for lay in g.layers if lay.kind == "mamba"]
    assert {lay.block for lay in attention} == {384}
    assert {lay.state_bytes for lay in states} == {3 * 1024 * 2 + 8 * 64 * 64 * 4}
    assert {lay.page for lay in states} == {384 * 512}
    # 2 full + 6 DeltaNet layers: groups of 2; a request takes cdiv(4096, 384) = 11 attention
    # blocks and 2 per state group (prefix caching's "align" mode)
    assert cache.blocks_per_request == 11 + 3 * 2


def test_mamba2_keeps_a_prefill_checkpoint_block() -> None:
    cache = vllm_cache(layout_of("nemotron-h"), cpu_spec(4096))
    assert sorted(cache.group_blocks(g) for g in cache.groups) == [3, 3, 11]
    mamba1 = vllm_cache(layout_of("jamba"), cpu_spec(1000))
    assert sorted(mamba1.group_blocks(g) for g in mamba1.groups) == [2, 2, 2, 8]


def test_worst_case_is_every_sequence_at_max_model_len_in_every_group() -> None:
    layout = layout_of("gemma3")
    spec = cpu_spec(8192, sequences=4)
    cache = vllm_cache(layout, spec)
    figure = vllm_kv_cache(layout, spec)
    assert figure.bytes == 4 * cache.blocks_per_request * cache.bytes_per_block
    assert figure.by_kind["full"] == 4 * 64 * cache.bytes_per_block
    assert figure.by_kind["sliding"] == 4 * 5 * 21 * cache.bytes_per_block
    state = vllm_kv_cache(layout_of("qwen3-next"), spec)
    assert set(state.by_kind) == {"full", "recurrent"}


def test_no_cache_layers_hold_nothing() -> None:
    layout = AttentionLayout.uniform(2, 2, 64)
    none = replace(layout, layers=tuple(replace(lay, kind="none") for lay in layout.layers))
    assert vllm_capacity_tokens(none, cpu_spec(1024), SPACE) == 0
    assert vllm_kv_cache(none, cpu_spec(1024)).bytes == 0


# --- config.json as vLLM reads it (models.inspect.config_layout)


def test_recurrent_states_per_mixer_family() -> None:
    gdn = layout_of("qwen3-next")
    assert gdn.kinds() == {"recurrent": 6, "full": 2}
    state = next(lay for lay in gdn.layers if lay.kind == "recurrent")
    # conv (4 - 1) x (2 x 4 x 64 + 8 x 64); SSM 8 value heads x 64 x 64
    assert (state.conv_state, state.ssm_state, state.mixer) == (3 * 1024, 8 * 64 * 64, "gdn")
    short = next(lay for lay in layout_of("lfm2").layers if lay.kind == "recurrent")
    assert (short.conv_state, short.ssm_state, short.mixer) == (2 * 256, 0, "short_conv")
    mamba1 = next(lay for lay in layout_of("jamba").layers if lay.kind == "recurrent")
    assert (mamba1.conv_state, mamba1.ssm_state, mamba1.mixer) == (3 * 512, 512 * 16, "mamba1")
    mamba2 = layout_of("nemotron-h")
    assert [lay.kind for lay in mamba2.layers] == ["recurrent", "none", "recurrent", "full"]
    layer = mamba2.layers[0]
    # d_inner 8 x 64; conv (4 - 1) x (512 + 2 x 2 groups x 64)
    assert (layer.conv_state, layer.ssm_state, layer.mixer) == (3 * 768, 512 * 64, "mamba2")


def test_sliding_layers_as_transformers_expands_the_config() -> None:
    assert layout_of("mistral").kinds() == {"sliding": 4}
    assert [lay.kind for lay in layout_of("gemma2").layers] == ["sliding", "full"] * 2
    gemma3 = [lay.kind for lay in layout_of("gemma3").layers]
    assert gemma3 == (["sliding"] * 5 + ["full"]) * 2
    qwen2 = {"num_hidden_layers": 4, "num_attention_heads": 4, "hidden_size": 256,
             "sliding_window": 4096, "use_sliding_window": False}
    assert layout_from_config(qwen2).kinds() == {"full": 4}  # type: ignore[union-attr]
    windowed = {**qwen2, "use_sliding_window": True, "max_window_layers": 2}
    kinds = [lay.kind for lay in layout_from_config(windowed).layers]  # type: ignore[union-attr]
    assert kinds == ["full", "full", "sliding", "sliding"]


def test_chunked_local_attention_counts_as_full_attention() -> None:
    llama4 = {"num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 2,
              "hidden_size": 512, "attention_chunk_size": 8192,
              "layer_types": ["chunked_attention"] * 3 + ["full_attention"]}
    layout = layout_from_config(llama4)
    assert layout is not None and layout.kinds() == {"full": 4}
