"""llama.cpp's KV cache (llama-server; Ollama's llama.cpp engine), layer by layer.

The rules, read in llama.cpp's source (ggml-org/llama.cpp ``src/``) and measured on the
llama.cpp that ``xllamacpp`` 2026.10.11549 bundles (llama.cpp build b11549; the figures are in
``tests/unit/test_kv_llamacpp.py`` and ``docs/planner.md``, "llama.cpp: planner vs server"):

1. Context cells (``llama-context.cpp``, ``llama_context::llama_context``): ``n_ctx`` (``-c``)
   is padded up to a multiple of 256. With a unified cache (``--kv-unified``) there is one
   stream of ``n_ctx`` cells that every slot shares. Otherwise (llama-server's default when
   ``-np`` is given) each of the ``n_seq = -np`` sequences gets a stream of
   ``n_ctx_seq = pad256(n_ctx / n_seq)`` cells, and ``n_ctx`` becomes ``n_ctx_seq x n_seq``
   (``-c 2048 -np 3`` allocates 3 x 768 = 2,304 cells, logged as "n_ctx is not divisible by
   n_seq_max - rounding down to 2304").
2. Cache tensors (``llama-kv-cache.cpp``, ``llama_kv_cache::llama_kv_cache``): per layer with a
   KV cache, K is ``n_embd_k_gqa(il) = key_length x head_count_kv(il)`` values per cell and V
   ``n_embd_v_gqa(il) = value_length x head_count_kv(il)`` (``llama-hparams.cpp``), each in its
   cache type (``-ctk/-ctv``; q8_0: 34 bytes per 32 values), x cells x streams. Without flash
   attention (``-fa off``; ``auto`` turns it on where the device supports it, as on the CPU) V
   is stored transposed, and when V widths differ across layers every layer's V is padded to
   the widest ("padding V cache to N").
3. MLA (``deepseek2`` and kin, GGUFs with ``attention.key_length_mla``): one "head" of
   ``key_length = kv_lora_rank + rope`` values per cell and no V at all (the K-only latent
   cache; the server logs ``V (f16): 0.00 MiB``). Older conversions without
   ``key_length_mla`` cache K and V per head (``models.inspect.gguf_layout``).
4. Sliding-window layers (``llama-kv-cache-iswa.cpp``, ``llama_kv_cache_iswa``): a second cache
   of ``pad256(min(n_ctx_seq, n_swa x (n_seq if unified else 1) + n_ubatch))`` cells per
   stream (``-ub``, default 512); ``--swa-full`` gives it ``n_ctx_seq`` cells like the others.
5. Recurrent layers (``llama-memory-recurrent.cpp``; sizes from ``llama_hparams::n_embd_r`` /
   ``n_embd_s``): ``max(1, n_seq)`` rows (``x (1 + n_rs_seq)``, 0 extra by default) of
   ``n_embd_r + n_embd_s`` float32 values per recurrent layer, whatever the context.
   Hybrids (``llama-memory-hybrid.cpp``) allocate both: attention layers by rules 1-4,
   recurrent ones by rule 5.

Ollama sizes ``num_ctx x num_parallel`` cells as one cache shared by its sequences (its own
rule, not measured here): the cells are not padded.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmdeploy.core.attention import AttentionLayout, LayerCache
from llmdeploy.planner.kv_cache import KvCacheFigure, element_bytes
from llmdeploy.planner.spec import ServingSpec

CELL_PAD = 256  # llama-context.cpp: n_ctx and n_ctx_seq padded to 256; the SWA cache too
RECURRENT_STATE_BYTES = 4  # float32 r and s states (llama-model.cpp create_memory: GGML_TYPE_F32)


@dataclass(frozen=True)
class Cells:
    """The cells llama.cpp allocates: ``streams`` streams of ``per_stream`` cells for each
    full-attention (and MLA) layer, ``sliding(window)`` per stream for a sliding-window layer,
    and ``sequences`` rows of state for a recurrent layer. ``ubatch``: ``-ub``."""

    per_stream: int
    streams: int
    sequences: int
    ubatch: int
    unified: bool
    swa_full: bool

    @property
    def total(self) -> int:
        """``n_ctx`` after llama.cpp's padding (the cells of one full-attention layer)."""
        return self.per_stream * self.streams

    def sliding(self, window: int | None) -> int:
        """Cells per stream of a sliding-window layer of ``window`` tokens."""
        if window is None or self.swa_full:
            return self.per_stream
        wanted = window * (self.sequences if self.unified else 1) + self.ubatch
        return pad(min(self.per_stream, wanted), CELL_PAD)


