"""The servers' own KV cache figures, read from their logs (backends/server_figures.py).

The ``server_logs/`` files are real container logs (see ``server_logs/README.md`` for how each
was made); lines written here by hand follow the format strings of the server's source, cited
beside each.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmdeploy.backends.server_figures import (
    MAX_LOG_LINES,
    read_llamacpp,
    read_ollama,
    read_server_kv,
    read_vllm,
)
from llmdeploy.core.sizes import GIB, MIB

LOGS = Path(__file__).parent / "server_logs"


def log(name: str) -> list[str]:
    return (LOGS / name).read_text(encoding="utf-8").splitlines()


class Counted:
    """An iterator over lines that counts how many were taken (the engine streams the log)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.taken = 0

    def __iter__(self) -> Iterator[str]:
        for line in self.lines:
            self.taken += 1
            yield line


# -- llama.cpp ---------------------------------------------------------------------------------


def test_llamacpp_real_log_of_the_tiny_model() -> None:
    """`up --profile edge-podman` (ctx 2048, 2 slots): 45.00 MiB, what the planner says."""
    lines = Counted(log("llamacpp-smollm2-podman.log"))
    found = read_llamacpp(lines)
    assert found is not None
    assert found.bytes == 45 * MIB == 47_185_920
    assert found.tokens is None
    assert len(found.lines) == 1 and "llama_kv_cache: size =   45.00 MiB" in found.lines[0]
    # reading stops at "model loaded": the request lines after it are never fetched
    assert lines.taken < len(lines.lines)
    assert "model loaded" in lines.lines[lines.taken - 1]


def test_llamacpp_sliding_window_model_sums_both_caches() -> None:
    """Gemma 3 270M (sliding window 512): llama_kv_cache_iswa builds a full and an SWA cache."""
    found = read_llamacpp(log("llamacpp-gemma3-swa-podman.log"))
    assert found is not None
    assert found.bytes == (6 + 30) * MIB
    assert [line.split("size =")[1].split("MiB")[0].strip() for line in found.lines] == [
        "6.00",
        "30.00",
    ]


def test_llamacpp_at_default_verbosity_reports_nothing_and_stops_early() -> None:
    """llama-server's default verbosity (3) hides libllama's INFO lines: "not reported"."""
    lines = Counted(log("llamacpp-smollm2-verbosity3.log"))
    assert read_llamacpp(lines) is None
    assert "model loaded" in lines.lines[lines.taken - 1]  # and no line more was fetched
    assert lines.taken < len(lines.lines)


# llama.cpp src/llama-kv-cache.cpp: "%s: size = %7.2f MiB (%6u cells, %3d layers, %2u/%u seqs),
# K (%s): %7.2f MiB, V (%s): %7.2f MiB"; src/llama-memory-recurrent.cpp: "%s: size = %7.2f MiB
# (%6u cells, %3d layers, %2u seqs), R (%s): %7.2f MiB, S (%s): %7.2f MiB"
MAIN_CONTEXT = [
    "I llama_context: constructing llama_context",
    "I llama_context: n_ctx                 = 4096",
    "I llama_kv_cache: size =  128.00 MiB (  4096 cells,  16 layers,  1/1 seqs), "
    "K (f16):   64.00 MiB, V (f16):   64.00 MiB",
]
DRAFT_CONTEXT = [
    "I llama_context: constructing llama_context",
    "I llama_kv_cache: size =   12.00 MiB (  4096 cells,   2 layers,  1/1 seqs), "
    "K (f16):    6.00 MiB, V (f16):    6.00 MiB",
]


def test_llamacpp_takes_the_largest_context_not_a_draft_model_or_a_probe() -> None:
    for contexts in ([*MAIN_CONTEXT, *DRAFT_CONTEXT], [*DRAFT_CONTEXT, *MAIN_CONTEXT]):
        found = read_llamacpp([*contexts, "I srv  init: model loaded"])
        assert found is not None and found.bytes == 128 * MIB
    # a probe that builds the same context first is not counted twice
    again = read_llamacpp([*MAIN_CONTEXT, *MAIN_CONTEXT, "I srv  init: model loaded"])
    assert again is not None and again.bytes == 128 * MIB and len(again.lines) == 1


def test_llamacpp_hybrid_model_adds_the_recurrent_state() -> None:
    lines = [
        "llama_context: constructing llama_context",
        "llama_kv_cache: size =   16.00 MiB (  4096 cells,   4 layers,  1/1 seqs), "
        "K (f16):    8.00 MiB, V (f16):    8.00 MiB",
        "llama_memory_recurrent: size =    2.25 MiB (     1 cells,  28 layers,  1 seqs), "
        "R (f32):    0.25 MiB, S (f32):    2.00 MiB",
    ]
    found = read_llamacpp(lines)
    assert found is not None and found.bytes == round(18.25 * MIB)


def test_llamacpp_builds_of_2024_kv_self_size() -> None:
    # llama.cpp 2024 (src/llama.cpp, llama_new_context_with_model): "%s: KV self size  = %7.2f MiB"
    lines = [
        "llama_new_context_with_model: n_ctx      = 2048",
        "llama_kv_cache_init:        CPU KV buffer size =    45.00 MiB",
        "llama_new_context_with_model: KV self size  =   45.00 MiB, K (f16):   22.50 MiB, "
        "V (f16):   22.50 MiB",
    ]
    found = read_llamacpp(lines)
    assert found is not None and found.bytes == 45 * MIB and len(found.lines) == 1


# -- Ollama ------------------------------------------------------------------------------------


