"""Small synthetic GGUF files that llama.cpp loads: a few layers, a small hidden size, zero
weights and a byte-level SentencePiece vocabulary of 259 tokens.

Each family in ``FAMILIES`` is the metadata and tensor list llama.cpp's loader asks for that
architecture (its loader names any missing or misshaped tensor), written with the ``gguf``
package. The weights are zeros: the memory the server allocates for its caches depends on the
metadata and the shapes only. Files are a few MB (``write_gguf`` takes well under a second).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

VOCAB = 3 + 256  # <unk> <s> </s> and the 256 byte tokens
E, H, KV, D, FF, L = 256, 4, 2, 64, 256, 4  # hidden, heads, KV heads, head size, FFN, layers
N_EXPERTS, FF_EXPERT = 8, 128
KV_LORA, NOPE, ROPE, V_MLA = 128, 64, 32, 64  # MLA: latent, no-rope and rope key, value
D_CONV, D_INNER, D_STATE, N_GROUP, N_SSM_HEADS = 4, 2 * E, 128, 1, 8  # Mamba-2

Shapes = dict[str, tuple[int, ...]]


@dataclass(frozen=True)
class Family:
    """One synthetic model: ``arch``, its metadata (``keys``: name under ``{arch}.`` ->
    value; lists are per-layer arrays) and its tensors (name -> ggml shape ``ne``)."""

    name: str
    arch: str
    keys: dict[str, Any]
    tensors: Callable[[], Shapes]
    what: str


def _attention_keys(**overrides: Any) -> dict[str, Any]:
    keys: dict[str, Any] = {
        "context_length": 8192, "embedding_length": E, "block_count": L,
        "feed_forward_length": FF, "attention.head_count": H, "attention.head_count_kv": KV,
        "attention.layer_norm_rms_epsilon": 1e-5, "rope.dimension_count": D,
        "rope.freq_base": 10000.0,
    }  # fmt: skip
    keys.update(overrides)
    return keys


def _common() -> Shapes:
    return {"token_embd.weight": (E, VOCAB), "output_norm.weight": (E,)}


def _attention(p: str, kv_heads: int = KV) -> Shapes:
    return {
        p + "attn_norm.weight": (E,), p + "attn_q.weight": (E, H * D),
        p + "attn_k.weight": (E, kv_heads * D), p + "attn_v.weight": (E, kv_heads * D),
        p + "attn_output.weight": (H * D, E),
    }  # fmt: skip


def _ffn(p: str) -> Shapes:
    return {
        p + "ffn_norm.weight": (E,), p + "ffn_gate.weight": (E, FF),
        p + "ffn_up.weight": (E, FF), p + "ffn_down.weight": (FF, E),
    }  # fmt: skip


def _moe(p: str) -> Shapes:
    return {
        p + "ffn_norm.weight": (E,), p + "ffn_gate_inp.weight": (E, N_EXPERTS),
        p + "ffn_gate_exps.weight": (E, FF_EXPERT, N_EXPERTS),
        p + "ffn_up_exps.weight": (E, FF_EXPERT, N_EXPERTS),
        p + "ffn_down_exps.weight": (FF_EXPERT, E, N_EXPERTS),
    }  # fmt: skip


def _llama_like(kv_heads: list[int]) -> Callable[[], Shapes]:
    def shapes() -> Shapes:
        out = _common()
        for il, n in enumerate(kv_heads):
            out |= _attention(f"blk.{il}.", n) | _ffn(f"blk.{il}.")
        return out

    return shapes


def _qwen3moe() -> Shapes:
    out = _common()
    for il in range(L):
        p = f"blk.{il}."
        out |= _attention(p) | _moe(p)
        out |= {p + "attn_q_norm.weight": (D,), p + "attn_k_norm.weight": (D,)}
    return out


def _gemma(layers: int, qk_norm: bool) -> Callable[[], Shapes]:
    def shapes() -> Shapes:
        out = _common()
        for il in range(layers):
            p = f"blk.{il}."
            out |= _attention(p) | _ffn(p)
            out |= {p + "post_attention_norm.weight": (E,), p + "post_ffw_norm.weight": (E,)}
            if qk_norm:
                out |= {p + "attn_q_norm.weight": (D,), p + "attn_k_norm.weight": (D,)}
        return out

    return shapes


def _deepseek2_keys(mla: bool) -> dict[str, Any]:
    keys = _attention_keys(**{
        "leading_dense_block_count": 1, "expert_feed_forward_length": FF_EXPERT,
        "expert_count": N_EXPERTS, "expert_shared_count": 1, "expert_used_count": 2,
        "expert_weights_scale": 1.0, "expert_weights_norm": True, "expert_gating_func": 2,
        "attention.q_lora_rank": 0, "attention.kv_lora_rank": KV_LORA,
        "rope.dimension_count": ROPE,
    })  # fmt: skip
    if mla:  # convert_hf_to_gguf.py since MLA caching: one latent "head"
        keys |= {
            "attention.head_count_kv": 1, "attention.key_length": KV_LORA + ROPE,
            "attention.value_length": KV_LORA, "attention.key_length_mla": NOPE + ROPE,
            "attention.value_length_mla": V_MLA,
        }  # fmt: skip
    else:  # older conversions: per-head K and V
        keys |= {
            "attention.head_count_kv": H, "attention.key_length": NOPE + ROPE,
            "attention.value_length": V_MLA,
        }  # fmt: skip
    return keys


def _deepseek2(mla: bool) -> Callable[[], Shapes]:
    def shapes() -> Shapes:
        out = _common() | {"output.weight": (E, VOCAB)}
        for il in range(L):
            p = f"blk.{il}."
            out |= {
                p + "attn_norm.weight": (E,), p + "attn_q.weight": (E, H * (NOPE + ROPE)),
                p + "attn_kv_a_mqa.weight": (E, KV_LORA + ROPE),
                p + "attn_kv_a_norm.weight": (KV_LORA,), p + "attn_output.weight": (H * V_MLA, E),
            }  # fmt: skip
            if mla:
                out |= {p + "attn_k_b.weight": (NOPE, KV_LORA, H),
                        p + "attn_v_b.weight": (KV_LORA, V_MLA, H)}
            else:
                out |= {p + "attn_kv_b.weight": (KV_LORA, H * (NOPE + V_MLA))}
            if il == 0:  # leading_dense_block_count
                out |= _ffn(p)
            else:
                out |= _moe(p) | {
                    p + "ffn_gate_shexp.weight": (E, FF_EXPERT),
                    p + "ffn_up_shexp.weight": (E, FF_EXPERT),
                    p + "ffn_down_shexp.weight": (FF_EXPERT, E),
                    p + "exp_probs_b.bias": (N_EXPERTS,),
                }
        return out

    return shapes


def _ssm_keys(**overrides: Any) -> dict[str, Any]:
    keys: dict[str, Any] = {
        "context_length": 8192, "embedding_length": E, "block_count": L,
        "attention.layer_norm_rms_epsilon": 1e-5, "ssm.conv_kernel": D_CONV,
        "ssm.inner_size": D_INNER, "ssm.state_size": D_STATE,
        "ssm.time_step_rank": N_SSM_HEADS, "ssm.group_count": N_GROUP,
    }  # fmt: skip
    keys.update(overrides)
    return keys


def _mamba2_layer(p: str) -> Shapes:
    conv_channels = D_INNER + 2 * N_GROUP * D_STATE
    return {
        p + "attn_norm.weight": (E,),
        p + "ssm_in.weight": (E, 2 * D_INNER + 2 * N_GROUP * D_STATE + N_SSM_HEADS),
        p + "ssm_conv1d.weight": (D_CONV, conv_channels), p + "ssm_conv1d.bias": (conv_channels,),
        p + "ssm_dt.bias": (N_SSM_HEADS,), p + "ssm_a": (1, N_SSM_HEADS),
        p + "ssm_d": (1, N_SSM_HEADS), p + "ssm_norm.weight": (D_INNER // N_GROUP, N_GROUP),
        p + "ssm_out.weight": (D_INNER, E),
    }  # fmt: skip


def _mamba2() -> Shapes:
    out = _common()
    for il in range(L):
        out |= _mamba2_layer(f"blk.{il}.")
    return out


GRANITE_KV = [0, KV, 0, KV]  # Mamba-2, attention, Mamba-2, attention


def _granitehybrid() -> Shapes:
    out = _common()
    for il, kv_heads in enumerate(GRANITE_KV):
        p = f"blk.{il}."
        if kv_heads:
            out |= _attention(p, kv_heads)
        else:
            out |= _mamba2_layer(p)
        out |= _ffn(p)
    return out


def _cohere2() -> Shapes:
    out = _common()
    for il in range(8):
        p = f"blk.{il}."  # a parallel block: no ffn_norm
        out |= _attention(p) | {p + "ffn_gate.weight": (E, FF), p + "ffn_up.weight": (E, FF),
                                p + "ffn_down.weight": (FF, E)}
    return out


def _gpt_oss() -> Shapes:
    out = _common() | {"output.weight": (E, VOCAB)}
    n, ff = 4, FF_EXPERT
    for il in range(L):
        p = f"blk.{il}."
        out |= _attention(p) | {
            p + "attn_q.bias": (H * D,), p + "attn_k.bias": (KV * D,),
            p + "attn_v.bias": (KV * D,), p + "attn_output.bias": (E,),
            p + "attn_sinks.weight": (H,), p + "post_attention_norm.weight": (E,),
            p + "ffn_gate_inp.weight": (E, n), p + "ffn_gate_inp.bias": (n,),
            p + "ffn_gate_exps.weight": (E, ff, n), p + "ffn_up_exps.weight": (E, ff, n),
            p + "ffn_down_exps.weight": (ff, E, n), p + "ffn_gate_exps.bias": (ff, n),
            p + "ffn_up_exps.bias": (ff, n), p + "ffn_down_exps.bias": (E, n),
        }  # fmt: skip
    return out


def _falcon_h1() -> Shapes:
    out = _common() | {"output.weight": (E, VOCAB)}
    for il in range(L):
        p = f"blk.{il}."  # attention and Mamba-2 side by side in every layer
        ssm = {k: v for k, v in _mamba2_layer(p).items() if k != p + "attn_norm.weight"}
        ffn = {k: v for k, v in _ffn(p).items() if k != p + "ffn_norm.weight"}
        out |= _attention(p) | ssm | ffn | {p + "ffn_norm": (E,)}
    return out


NEMOTRON_KV = [0, KV, 0, 0]  # Mamba-2, attention, MLP only, Mamba-2
NEMOTRON_FF = [0, 0, FF, 0]


def _nemotron_h() -> Shapes:
    out = _common() | {"output.weight": (E, VOCAB)}
    for il in range(L):
        p = f"blk.{il}."
        if NEMOTRON_KV[il]:
            out |= _attention(p)
        elif NEMOTRON_FF[il]:
            out |= {p + "attn_norm.weight": (E,), p + "ffn_up.weight": (E, FF),
                    p + "ffn_down.weight": (FF, E)}
        else:
            out |= _mamba2_layer(p)
    return out


LFM2_KV = [0, KV, 0, KV]  # short convolution, attention, ...
LFM2_L_CACHE = 3


def _lfm2() -> Shapes:
    out = {"token_embd.weight": (E, VOCAB), "token_embd_norm.weight": (E,)}
    for il, kv_heads in enumerate(LFM2_KV):
        p = f"blk.{il}."
        out |= _ffn(p)
        if kv_heads:
            out |= _attention(p, kv_heads)
            out |= {p + "attn_q_norm.weight": (D,), p + "attn_k_norm.weight": (D,)}
        else:
            out |= {
                p + "attn_norm.weight": (E,), p + "shortconv.conv.weight": (LFM2_L_CACHE, E),
                p + "shortconv.in_proj.weight": (E, 3 * E),
                p + "shortconv.out_proj.weight": (E, E),
            }  # fmt: skip
    return out


DECI_KV = [2, 1, 4, 2]

FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family("llama", "llama", _attention_keys(), _llama_like([KV] * L),
               "dense GQA (llama): 4 layers, 2 KV heads of 64"),
        Family("deci", "deci",
               _attention_keys(**{"attention.head_count_kv": DECI_KV,
                                  "attention.head_count": [H] * L,
                                  "feed_forward_length": [FF] * L}),
               _llama_like(DECI_KV), "per-layer KV heads (deci, Nemotron-NAS): 2, 1, 4, 2"),
        Family("qwen3moe", "qwen3moe",
               _attention_keys(**{"expert_count": N_EXPERTS, "expert_used_count": 2,
                                  "expert_feed_forward_length": FF_EXPERT,
                                  "attention.key_length": D, "attention.value_length": D}),
               _qwen3moe, "MoE (qwen3moe): 8 experts, 2 KV heads of 64"),
        Family("gemma2", "gemma2",
               _attention_keys(**{"attention.sliding_window": 256,
                                  "attn_logit_softcapping": 50.0,
                                  "final_logit_softcapping": 30.0,
                                  "attention.key_length": D, "attention.value_length": D}),
               _gemma(L, qk_norm=False), "sliding window 256, every other layer (gemma2)"),
        Family("gemma3", "gemma3",
               _attention_keys(**{"block_count": 8, "attention.sliding_window": 512,
                                  "attention.key_length": D, "attention.value_length": D}),
               _gemma(8, qk_norm=True), "sliding window 512, 5 of every 6 layers (gemma3)"),
        Family("deepseek2-mla", "deepseek2", _deepseek2_keys(mla=True), _deepseek2(mla=True),
               "MLA (deepseek2 with key_length_mla): latent 128 + rope 32"),
        Family("deepseek2-old", "deepseek2", _deepseek2_keys(mla=False),
               _deepseek2(mla=False),
               "DeepSeek-V2 converted without key_length_mla: K 96, V 64 per head"),
        Family("mamba2", "mamba2", _ssm_keys(), _mamba2,
               "recurrent (mamba2): d_inner 512, d_state 128"),
        Family("granitehybrid", "granitehybrid",
               _ssm_keys(**{"feed_forward_length": FF, "attention.head_count": H,
                            "attention.head_count_kv": GRANITE_KV, "rope.dimension_count": D,
                            "rope.freq_base": 10000.0, "embedding_scale": 12.0,
                            "residual_scale": 0.22, "logit_scale": 8.0,
                            "attention.scale": 0.0078125}),
               _granitehybrid, "hybrid (granitehybrid): 2 Mamba-2 + 2 attention layers"),
        Family("cohere2", "cohere2",
               _attention_keys(**{"block_count": 8, "attention.sliding_window": 300,
                                  "logit_scale": 0.25, "attention.layer_norm_epsilon": 1e-5}),
               _cohere2, "sliding window 300, 3 of every 4 layers (cohere2)"),
        Family("gpt-oss", "gpt-oss",
               _attention_keys(**{"attention.sliding_window": 128, "expert_count": 4,
                                  "expert_used_count": 2,
                                  "expert_feed_forward_length": FF_EXPERT,
                                  "attention.key_length": D, "attention.value_length": D}),
               _gpt_oss, "sliding window 128, every other layer, MoE (gpt-oss)"),
        Family("falcon-h1", "falcon-h1",
               _ssm_keys(**{"feed_forward_length": FF, "attention.head_count": H,
                            "attention.head_count_kv": KV, "rope.dimension_count": D,
                            "rope.freq_base": 10000.0, "attention.key_length": D,
                            "attention.value_length": D}),
               _falcon_h1, "hybrid (falcon-h1): attention and Mamba-2 in every layer"),
        Family("nemotron_h", "nemotron_h",
               _ssm_keys(**{"feed_forward_length": NEMOTRON_FF, "attention.head_count": H,
                            "attention.head_count_kv": NEMOTRON_KV,
                            "attention.key_length": D, "attention.value_length": D,
                            "attention.layer_norm_epsilon": 1e-5}),
               _nemotron_h, "hybrid (nemotron_h): Mamba-2, attention, MLP-only, Mamba-2"),
        Family("lfm2", "lfm2",
               _attention_keys(**{"attention.head_count_kv": LFM2_KV,
                                  "shortconv.l_cache": LFM2_L_CACHE}),
               _lfm2, "hybrid (lfm2): short convolutions and attention"),
    )
}


def _tokenizer(writer: Any) -> None:
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    writer.add_tokenizer_model("llama")  # SentencePiece with byte fallback
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * len(tokens))
    writer.add_token_types([2, 3, 3] + [6] * 256)  # unknown, control, control, bytes
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)


def write_gguf(family: Family, path: Path) -> Path:
    """Write ``family`` to ``path`` (replaced) and return it."""
    import gguf

    writer = gguf.GGUFWriter(str(path), family.arch)
    writer.add_name(f"synthetic {family.name}")
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    for key, value in family.keys.items():
        _add(writer, f"{family.arch}.{key}", value)
    _tokenizer(writer)
    for name, shape in family.tensors().items():
        # numpy's shape is ggml's ne reversed
        writer.add_tensor(name, np.zeros(tuple(reversed(shape)), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _add(writer: Any, key: str, value: Any) -> None:
    import gguf

    if isinstance(value, bool):
        writer.add_bool(key, value)
    elif isinstance(value, int):
        writer.add_uint32(key, value)
    elif isinstance(value, float):
        writer.add_float32(key, value)
    elif isinstance(value, list):
        writer.add_key_value(key, value, gguf.GGUFValueType.ARRAY,
                             sub_type=gguf.GGUFValueType.INT32)
    else:
        raise TypeError(f"{key}: unsupported metadata value {value!r}")
