"""The KV cache a server reports in its own log, per backend: ``read_server_kv(backend, lines)``.

Each reader takes the container's log lines from the start, stops reading as soon as it has
what it needs (the lines are streamed from the engine), and returns a ``ServerKv``, or None
when the log has no such line ("not reported"); no input raises.

llama.cpp (``llama-server``; the strings are llama.cpp's ``LLAMA_LOG_INFO`` calls):

- ``src/llama-kv-cache.cpp``, once per cache a context builds (a sliding-window model builds
  two, ``llama_kv_cache_iswa``: the SWA and the full one)::

      llama_kv_cache: size =   45.00 MiB (  1024 cells,  30 layers,  2/2 seqs), K (f16): ...

  (``llama_kv_cache_unified:`` in 2025 builds);
- ``src/llama-memory-recurrent.cpp``, the recurrent state of Mamba / RWKV / hybrid layers::

      llama_memory_recurrent: size =    0.50 MiB (     1 cells,  24 layers,  1 seqs), R ...

- builds of 2024: ``llama_new_context_with_model: KV self size  =  256.00 MiB, K (f16): ...``.

The sizes of one context are summed. A server may build several contexts (the ``--fit`` probe,
a draft model); a context starts at ``llama_context: constructing llama_context`` (2025+), or
at ``llama_new_context_with_model: n_ctx`` / ``llama_init_from_model: n_ctx`` (older), and the
largest context is the served model's. These lines are INFO messages of libllama, which current
``llama-server`` prints only at ``--log-verbosity 4`` (its default is 3): the llama.cpp backend
renders that flag. Reading stops at ``model loaded`` (the server logs it once every context is
built).

Ollama (its log holds the output of the ``llama-server`` it runs per model; 0.30+ starts it
with ``--log-verbosity 4 --no-log-prefix``, ``llm/llama_server.go``): the llama.cpp lines above.
Older Ollama engines (``ml/device.go``, ``BackendMemory.Log``) log one line per device::

    level=INFO source=device.go:257 msg="kv cache" device=CPU size="45.0 MiB"

summed per load (a load ends at ``msg="total memory"``), the largest load taken.

vLLM (0.32, the V1 engine):

- ``vllm/v1/core/kv_cache_utils.py``, ``update_kv_cache_capacity``::

      CPU KV cache size: 46,592 tokens, Maximum concurrency for 2,048 tokens per request: 22.75x

  (``GPU KV cache size`` on CUDA; older versions log the same words without the second clause);
- the bytes: ``vllm/v1/worker/gpu_worker.py`` ``Available KV cache memory: 1.23 GiB``;
  ``vllm/v1/worker/cpu_worker.py`` ``Explicitly set (1.0/17.09) GiB for KV cache on node 0.``
  or ``Auto set (...)`` (GiB = 2**30; one worker's share with tensor parallelism).

Reading stops at the tokens line (vLLM logs it after the bytes line).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from itertools import islice

from llmdeploy.core.kv_report import ServerKv
from llmdeploy.core.sizes import GIB, KIB, MIB

#: log lines read at most: the KV lines come within the first few hundred of a start
MAX_LOG_LINES = 5000

_NUMBER = r"(\d+(?:\.\d+)?)"
_LLAMA_SIZE = re.compile(
    r"\b(?:llama_kv_cache\w*|llama_memory_recurrent\w*):\s+size\s*=\s*(?P<mib>\d+(?:\.\d+)?)\s*MiB"
    r"|KV self size\s*=\s*(?P<self_mib>\d+(?:\.\d+)?)\s*MiB"
)
_LLAMA_NEW_CONTEXT = re.compile(
    r"llama_context: constructing llama_context"
    r"|llama_new_context_with_model: n_ctx\s*="
    r"|llama_init_from_model: n_ctx\s*="
)
_LLAMA_LOADED = re.compile(r"\bmodel loaded\b")
_OLLAMA_KV = re.compile(r'msg="kv cache".*?\bsize="' + _NUMBER + r' (B|KiB|MiB|GiB)"')
_OLLAMA_TOTAL = re.compile(r'msg="total memory"')
_OLLAMA_UNITS = {"B": 1, "KiB": KIB, "MiB": MIB, "GiB": GIB}
_VLLM_TOKENS = re.compile(r"\bKV cache size: (\d[\d,]*) tokens")
_VLLM_BYTES = re.compile(
    r"Available KV cache memory: " + _NUMBER + r" GiB"
    r"|(?:Explicitly|Auto) set \(" + _NUMBER + r"/[\d.]+\) GiB for KV cache"
)

Reader = Callable[[Iterable[str]], "ServerKv | None"]


def read_llamacpp(lines: Iterable[str]) -> ServerKv | None:
    """llama-server's KV cache: the largest context's caches, summed (module docstring)."""
    contexts: list[list[tuple[str, int]]] = [[]]
    for line in islice(lines, MAX_LOG_LINES):
        if _llama_line(line, contexts) and _LLAMA_LOADED.search(line):
            break  # every context is built: nothing more to read
    return _largest(contexts)


def read_ollama(lines: Iterable[str]) -> ServerKv | None:
    """Ollama's KV cache: its llama-server's lines, else the older engines' ``kv cache`` ones."""
    llama: list[list[tuple[str, int]]] = [[]]
    go: list[list[tuple[str, int]]] = [[]]
    for line in islice(lines, MAX_LOG_LINES):
        if _llama_line(line, llama) and _LLAMA_LOADED.search(line) and any(llama):
            break  # Ollama's llama-server loaded the model: its contexts are built
        if (match := _OLLAMA_KV.search(line)) is not None:
            size = float(match.group(1)) * _OLLAMA_UNITS[match.group(2)]
            go[-1].append((line.strip(), round(size)))
        elif _OLLAMA_TOTAL.search(line) and go[-1]:
            go.append([])
    return _largest(llama) or _largest(go)


