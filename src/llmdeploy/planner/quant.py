"""Bits per weight of quantization formats and bytes per element of KV-cache types.

Figures are what the formats store, including their block scales, not the nominal bit width:

- GGUF block types, from the block structs in llama.cpp's ``ggml/src/ggml-common.h``:
  ``block_q4_0`` = 1 fp16 scale + 32 nibbles = 18 bytes / 32 weights = 4.5 bpw;
  ``block_q4_1`` = fp16 scale + fp16 min + 16 bytes = 20 / 32 = 5.0 bpw;
  ``block_q5_0`` 22 / 32 = 5.5; ``block_q5_1`` 24 / 32 = 6.0; ``block_q8_0`` 34 / 32 = 8.5;
  ``block_mxfp4`` = 1 E8M0 byte + 16 bytes = 17 / 32 = 4.25;
  k-quant super-blocks of 256: ``block_q2_K`` 84 bytes (2.625), ``block_q3_K`` 110 (3.4375),
  ``block_q4_K`` 144 (4.5), ``block_q5_K`` 176 (5.5), ``block_q6_K`` 210 (6.5625);
  ``block_iq4_nl`` 18 / 32 = 4.5; ``block_iq4_xs`` 136 / 256 = 4.25.
- GGUF *file types* (llama-quantize presets) mix block types per tensor (attention V and FFN
  down get more bits in the ``_M`` mixes), so their average is measured, not derived. Figures:
  the "Llama 2 7B" bits-per-weight table of llama.cpp's ``examples/quantize/README.md``
  (Q2_K 3.35, Q3_K_S 3.50, Q3_K_M 3.91, Q3_K_L 4.27, Q4_K_S 4.58, Q4_K_M 4.84, Q5_K_S 5.52,
  Q5_K_M 5.68, Q6_K 6.56). The same README's newer Llama-3.1-8B table gives Q4_K_M 4.89 and
  Q8_0 8.50: a larger vocabulary (embeddings kept at Q6_K) moves the average a little.
- Hugging Face checkpoints: FP32 4 bytes, FP16/BF16 2, FP8 and INT8 1 (per-tensor or
  per-channel scales are negligible). AWQ and GPTQ 4-bit at their default group size of 128:
  4 bits + one fp16 scale (16/128) + one packed 4-bit zero point (4/128) = 4.15625 bpw.
  bitsandbytes 4-bit (NF4/FP4): 4 bits + one fp32 absmax per block of 64 = 4.5 bpw (without
  nested quantization of the absmax values).
"""

from __future__ import annotations

import re

# canonical name -> bits per weight (see the module docstring for the sources)
WEIGHT_BITS: dict[str, float] = {
    "FP32": 32.0,
    "FP16": 16.0,
    "BF16": 16.0,
    "FP8": 8.0,
    "INT8": 8.0,
    "Q8_0": 34 * 8 / 32,  # 8.5
    "Q6_K": 6.56,
    "Q5_1": 24 * 8 / 32,  # 6.0
    "Q5_K_M": 5.68,
    "Q5_K_S": 5.52,
    "Q5_0": 22 * 8 / 32,  # 5.5
    "Q4_1": 20 * 8 / 32,  # 5.0
    "Q4_K_M": 4.84,
    "Q4_K_S": 4.58,
    "Q4_0": 18 * 8 / 32,  # 4.5
    "IQ4_NL": 18 * 8 / 32,  # 4.5
    "IQ4_XS": 136 * 8 / 256,  # 4.25
    "MXFP4": 17 * 8 / 32,  # 4.25
    "AWQ": 4 + 16 / 128 + 4 / 128,  # 4.15625
    "GPTQ": 4 + 16 / 128 + 4 / 128,
    "BNB_NF4": 4 + 32 / 64,  # 4.5
    "Q3_K_L": 4.27,
    "Q3_K_M": 3.91,
    "Q3_K_S": 3.50,
    "Q2_K": 3.35,
}

_ALIASES: dict[str, str] = {
    "F32": "FP32",
    "FLOAT32": "FP32",
    "FLOAT": "FP32",
    "F16": "FP16",
    "FLOAT16": "FP16",
    "HALF": "FP16",
    "BFLOAT16": "BF16",
    "FP8_E4M3": "FP8",
    "FP8_E5M2": "FP8",
    "F8": "FP8",
    "W8A8": "INT8",
    "AWQ_MARLIN": "AWQ",
    "GPTQ_MARLIN": "GPTQ",
    "INT4": "AWQ",
    "W4A16": "AWQ",
    "AWQ_INT4": "AWQ",
    "GPTQ_INT4": "GPTQ",
    "AUTOROUND_INT4": "GPTQ",
    "GPTQ_INT8": "INT8",
    "BNB_INT8": "INT8",
    "BNB_FP4": "BNB_NF4",
    "Q4_K": "Q4_K_M",
    "Q5_K": "Q5_K_M",
    "Q3_K": "Q3_K_M",
}

