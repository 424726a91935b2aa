"""Start vLLM's engine on each synthetic config in turn, inside the vLLM CPU image.

Run by ``tests/e2e/test_planner_vs_vllm_real.py`` as ``python /cfg/probe.py /cfg/cases.json``
with this folder mounted read-only at /cfg; each case names a config folder here. One Python process (vLLM and torch imported once) and
``VLLM_ENABLE_V1_MULTIPROCESSING=0`` (the engine core in this process), so the five or six
engines start in seconds each instead of ~50 s per ``vllm serve``. The engine is built from
``EngineArgs`` with the OpenAI server's usage context, so the defaults that shape the KV cache
(``max_num_seqs``, ``max_num_batched_tokens`` on the CPU) are the server's.

Between ``=== CASE <name>`` and ``=== END <name> ok`` (or ``=== END <name> error: ...``) each
case logs vLLM's own lines, among them
``CPU KV cache size: N tokens, Maximum concurrency for L tokens per request: Xx``. The test
parses those lines; this script reports nothing itself. After the cache is allocated, one
request of three prompt tokens and two output tokens checks that the model really runs.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import traceback


def run_case(case: dict[str, object], folder: str) -> None:
    from vllm import SamplingParams
    from vllm.distributed.parallel_state import cleanup_dist_env_and_memory
    from vllm.engine.arg_utils import EngineArgs
    from vllm.usage.usage_lib import UsageContext
    from vllm.v1.engine.llm_engine import LLMEngine

    args = EngineArgs(
        model=os.path.join(folder, str(case["config"])),
        load_format="dummy",
        skip_tokenizer_init=True,
        enforce_eager=True,
        max_model_len=int(str(case["max_model_len"])),
        max_num_seqs=int(str(case["max_num_seqs"])) if "max_num_seqs" in case else None,
        disable_log_stats=True,
    )
    engine = LLMEngine.from_engine_args(args, usage_context=UsageContext.OPENAI_API_SERVER)
    try:
        params = SamplingParams(max_tokens=2, ignore_eos=True, detokenize=False)
        engine.add_request("probe", {"prompt_token_ids": [3, 4, 5]}, params)
        for _ in range(50):
            outputs = engine.step()
            if any(out.finished for out in outputs):
                break
        else:
            raise RuntimeError("the probe request did not finish in 50 steps")
    finally:
        engine.engine_core.shutdown()
        del engine
        gc.collect()
        cleanup_dist_env_and_memory()


def inspect_models_in_process() -> None:
    """vLLM inspects each architecture in a fresh Python subprocess (``_run_in_subprocess``
    in ``vllm/model_executor/models/registry.py``) so that CUDA is not initialised in the
    parent; on the CPU that is a second torch import, ~10 s per case on 2 cores, and changes
    nothing the KV cache depends on. Run that inspection here instead."""
    from vllm.model_executor.models import registry

    registry._run_in_subprocess = lambda fn: fn()  # type: ignore[attr-defined]


def forget_logged_once() -> None:
    """vLLM logs the KV cache line with ``info_once`` (an ``lru_cache`` in ``vllm/logger.py``);
    two engines in one process with equal figures would log it once. Forget what was logged."""
    from vllm import logger

    for name in ("_print_debug_once", "_print_info_once", "_print_warning_once"):
        getattr(logger, name).cache_clear()


def main() -> int:
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    inspect_models_in_process()
    with open(sys.argv[1], encoding="utf-8") as handle:
        cases = json.load(handle)["cases"]
    folder = os.path.dirname(os.path.abspath(sys.argv[1]))
    for case in cases:
        name = case["name"]
        forget_logged_once()
        print(f"=== CASE {name}", flush=True)
        try:
            run_case(case, folder)
        except Exception as exc:  # a family the CPU backend refuses: report and go on
            traceback.print_exc()
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
            print(f"=== END {name} error: {reason}", flush=True)
        else:
            print(f"=== END {name} ok", flush=True)
        sys.stderr.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