def read_vllm(lines: Iterable[str]) -> ServerKv | None:
    """vLLM's KV cache: the tokens it holds, and the memory one worker gave it."""
    tokens: int | None = None
    size: int | None = None
    seen: list[str] = []
    for line in islice(lines, MAX_LOG_LINES):
        if size is None and (match := _VLLM_BYTES.search(line)) is not None:
            size = round(float(match.group(1) or match.group(2)) * GIB)
            seen.append(line.strip())
        elif (match := _VLLM_TOKENS.search(line)) is not None:
            tokens = int(match.group(1).replace(",", ""))
            seen.append(line.strip())
            break
    if tokens is None and size is None:
        return None
    return ServerKv(bytes=size, tokens=tokens, lines=tuple(seen))


READERS: dict[str, Reader] = {
    "llamacpp": read_llamacpp,
    "ollama": read_ollama,
    "vllm": read_vllm,
}

#: what each backend's reader looks for, and when the server writes it ("not reported" notes)
LOOKED_FOR: dict[str, tuple[str, str]] = {
    "llamacpp": (
        "`llama_kv_cache: size = ... MiB`",
        "llama-server prints it at --log-verbosity 4 or more",
    ),
    "ollama": (
        '`llama_kv_cache: size = ... MiB` or `msg="kv cache"`',
        "Ollama logs it when it loads the model",
    ),
    "vllm": ("`KV cache size: N tokens`", "vLLM logs it when its engine has started"),
}


def read_server_kv(backend: str, lines: Iterable[str]) -> ServerKv | None:
    """The KV cache ``backend``'s server reports in ``lines`` (its log from the start); None
    when the log has no such line or the backend has no reader."""
    reader = READERS.get(backend)
    return reader(lines) if reader is not None else None


# -- llama.cpp ---------------------------------------------------------------------------------


def _llama_line(line: str, contexts: list[list[tuple[str, int]]]) -> bool:
    """Take one llama.cpp log line into ``contexts``; True when it may be a marker line
    (neither a size line nor a new context)."""
    if _LLAMA_NEW_CONTEXT.search(line):
        if contexts[-1]:
            contexts.append([])
        return False
    match = _LLAMA_SIZE.search(line)
    if match is None:
        return True
    mib = float(match.group("mib") or match.group("self_mib"))
    contexts[-1].append((line.strip(), round(mib * MIB)))
    return False


def _largest(groups: list[list[tuple[str, int]]]) -> ServerKv | None:
    filled = [group for group in groups if group]
    if not filled:
        return None
    best = max(filled, key=lambda group: sum(size for _, size in group))
    return ServerKv(bytes=sum(size for _, size in best), lines=tuple(line for line, _ in best))
