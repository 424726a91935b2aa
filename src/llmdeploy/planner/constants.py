"""The planner's explicit allowances and the backends' defaults it assumes, with their sources.

Everything here is an allowance (a budgeted figure), not a measurement of a particular host;
``docs/planner.md`` lists each with where it comes from and how it was checked.
"""

from __future__ import annotations

MiB = 1024**2
GiB = 1024**3

# --- runtime overhead: what a running server holds besides weights, KV cache and activations
# (process, libraries, CUDA context), per process or per GPU.
RUNTIME_BYTES: dict[tuple[str, str], int] = {
    # llama-server: the binary, its threads, small output buffers. In llmdeploy's CPU image it
    # runs in a Python process (the xllamacpp shim), so the allowance covers that interpreter.
    ("llamacpp", "cpu"): 128 * MiB,
    # a CUDA context, before any tensor: measured on an H100 (CUDA 12, torch) at 610 MiB,
    # 676 MiB once cuBLAS has run a GEMM (its workspace)
    ("llamacpp", "gpu"): 640 * MiB,
    # the Ollama server and its runner subprocess (Go binaries linking llama.cpp)
    ("ollama", "cpu"): 256 * MiB,
    ("ollama", "gpu"): 896 * MiB,
    # vLLM 0.32 on the CPU runs three Python processes with torch loaded (API server, engine
    # core, worker). Measured here on the tiny model with VLLM_CPU_KVCACHE_SPACE=1: 3.05 GiB
    # PSS in all, of which 1 GiB KV cache and 0.25 GiB weights, so about 1.8 GiB of runtime.
    ("vllm", "cpu"): 2 * GiB,
    # CUDA context and cuBLAS (676 MiB measured, above), NCCL and allocator slack, per GPU
    ("vllm", "gpu"): 1 * GiB,
}
# vLLM captures CUDA graphs unless --enforce-eager; its startup log reports about 0.2-1 GiB
# ("Graph capturing finished ... took X GiB"), per GPU.
CUDA_GRAPHS_BYTES = 512 * MiB

# --- activations: intermediate tensors of one forward step. Peak ~ tokens in the step x
# hidden size x this many bytes (about 16 fp32 hidden-sized vectors alive per token: residual,
# norms, q/k/v, attention output, the wider MLP gate/up projections). Checked against
# llama.cpp's "CPU compute buffer size = 15.64 MiB" for the tiny model (512-token ubatch,
# hidden 576): 512 x 576 x 64 = 18.0 MiB.
ACTIVATION_BYTES_PER_TOKEN_PER_HIDDEN = 64
# last-token logits of each running sequence, float32
LOGIT_BYTES = 4
# when the hidden size is unknown: this fraction of the weights stands in for activations
ACTIVATION_FALLBACK_FRACTION = 0.05

# tokens in one forward step (prompt processing batch)
STEP_TOKENS_DEFAULT: dict[str, int] = {
    "llamacpp": 512,  # llama-server --ubatch-size default
    "ollama": 512,  # Ollama's num_batch default
    "vllm": 2048,  # vLLM V1's max_num_batched_tokens default for the OpenAI server
}

# --- backend defaults the planner assumes when a profile leaves them unset
# vLLM --gpu-memory-utilization: 0.92 in the pinned vLLM 0.32.0 (config/cache.py,
# CacheConfig.gpu_memory_utilization; releases up to 0.10 had 0.9). The planner follows the
# pinned release so that its figures are the server's.
VLLM_GPU_MEMORY_UTILIZATION = 0.92
# vLLM --max-num-seqs for the OpenAI server, per device kind: 256 on GPUs (engine arguments
# reference) and 128 x world size on the CPU (vLLM 0.32.0 engine/arg_utils.py,
# _get_default_max_num_seqs_and_batched_tokens: UsageContext.OPENAI_API_SERVER on CPU)
VLLM_MAX_NUM_SEQS = {"gpu": 256, "cpu": 128}
# KV-cache block size in tokens: 16 on CUDA; 128 on the CPU (vllm/platforms/cpu.py)
VLLM_BLOCK_TOKENS = {"gpu": 16, "cpu": 128}
# VLLM_CPU_KVCACHE_SPACE unset: the CPU worker reserves --gpu-memory-utilization (0.92) x the
# total memory of its NUMA node as *it* sees it (not a container's limit) and gives the KV cache
# what its own process does not already use (vLLM 0.32.0 v1/worker/cpu_worker.py:
# requested_cpu_memory = total x utilization; determine_available_memory: requested - RSS). It
# refuses to start when that reservation exceeds the node's *available* memory.
VLLM_CPU_KV_DEFAULT_FRACTION = VLLM_GPU_MEMORY_UTILIZATION
# Ollama's OLLAMA_NUM_PARALLEL default (docs/faq: "default 1")
OLLAMA_NUM_PARALLEL = 1

# Suggested context sizes are rounded down to a multiple of this many tokens.
CONTEXT_ROUNDING = 256