def pad(value: int, multiple: int) -> int:
    """``value`` rounded up to a multiple of ``multiple`` (ggml's ``GGML_PAD``)."""
    return (value + multiple - 1) // multiple * multiple


def llamacpp_cells(spec: ServingSpec) -> Cells:
    """The cells llama.cpp allocates for ``spec`` (rules 1 and 4 of the module docstring)."""
    sequences = max(spec.sequences, 1)
    if spec.backend != "llamacpp":  # Ollama: one cache of num_ctx x num_parallel cells
        return Cells(spec.kv_tokens, 1, sequences, spec.step_tokens, True, spec.swa_full)
    n_ctx = pad(max(spec.context_tokens, 1), CELL_PAD)
    if spec.kv_unified:
        return Cells(n_ctx, 1, sequences, spec.step_tokens, True, spec.swa_full)
    per_stream = pad(n_ctx // sequences, CELL_PAD)
    return Cells(per_stream, sequences, sequences, spec.step_tokens, False, spec.swa_full)


def llamacpp_kv_cache(layout: AttentionLayout, spec: ServingSpec) -> KvCacheFigure:
    """llama.cpp's KV cache for ``layout`` served as ``spec``, in bytes (module docstring).

    ``per_token``: bytes one more cell of context costs (full-attention and MLA layers, and
    sliding layers whose window is not yet binding). ``by_kind``: ``full``, ``sliding``,
    ``mla``, ``recurrent``. Raises LlmdeployError for an unknown cache type.
    """
    k_bytes, v_bytes = element_bytes(spec)
    cells = llamacpp_cells(spec)
    v_pad = _v_width_padded(layout) if not spec.flash_attn else None
    by_kind: dict[str, float] = {}
    per_token = 0.0
    for layer in layout.layers:
        kind, row = _attention_row(layer, k_bytes, v_bytes, v_pad)
        if kind is not None:
            layer_cells = cells.sliding(layer.window) if kind == "sliding" else cells.per_stream
            by_kind[kind] = by_kind.get(kind, 0) + row * layer_cells * cells.streams
            if layer_cells == cells.per_stream:
                per_token += row
        state = layer.conv_state + layer.ssm_state
        if state:
            by_kind["recurrent"] = (
                by_kind.get("recurrent", 0) + state * RECURRENT_STATE_BYTES * cells.sequences
            )
    rounded = {kind: round(value) for kind, value in by_kind.items()}
    return KvCacheFigure(sum(rounded.values()), round(per_token), rounded, "llama.cpp")


def _attention_row(
    layer: LayerCache, k_bytes: float, v_bytes: float, v_pad: int | None
) -> tuple[str | None, float]:
    """(kind, bytes per cell) of a layer's attention cache; (None, 0) when it has none."""
    if layer.kind == "mla":
        return "mla", layer.latent_length * k_bytes  # K only: the latent
    if layer.kind not in ("full", "sliding") or not layer.kv_heads:
        return None, 0.0
    v_width = v_pad if v_pad is not None else layer.kv_heads * layer.value_length
    row = layer.kv_heads * layer.key_length * k_bytes + v_width * v_bytes
    return layer.kind, row


def _v_width_padded(layout: AttentionLayout) -> int | None:
    """Without flash attention: the V width every attention layer is padded to when the
    widths differ (``llama_kv_cache``'s [TAG_V_CACHE_VARIABLE]), else None."""
    widths = {
        layer.kv_heads * layer.value_length
        for layer in layout.layers
        if layer.kind in ("full", "sliding") and layer.kv_heads
    }
    return max(widths) if len(widths) > 1 else None
