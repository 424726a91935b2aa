"""vLLM's KV cache (V1 engine): layers -> per-layer specs -> groups -> one pool of blocks.

The rules, read in the source of vLLM 0.32.0 (the release ``backends.vllm.VLLM_VERSION`` pins;
paths are inside the ``vllm`` package) and checked against the real CPU image
(``tests/e2e/test_planner_vs_vllm_real.py``, ``docs/planner.md``):

1. A spec per layer and rank (``vllm/v1/kv_cache_interface.py``, built by
   ``Attention.get_kv_cache_spec`` in ``model_executor/layers/attention/attention.py`` and
   ``MLAAttention.get_kv_cache_spec`` in ``.../attention/mla_attention.py``):

   - ``FullAttentionSpec``: a page is ``block x num_kv_heads x (head_size + head_size_v)``
     values of the cache dtype; ``num_kv_heads = max(1, kv_heads // tp)``
     (``ModelConfig.get_num_kv_heads``: heads are replicated when ``tp`` exceeds them); a
     request takes ``cdiv(max_model_len, block)`` blocks;
   - ``SlidingWindowSpec``: the same page; a request holds at most
     ``cdiv(min(window - 1 + in_flight, max_model_len), block) + 1`` blocks
     (``SlidingWindowSpec.max_admission_blocks_per_request``), ``in_flight`` =
     ``max_num_batched_tokens`` x concurrent batches (``VllmConfig.max_in_flight_tokens``: one
     batch on the CPU, whose platform turns async scheduling off; two on GPUs, where it is on);
   - ``MLAAttentionSpec``: one latent "head" of ``kv_lora_rank + qk_rope_head_dim`` values and
     no V (``head_size_v = 0``), whole on every rank (``max_tp_shards=1``);
   - ``MambaSpec`` (Mamba, gated DeltaNet, short convolutions): one page of state per request,
     two in the ``align`` mode that prefix caching (on by default) selects for hybrids
     (``MambaSpec.max_memory_usage_bytes``; ``MambaModelConfig`` in
     ``model_executor/models/config.py``). The conv state is in the model dtype, the SSM state
     in float32 on the CPU (``CpuPlatform.check_and_update_config`` resets
     ``mamba_ssm_cache_dtype`` on CPUs with AVX512-BF16), in the model dtype on GPUs; both are
     split over the ``tp`` ranks (``mamba_utils.MambaStateShapeCalculator``).
2. Block size in tokens: 16 (``CacheConfig.DEFAULT_BLOCK_SIZE``) on GPUs, 128 on the CPU
   (``CpuPlatform.check_and_update_config`` in ``vllm/platforms/cpu.py``). MLA: 16 on the CPU
   (the reference CPU MLA kernel; CPUs with AMX keep 128), on GPUs the MLA backend's kernel
   block (FlashMLA, Hopper's default: 64). Attention next to Mamba layers:
   ``Platform._align_hybrid_block_size`` (``vllm/platforms/interface.py``) raises the block to the
   smallest multiple of the default block (of 128 with MLA) whose attention page holds the
   largest Mamba state, and pads the Mamba page to exactly that page.
3. Groups (``get_kv_cache_groups`` in ``vllm/v1/core/kv_cache_utils.py``): layers with one spec
   make one group; layers of one type (all full attention with different head counts, say) one
   group whose page is their sum. Otherwise (the hybrid allocator, on by default on the CPU and
   GPUs; off for chunked local attention, whose layers then count as full) pages are unified
   (``unify_kv_cache_spec_page_size``: a smaller page's block grows by the ratio of the pages,
   else the page is padded) and each type's layers are dealt into groups of ``group_size``
   layers, the smallest type's layer count, or the largest when that is under 1.5x the smallest
   (``_get_kv_cache_groups_uniform_page_size``; a type's last group may be short: padding).
4. Blocks (``get_kv_cache_config_from_groups``): ``num_blocks = memory // bytes_per_block``,
   ``bytes_per_block`` = the largest group's summed pages (``_get_kv_cache_bytes_per_block``);
   all groups draw their blocks from that one pool.
5. The startup line ``CPU KV cache size: N tokens, Maximum concurrency for L tokens per request:
   Cx`` (``update_kv_cache_capacity``): ``C = num_blocks / blocks one request at L =
   max_model_len takes over all groups`` (``get_max_concurrency_for_kv_cache_config``) and
   ``N = int(C x L)``. N is not ``num_blocks x block``: a max_model_len that is not a multiple of
   the block loses the rest of its last block, and sliding-window and Mamba groups take blocks
   of their own.

The memory vLLM sizes the pool from: on the CPU ``VLLM_CPU_KVCACHE_SPACE`` GiB for each worker
(``CpuPlatform.check_and_update_config`` -> ``CacheConfig.kv_cache_memory_bytes``, taken as is
by ``CPUWorker.determine_available_memory`` in ``vllm/v1/worker/cpu_worker.py``); on GPUs what
``gpu_memory_utilization`` leaves on each GPU after weights and activations.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

from llmdeploy.core.attention import AttentionLayout, LayerCache
from llmdeploy.planner import constants as c
from llmdeploy.planner.kv_cache import KvCacheFigure, element_bytes
from llmdeploy.planner.spec import ServingSpec

# MLA block tokens: the reference CPU MLA kernel only runs 16-token blocks
# (vllm/v1/attention/backends/mla/cpu_mla.py); FlashMLA (Hopper GPUs) 64-token ones
# (.../mla/flashmla.py; CUTLASS MLA on Blackwell: 128, Triton MLA: 16).
MLA_BLOCK_TOKENS = {"cpu": 16, "gpu": 64}
# Batches in flight (VllmConfig.max_concurrent_batches): the CPU platform disables async
# scheduling (one batch); on GPUs it is on by default (two batches).
CONCURRENT_BATCHES = {"cpu": 1, "gpu": 2}
# Mamba pages one request holds: 2 in "align" mode (prefix caching on, vLLM's default), plus
# the prefill checkpoint block of Mamba-2 mixers.
MAMBA_BLOCKS_PER_REQUEST = 2
CHECKPOINT_BLOCKS = {"mamba2": 1}
# SSM state bytes per value on the CPU: float32 (CpuPlatform.check_and_update_config).
CPU_SSM_STATE_BYTES = 4
# the model dtype of a Mamba conv state is at least 16-bit (BF16/FP16; an FP8 KV cache does
# not apply to it: mamba_cache_dtype "auto" follows the model dtype, mamba_utils.py)
MODEL_DTYPE_MIN_BYTES = 2.0
# A hybrid MLA + Mamba model aligns its block to 128 tokens (Platform._align_hybrid_block_size).
MLA_HYBRID_BLOCK_ALIGNMENT = 128
# pages of a type whose layer count is under this multiple of the smallest type's are grouped
# by the largest count instead (kv_cache_utils._get_kv_cache_groups_uniform_page_size)
GROUP_SIZE_SLACK = 1.5


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class LayerSpec:
    """One layer's cache on one rank, as vLLM's ``KVCacheSpec`` sizes it.

    ``kind``: ``full``, ``sliding``, ``mla`` or ``mamba``. ``token_bytes``: bytes a token takes
    (attention kinds); ``state_bytes``: bytes of state per request (``mamba``);
    ``extra_blocks``: a Mamba layer's prefill checkpoint blocks. ``block``: tokens per block;
    ``padded_page``: the page in bytes when vLLM pads it.
    """

    kind: str
    block: int
    token_bytes: int = 0
    window: int | None = None
    state_bytes: int = 0
    extra_blocks: int = 0
    padded_page: int | None = None

    @property
    def page(self) -> int:
        """Bytes of one block of this layer (``KVCacheSpec.page_size_bytes``)."""
        if self.padded_page is not None:
            return self.padded_page
        if self.kind == "mamba":
            return self.state_bytes
        return self.block * self.token_bytes

    def blocks_per_request(self, max_len: int, in_flight: int) -> int:
        """Blocks one request at ``max_len`` tokens holds (``max_memory_usage_bytes / page``)."""
        if self.kind == "mamba":
            return MAMBA_BLOCKS_PER_REQUEST + self.extra_blocks
        if self.kind == "sliding" and self.window:
            return _cdiv(min(self.window - 1 + in_flight, max_len), self.block) + 1
        return _cdiv(max_len, self.block)


@dataclass(frozen=True)
class CacheGroup:
    """A KV-cache group: layers that share one block table (``KVCacheGroupSpec``)."""

    layers: tuple[LayerSpec, ...]

    @property
    def kind(self) -> str:
        return self.layers[0].kind

    @property
    def page_bytes(self) -> int:
        return sum(layer.page for layer in self.layers)


@dataclass(frozen=True)
class VllmCache:
    """vLLM's cache for one model and spec, on one rank: its groups and their common block.

    ``bytes_per_block``: what one block id costs in the pool; ``max_len``: max_model_len;
    ``in_flight``: tokens scheduled but not settled (sliding windows keep them).
    """

    groups: tuple[CacheGroup, ...]
    bytes_per_block: int
    max_len: int
    in_flight: int

    def group_blocks(self, group: CacheGroup) -> int:
        return max(layer.blocks_per_request(self.max_len, self.in_flight) for layer in group.layers)

    @property
    def blocks_per_request(self) -> int:
        """Blocks one request at ``max_len`` takes from the pool, over all groups."""
        return sum(self.group_blocks(group) for group in self.groups)

    def capacity_tokens(self, rank_bytes: int) -> int:
        """``int(num_blocks / blocks_per_request x max_len)``, vLLM's "KV cache size"."""
        per_request = self.blocks_per_request
        if rank_bytes <= 0 or per_request <= 0 or self.bytes_per_block <= 0:
            return 0
        num_blocks = rank_bytes // self.bytes_per_block
        concurrency = num_blocks / per_request  # float, in vLLM's order of operations
        return int(concurrency * self.max_len)

    def describe(self) -> str:
        kinds = Counter(group.kind for group in self.groups)
        parts = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
        blocks = sorted(
            {layer.block for g in self.groups for layer in g.layers if layer.kind != "mamba"}
        )
        return (
            f"vLLM: {len(self.groups)} KV-cache group(s) ({parts}), blocks of "
            f"{'/'.join(map(str, blocks))} tokens, {self.blocks_per_request} blocks per request"
        )


