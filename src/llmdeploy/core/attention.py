"""A model's attention, layer by layer: what each layer keeps per token (or per sequence).

The KV cache is not ``2 x layers x kv_heads x head_dim``: layers differ. What a layer caches
depends on its kind:

- ``full``: K and V for every token of the context, ``kv_heads`` heads of ``key_length`` and
  ``value_length`` values (they differ in some models; GGUF ``attention.key_length`` /
  ``value_length``, config.json ``head_dim`` / ``v_head_dim``). ``kv_heads`` may vary per layer
  (GGUF ``attention.head_count_kv`` as an array, e.g. OpenELM, Nemotron-NAS);
- ``sliding``: like ``full``, but only the last ``window`` tokens (Gemma 2/3, Mistral, gpt-oss:
  config.json ``sliding_window`` with ``layer_types``; GGUF ``attention.sliding_window`` with
  a pattern). How much a server keeps beyond the window (padding, one batch) is its own rule;
- ``mla``: multi-head latent attention (DeepSeek-V2/V3, Kimi K2): one compressed latent of
  ``kv_lora_rank`` values plus ``rope_dim`` rotary key values per token, shared by all heads;
- ``recurrent``: a Mamba-style or linear-attention layer: a fixed state per *sequence*
  (``conv_state`` + ``ssm_state`` values), independent of the context length; hybrid models
  (Jamba, Granite 4 hybrid, Falcon-H1, Qwen3-Next) mix these with attention layers;
- ``none``: a layer with no cache (a layer that reuses another's KV).

Each server turns a layout into bytes by its own rules (``llmdeploy.planner.kv_cache``). The
layout is read from GGUF metadata (``models.inspect.gguf``) or config.json
(``models.inspect.hf``); ``AttentionLayout.uniform`` builds the classic every-layer-alike one
from a model's shape when nothing more is known.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

LayerKind = Literal["full", "sliding", "mla", "recurrent", "none"]


@dataclass(frozen=True)
class LayerCache:
    """What one layer caches. Sizes are counts of values (elements), not bytes.

    - ``full`` / ``sliding``: ``kv_heads`` x (``key_length`` + ``value_length``) per token;
      ``window`` (sliding only): the tokens the layer attends to;
    - ``mla``: ``kv_lora_rank`` + ``rope_dim`` per token (``key_length`` / ``value_length``
      keep the per-head decompressed sizes, for a server that caches those instead);
    - ``recurrent``: ``conv_state`` + ``ssm_state`` per sequence; ``mixer``: the layer's family
      when known (``mamba1``, ``mamba2``, ``gdn`` (gated DeltaNet), ``short_conv``): servers keep
      different extra state per family (vLLM: a prefill checkpoint block for Mamba-2).
    """

    kind: LayerKind
    kv_heads: int = 0
    key_length: int = 0
    value_length: int = 0
    window: int | None = None
    kv_lora_rank: int = 0
    rope_dim: int = 0
    conv_state: int = 0
    ssm_state: int = 0
    mixer: str | None = None

    @property
    def latent_length(self) -> int:
        """MLA: values cached per token (the latent plus the rotary key part)."""
        return self.kv_lora_rank + self.rope_dim

    def describe(self) -> str:
        if self.kind == "mla":
            return f"MLA latent {self.kv_lora_rank}+{self.rope_dim}"
        if self.kind == "recurrent":
            return f"recurrent state {self.conv_state}+{self.ssm_state} per sequence"
        if self.kind == "none":
            return "no cache"
        kv = (
            f"{self.kv_heads}x{self.key_length}"
            if self.key_length == self.value_length
            else f"{self.kv_heads}x(K {self.key_length}, V {self.value_length})"
        )
        return f"sliding window {self.window}, {kv}" if self.kind == "sliding" else f"full, {kv}"


@dataclass(frozen=True)
class AttentionLayout:
    """Every layer's cache, in order, and where the facts came from.

    ``experts`` / ``experts_used``: MoE routing (all experts' weights stay resident; attention
    and so the cache are as in a dense model), for reports only. ``source``: ``gguf``,
    ``config.json`` or ``shape`` (uniform, from the layer count and one head shape).
    """

    layers: tuple[LayerCache, ...]
    source: str
    experts: int | None = None
    experts_used: int | None = None
    notes: tuple[str, ...] = field(default=())

    @classmethod
    def uniform(
        cls, layers: int, kv_heads: int, head_dim: int, *, value_length: int | None = None,
        source: str = "shape",
    ) -> AttentionLayout:
        """``layers`` full-attention layers alike (the classic formula's model)."""
        one = LayerCache("full", kv_heads, head_dim, value_length or head_dim)
        return cls(tuple(one for _ in range(layers)), source)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttentionLayout:
        """The inverse of ``dataclasses.asdict`` (not of ``to_dict``, which groups layers)."""
        layers = tuple(LayerCache(**layer) for layer in data["layers"])
        return cls(layers, str(data["source"]), data.get("experts"), data.get("experts_used"),
                   tuple(data.get("notes") or ()))

    @property
    def count(self) -> int:
        return len(self.layers)

    def kinds(self) -> Counter[str]:
        return Counter(layer.kind for layer in self.layers)

    @property
    def is_uniform_full(self) -> bool:
        """True when every layer is a full-attention layer of the same shape."""
        return len(set(self.layers)) == 1 and self.layers[0].kind == "full"

    def summary(self) -> str:
        """``28 full (4x128)``, ``20 sliding window 4096 (8x256) + 6 full (8x256)``, ..."""
        groups: Counter[LayerCache] = Counter(self.layers)
        parts = [f"{n} x {layer.describe()}" for layer, n in groups.most_common()]
        text = " + ".join(parts)
        if self.experts:
            text += f"; MoE {self.experts} experts ({self.experts_used or '?'} per token)"
        return text

    def to_dict(self) -> dict[str, Any]:
        groups: Counter[LayerCache] = Counter(self.layers)
        return {
            "source": self.source,
            "layers": self.count,
            "groups": [
                {"count": n, "kind": layer.kind, "describe": layer.describe(),
                 **{k: v for k, v in layer.__dict__.items() if v not in (0, None)}}
                for layer, n in groups.most_common()
            ],
            "experts": self.experts,
            "experts_used": self.experts_used,
        }