# Float formats: an unquantized checkpoint stored or run at this precision.
FLOAT_FORMATS = frozenset({"FP32", "FP16", "BF16"})
# GGUF quantization presets llama.cpp and Ollama load (llama-quantize's names).
GGUF_FORMATS = frozenset(
    {
        "Q8_0",
        "Q6_K",
        "Q5_1",
        "Q5_K_M",
        "Q5_K_S",
        "Q5_0",
        "Q4_1",
        "Q4_K_M",
        "Q4_K_S",
        "Q4_0",
        "IQ4_NL",
        "IQ4_XS",
        "Q3_K_L",
        "Q3_K_M",
        "Q3_K_S",
        "Q2_K",
    }
)
# Smaller GGUF files to suggest, best quality first.
GGUF_LADDER = ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_K_S", "Q3_K_M", "Q2_K")

# Bytes per stored KV element. llama.cpp's cache types use the same blocks as weights
# (``--cache-type-k q8_0``: 34 bytes per 32 values); vLLM's fp8 cache is one byte.
KV_ELEMENT_BYTES: dict[str, float] = {
    "FP32": 4.0,
    "FP16": 2.0,
    "BF16": 2.0,
    "FP8": 1.0,
    "Q8_0": 34 / 32,
    "Q5_1": 24 / 32,
    "Q5_0": 22 / 32,
    "Q4_1": 20 / 32,
    "Q4_0": 18 / 32,
    "IQ4_NL": 18 / 32,
}

# Bytes per element of each tensor storage type a file states: GGML types (GGUF tensor infos;
# block structs of ggml/src/ggml-common.h: block bytes / values per block) and safetensors dtypes.
# A safetensors MXFP4 checkpoint (gpt-oss) stores its experts as U8 "blocks" (2 values per byte)
# plus U8 "scales" (one per 32 values): counted per stored element, so U8 = 1 byte.
TENSOR_TYPE_BYTES: dict[str, float] = {
    "F64": 8.0, "F32": 4.0, "I32": 4.0, "F16": 2.0, "BF16": 2.0, "I16": 2.0,
    "F8_E4M3": 1.0, "F8_E5M2": 1.0, "F8_E8M0": 1.0, "I8": 1.0, "U8": 1.0, "BOOL": 1.0,
    "Q8_0": 34 / 32, "Q8_1": 36 / 32, "Q8_K": 292 / 256,
    "Q6_K": 210 / 256, "Q5_0": 22 / 32, "Q5_1": 24 / 32, "Q5_K": 176 / 256,
    "Q4_0": 18 / 32, "Q4_1": 20 / 32, "Q4_K": 144 / 256, "Q3_K": 110 / 256, "Q2_K": 84 / 256,
    "IQ4_NL": 18 / 32, "IQ4_XS": 136 / 256, "IQ3_S": 110 / 256, "IQ3_XXS": 98 / 256,
    "IQ2_S": 82 / 256, "IQ2_XS": 74 / 256, "IQ2_XXS": 66 / 256, "IQ1_S": 50 / 256,
    "IQ1_M": 56 / 256, "TQ1_0": 54 / 256, "TQ2_0": 66 / 256, "MXFP4": 17 / 32,
}


def tensor_bytes(tensor_types: dict[str, int]) -> int | None:
    """Bytes of the weights from the storage type of every tensor (type -> elements), as the
    file holds them; None when a type is unknown (or there are no tensors)."""
    total = 0.0
    for kind, elements in tensor_types.items():
        size = TENSOR_TYPE_BYTES.get(kind.upper())
        if size is None:
            return None
        total += size * elements
    return round(total) if total else None


_QUANT_IN_NAME = re.compile(
    r"(?<![A-Z0-9])(I?Q\d_(?:K_[SML]|K|[01]|NL|XS|XXS|S|M)|BF16|F16|F32|FP16|FP8|MXFP4|AWQ|GPTQ)"
    r"(?![A-Z0-9])"
)


def canonical(name: str | None) -> str | None:
    """The canonical spelling of a quantization or dtype name (``q4_k_m`` -> ``Q4_K_M``)."""
    if not name:
        return None
    key = name.strip().upper().replace("-", "_")
    key = key.removeprefix("TORCH.").removeprefix("MOSTLY_").removeprefix("GGML_TYPE_")
    key = _ALIASES.get(key, key)
    return key or None


def bits_per_weight(name: str | None) -> float | None:
    """Bits per weight of a format, or None when the format is unknown."""
    key = canonical(name)
    return WEIGHT_BITS.get(key) if key else None


def kv_element_bytes(name: str | None) -> float | None:
    """Bytes per stored KV-cache element of a cache type, or None when unknown."""
    key = canonical(name)
    return KV_ELEMENT_BYTES.get(key) if key else None


def is_float(name: str | None) -> bool:
    return canonical(name) in FLOAT_FORMATS


def is_gguf_quant(name: str | None) -> bool:
    return canonical(name) in GGUF_FORMATS


def quant_in_name(text: str) -> str | None:
    """The quantization a file or repository name announces (``...Q4_K_M.gguf`` -> Q4_K_M)."""
    match = _QUANT_IN_NAME.search(text.upper().replace("-", "_"))
    return canonical(match.group(1)) if match else None
