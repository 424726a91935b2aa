"""The KV cache a server allocates for a model's layout (``core.attention``), by its own rules.

    llama.cpp / Ollama  ``kv_llamacpp``: one cache of ``ctx_size`` cells shared by the slots;
                        sliding layers keep a smaller ring, MLA only the latent, recurrent
                        layers one state per sequence
    vLLM                ``kv_vllm``: paged blocks per layer group; MLA one latent "head";
                        sliding layers bounded by the window; capacity in tokens as vLLM logs
                        ("KV cache size: N tokens")

``kv_cache(layout, spec)`` gives the bytes for the spec's context and sequences, with the bytes
per context token (of the layers whose cache grows with the context) and a breakdown by layer
kind. Unknown cache types raise LlmdeployError naming them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llmdeploy.core.attention import AttentionLayout
from llmdeploy.errors import LlmdeployError
from llmdeploy.planner import quant
from llmdeploy.planner.spec import ServingSpec


@dataclass(frozen=True)
class KvCacheFigure:
    """A server's KV cache for one spec, in bytes.

    ``bytes``: everything allocated (all layers, all sequences; over all GPUs with tensor
    parallelism). ``per_token``: bytes one more token of context costs (full and MLA layers;
    sliding layers count until their window is reached). ``by_kind``: ``bytes`` split by layer
    kind (``full``, ``sliding``, ``mla``, ``recurrent``). ``rule``: the server rule, for people.
    """

    bytes: int
    per_token: int
    by_kind: dict[str, int] = field(default_factory=dict)
    rule: str = ""


def element_bytes(spec: ServingSpec) -> tuple[float, float]:
    """Bytes per stored K and V element of the spec's cache types."""
    k = quant.kv_element_bytes(spec.kv_k_format)
    v = quant.kv_element_bytes(spec.kv_v_format)
    if k is None or v is None:
        raise LlmdeployError(
            f"unknown KV cache type {spec.kv_k_format if k is None else spec.kv_v_format!r}",
            hint="use f16, bf16, fp8, q8_0 or q4_0",
        )
    return k, v


def kv_cache(layout: AttentionLayout, spec: ServingSpec) -> KvCacheFigure:
    """The KV cache ``spec``'s server allocates for ``layout`` (see the module docstring)."""
    if spec.backend == "vllm":
        from llmdeploy.planner.kv_vllm import vllm_kv_cache

        return vllm_kv_cache(layout, spec)
    from llmdeploy.planner.kv_llamacpp import llamacpp_kv_cache

    return llamacpp_kv_cache(layout, spec)


def kv_capacity_tokens(layout: AttentionLayout, spec: ServingSpec, kv_bytes: int) -> int:
    """Tokens of context ``kv_bytes`` of cache hold for one sequence, as vLLM counts them (its
    "KV cache size: N tokens" line); llama.cpp's is its ``ctx_size``."""
    if spec.backend == "vllm":
        from llmdeploy.planner.kv_vllm import vllm_capacity_tokens

        return vllm_capacity_tokens(layout, spec, kv_bytes)
    return spec.kv_tokens