def test_ollama_reads_the_llama_server_it_runs() -> None:
    """Ollama 0.30+ runs llama-server with --log-verbosity 4 --no-log-prefix
    --no-log-timestamps and copies its output into its own log (llm/llama_server.go,
    llm/status.go): the real llama-server lines without their time and level prefix."""
    server = [line.split(" ", 2)[2] if line[:1].isdigit() else line
              for line in log("llamacpp-smollm2-podman.log")]
    ollama = [
        'time=2026-11-30T00:00:00.000Z level=INFO source=routes.go:1600 msg="Listening on '
        '[::]:11434 (version 0.32.15)"',
        'time=2026-11-30T00:00:01.000Z level=INFO source=llama_server.go:433 msg="starting '
        'llama-server" cmd="/usr/lib/ollama/llama-server --model /root/.ollama/models/blobs/'
        'sha256-0123 --ctx-size 2048 --parallel 2 --log-verbosity 4 --no-log-prefix"',
        *server,
        '[GIN] 2026/11/30 - 00:00:03 | 200 |  2.1s | 127.0.0.1 | POST "/api/generate"',
    ]
    found = read_ollama(ollama)
    assert found is not None and found.bytes == 45 * MIB
    assert found.lines == ("llama_kv_cache: size =   45.00 MiB (  1024 cells,  30 layers,  "
                           "2/2 seqs), K (f16):   22.50 MiB, V (f16):   22.50 MiB",)


def test_ollama_go_engine_kv_cache_lines() -> None:
    """Older Ollama engines: ml/device.go BackendMemory.Log, one "kv cache" line per device
    (format.HumanBytes2: one decimal, binary units), then "total memory"; logged again for
    every layout the scheduler tries: the largest load is the one that is served."""
    head = "time=2026-01-01T00:00:00.000Z level=INFO source=device.go:"
    lines = [
        head + '252 msg="kv cache" device=CUDA0 size="1.0 GiB"',
        head + '273 msg="total memory" size="5.2 GiB"',
        head + '252 msg="kv cache" device=CUDA0 size="1.5 GiB"',
        head + '257 msg="kv cache" device=CPU size="512.0 MiB"',
        head + '273 msg="total memory" size="6.8 GiB"',
    ]
    found = read_ollama(lines)
    assert found is not None and found.bytes == 2 * GIB and len(found.lines) == 2


def test_ollama_without_a_loaded_model_reports_nothing() -> None:
    lines = ['time=2026-11-30T00:00:00.000Z level=INFO source=routes.go:1600 msg="Listening on '
             '[::]:11434 (version 0.32.15)"']
    assert read_ollama(lines) is None


# -- vLLM --------------------------------------------------------------------------------------


def test_vllm_cpu_real_log_of_the_tiny_model() -> None:
    """`up --profile cpu-vllm` (VLLM_CPU_KVCACHE_SPACE=1, max_model_len 2048)."""
    lines = Counted(log("vllm-cpu-smollm2-podman.log"))
    found = read_vllm(lines)
    assert found is not None
    assert found.tokens == 46_592
    assert found.bytes == 1 * GIB
    assert any("CPU KV cache size: 46,592 tokens" in line for line in found.lines)
    assert lines.taken < len(lines.lines)  # stops at the tokens line


def test_vllm_gpu_and_older_wordings() -> None:
    # vllm/v1/worker/gpu_worker.py "Available KV cache memory: %s GiB"; older kv_cache_utils.py
    # logged "GPU KV cache size: %s tokens" alone on its line
    lines = [
        "(VllmWorker TP0 pid=51) INFO 01-01 00:00:00 [gpu_worker.py:298] Available KV cache "
        "memory: 4.25 GiB",
        "(EngineCore_0 pid=40) INFO 01-01 00:00:01 [kv_cache_utils.py:1087] GPU KV cache size: "
        "123,456 tokens",
        "(EngineCore_0 pid=40) INFO 01-01 00:00:01 [kv_cache_utils.py:1091] Maximum concurrency "
        "for 8,192 tokens per request: 15.07x",
    ]
    found = read_vllm(lines)
    assert found is not None
    assert found.tokens == 123_456 and found.bytes == round(4.25 * GIB)


def test_vllm_auto_set_cpu_cache() -> None:
    # vllm/v1/worker/cpu_worker.py, VLLM_CPU_KVCACHE_SPACE unset
    line = ("(Worker pid=35) INFO 11-22 18:04:30 [cpu_worker.py:260] Auto set (8.5/17.09) GiB "
            "for KV cache on node 0, with 16.0 GiB requested memory for the worker.")
    found = read_vllm([line])
    assert found is not None and found.bytes == round(8.5 * GIB) and found.tokens is None


# -- every input ends in a figure or None, never an exception ---------------------------------


@pytest.mark.parametrize("backend", ["llamacpp", "ollama", "vllm", "no-such-backend"])
def test_no_input_raises(backend: str) -> None:
    rng = random.Random(10)
    pieces = ["llama_kv_cache:", "size =", "MiB", "KV cache size:", "tokens", ",", "msg=",
              '"kv cache"', 'size="', "GiB", "(", ")", "\x00", "é", "9" * 40, "-1", "nan", " "]
    for _ in range(300):
        lines = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
                 for _ in range(rng.randint(0, 8))]
        found = read_server_kv(backend, lines)
        assert found is None or (found.bytes or 0) >= 0
    assert read_server_kv(backend, []) is None
    assert read_server_kv(backend, ["", "\n", "size = MiB"]) is None


def test_an_endless_log_is_read_only_so_far() -> None:
    def endless() -> Iterator[str]:
        while True:
            yield "0.01.000.000 I slot update_slots: id 0 | task 1 | prompt processing"

    for backend in ("llamacpp", "ollama", "vllm"):
        lines = Counted([])
        lines.lines = endless()  # type: ignore[assignment]
        assert read_server_kv(backend, lines) is None
        assert lines.taken == MAX_LOG_LINES