def _state_bytes(spec: ServingSpec) -> tuple[float, float]:
    """Bytes per value of a Mamba layer's (conv, SSM) state: the model dtype (an FP8 KV cache
    leaves it at 2 bytes), the SSM state float32 on the CPU."""
    conv = max(element_bytes(spec)[0], MODEL_DTYPE_MIN_BYTES)
    return conv, CPU_SSM_STATE_BYTES if spec.device == "cpu" else conv


def _layer_spec(layer: LayerCache, spec: ServingSpec, block: int) -> LayerSpec | None:
    k_bytes, v_bytes = element_bytes(spec)
    tp = max(spec.tensor_parallel_size, 1)
    if layer.kind in ("full", "sliding"):
        heads = max(1, layer.kv_heads // tp)
        row = heads * (layer.key_length * k_bytes + layer.value_length * v_bytes)
        window = layer.window if layer.kind == "sliding" else None
        return LayerSpec(layer.kind, block, round(row), window=window)
    if layer.kind == "mla":
        return LayerSpec("mla", block, round(layer.latent_length * k_bytes))
    if layer.kind == "recurrent":
        conv, ssm = _state_bytes(spec)
        state = _cdiv(layer.conv_state, tp) * conv + _cdiv(layer.ssm_state, tp) * ssm
        if not state:
            return None
        extra = CHECKPOINT_BLOCKS.get(layer.mixer or "", 0)
        return LayerSpec("mamba", block, state_bytes=round(state), extra_blocks=extra)
    return None  # "none": the layer reads another layer's cache


def _default_block(layout: AttentionLayout, spec: ServingSpec) -> int:
    if any(layer.kind == "mla" for layer in layout.layers):
        return MLA_BLOCK_TOKENS[spec.device]
    return c.VLLM_BLOCK_TOKENS[spec.device]


def _align_hybrid(specs: list[LayerSpec]) -> list[LayerSpec]:
    """Attention next to Mamba: raise the attention block until its page holds the largest
    Mamba state, then pad every Mamba page to it (``Platform._align_hybrid_block_size``)."""
    attention = [s for s in specs if s.kind != "mamba"]
    states = [s.state_bytes for s in specs if s.kind == "mamba"]
    if not attention or not states:
        return specs
    first = attention[0]  # vLLM sizes from the model-level head count and size
    align = first.block
    if first.kind == "mla":
        align = max(align, MLA_HYBRID_BLOCK_ALIGNMENT)
    block = max(first.block, align * _cdiv(max(states), align * first.token_bytes))
    page = block * first.token_bytes
    return [
        replace(s, padded_page=page) if s.kind == "mamba" else replace(s, block=block)
        for s in specs
    ]


def _one_type(specs: list[LayerSpec]) -> bool:
    """``UniformTypeKVCacheSpecs.is_uniform_type``: one block size, one kind (sliding: one
    window; Mamba: one page), so every layer needs the same number of blocks."""
    first = specs[0]
    return all(
        s.block == first.block
        and s.kind == first.kind
        and (s.kind != "sliding" or s.window == first.window)
        and (s.kind != "mamba" or s.page == first.page)
        for s in specs
    )


def _unify_pages(specs: list[LayerSpec]) -> list[LayerSpec]:
    """``unify_kv_cache_spec_page_size``: every page as large as the largest one."""
    largest = max(s.page for s in specs)
    unified = []
    for s in specs:
        if s.page == largest:
            unified.append(s)
        elif s.kind != "mamba" and s.padded_page is None and largest % s.page == 0:
            unified.append(replace(s, block=s.block * (largest // s.page)))
        else:
            unified.append(replace(s, padded_page=largest))
    return unified


def _hybrid_groups(specs: list[LayerSpec]) -> tuple[CacheGroup, ...]:
    """``_get_kv_cache_groups_uniform_page_size``: each type's layers dealt into groups of
    ``group_size`` layers (layer ``i`` of a type into group ``i mod n``)."""
    buckets: dict[LayerSpec, list[LayerSpec]] = {}
    for s in specs:
        buckets.setdefault(s, []).append(s)
    counts = [len(layers) for layers in buckets.values()]
    group_size = min(counts)
    if max(counts) < min(counts) * GROUP_SIZE_SLACK:
        group_size = max(counts)
    groups: list[CacheGroup] = []
    for layers in buckets.values():
        n = _cdiv(len(layers), group_size)
        groups.extend(CacheGroup(tuple(layers[i::n])) for i in range(n))
    return tuple(groups)


def vllm_cache(layout: AttentionLayout, spec: ServingSpec) -> VllmCache:
    """The groups and block vLLM builds for ``layout`` under ``spec`` (one rank), following
    ``get_kv_cache_groups`` and ``get_kv_cache_config_from_groups`` (module docstring)."""
    block = _default_block(layout, spec)
    specs = [s for lay in layout.layers if (s := _layer_spec(lay, spec, block)) is not None]
    specs = _align_hybrid(specs)
    max_len = spec.context_per_sequence
    batched = min(spec.step_tokens, max(spec.sequences, 1) * max_len)
    in_flight = batched * CONCURRENT_BATCHES[spec.device]
    if not specs:
        return VllmCache((), 0, max_len, in_flight)
    if len(set(specs)) == 1 or _one_type(specs):
        groups: tuple[CacheGroup, ...] = (CacheGroup(tuple(specs)),)
    else:
        groups = _hybrid_groups(_unify_pages(specs))
    bytes_per_block = max(group.page_bytes for group in groups)
    return VllmCache(groups, bytes_per_block, max_len, in_flight)


_KIND_NAMES = {"mamba": "recurrent"}


def vllm_kv_cache(layout: AttentionLayout, spec: ServingSpec) -> KvCacheFigure:
    """The cache the worst case needs: ``max_num_seqs`` requests at ``max_model_len`` at once,
    each taking its blocks in every group, over all ``tensor_parallel_size`` ranks (vLLM's
    ``_max_memory_usage_bytes_from_groups`` x sequences). ``per_token``: bytes a token of
    context costs in the full-attention and MLA layers, over all ranks."""
    cache = vllm_cache(layout, spec)
    tp = max(spec.tensor_parallel_size, 1)
    sequences = max(spec.sequences, 1)
    by_kind: dict[str, int] = {}
    for group in cache.groups:
        name = _KIND_NAMES.get(group.kind, group.kind)
        bytes_ = cache.group_blocks(group) * cache.bytes_per_block * sequences * tp
        by_kind[name] = by_kind.get(name, 0) + bytes_
    block = _default_block(layout, spec)
    per_token = sum(
        s.token_bytes
        for lay in layout.layers
        if (s := _layer_spec(lay, spec, block)) is not None and s.kind in ("full", "mla")
    )
    return KvCacheFigure(sum(by_kind.values()), per_token * tp, by_kind, cache.describe())


def vllm_capacity_tokens(layout: AttentionLayout, spec: ServingSpec, kv_bytes: int) -> int:
    """Tokens vLLM logs its cache holds ("KV cache size: N tokens") for ``kv_bytes`` of cache.

    ``kv_bytes``: on GPUs the memory left for the cache on all ``tensor_parallel_size`` GPUs
    together (each rank sizes its pool from its share); on the CPU ``VLLM_CPU_KVCACHE_SPACE``,
    which every worker allocates for its own shard. 0 when the model has no cache or the
    memory holds no block.
    """
    cache = vllm_cache(layout, spec)
    tp = max(spec.tensor_parallel_size, 1)
    rank_bytes = kv_bytes // tp if spec.device == "gpu" else kv_bytes
    return cache.capacity_tokens(rank_bytes)
