"""How `llmdeploy plan MODEL_REF` prints its answers for people (``--json`` prints
``QuestionOutcome.to_json()`` instead)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmdeploy.planner.request import QuestionOutcome
    from llmdeploy.planner.sizing import GpuCountAnswer, KvAnswer, Sizing

_BACKEND_NAMES = {"vllm": "vLLM", "llamacpp": "llama.cpp", "ollama": "Ollama"}
# the flag each backend takes for one sequence's context and for concurrency
_CONTEXT_KNOB = {"vllm": "max_model_len", "llamacpp": "ctx_size", "ollama": "num_ctx"}
_SEQUENCES_KNOB = {"vllm": "max_num_seqs", "llamacpp": "parallel", "ollama": "num_parallel"}


def _bytes(value: int | float) -> str:
    from llmdeploy.core.sizes import format_bytes

    return format_bytes(value, digits=2)


def render_question(console: Any, outcome: QuestionOutcome) -> None:
    """The model, what reading it cost, the GPU, a table of answers and a verdict per KV type."""
    from rich.markup import escape

    question, info, facts, sizing = outcome.question, outcome.info, outcome.facts, outcome.sizing
    params = f"{_params(info.parameters)} params, " if info.parameters else ""
    layout = info.attention.summary() if info.attention else f"{info.layers} layers"
    context = f"context {info.context_length:,}" if info.context_length else "context unknown"
    console.print(
        f"[bold]{escape(question.ref)}[/bold]: {escape(info.architecture or 'unknown')} "
        f"({params}{escape(str(info.quantization or info.torch_dtype or '?'))}, "
        f"{escape(layout)}; {context})"
    )
    console.print(f"read: {escape(_read_line(outcome))}", soft_wrap=True)
    backend = _BACKEND_NAMES[sizing.backend]
    first = sizing.answers[0].by_gpus[0] if sizing.answers else None
    weights = f", weights {_bytes(first.weights_bytes)}" if first else ""
    console.print(f"GPU: {escape(_gpu_line(outcome))}; {backend}{weights}")
    console.print(_table(sizing))
    for answer in sizing.answers:
        console.print(f"  {escape(_verdict(sizing, answer))}", soft_wrap=True)
    for note in [*(facts.stats.notes if facts.stats else ()), *sizing.notes]:
        console.print(f"[dim]note:[/dim] {escape(note)}", soft_wrap=True)


def _read_line(outcome: QuestionOutcome) -> str:
    facts = outcome.facts
    stats = facts.stats
    if stats is None:
        return f"{facts.origin} (nothing downloaded)"
    of = f" of {_bytes(facts.file_bytes)}" if facts.file_bytes else ""
    share = ""
    if facts.file_bytes:
        share = f", {100 * stats.bytes_read / facts.file_bytes:.3g}%"
    requests = "request" if stats.requests == 1 else "requests"
    ranged = "" if stats.ranged else "; the server ignored Range requests"
    return (
        f"{facts.origin}: {_bytes(stats.bytes_read)}{of} in {stats.requests} {requests}"
        f"{share}{ranged}"
    )


def _gpu_line(outcome: QuestionOutcome) -> str:
    from llmdeploy.core.sizes import format_gib

    question = outcome.question
    gpu = question.gpu
    if gpu is None:
        return f"{format_gib(question.per_gpu_bytes)} per GPU ({question.gpu_source})"
    return (
        f"{gpu.name}: {gpu.stated_gb} GB as stated, {format_gib(gpu.memory_bytes)} reported "
        f"({gpu.reported_mib:,} MiB)"
    )


def _gpus_cell(sizing: Sizing, gpus: int) -> str:
    if gpus == 1:
        return "1"
    return f"{gpus} (TP {gpus})" if sizing.backend == "vllm" else f"{gpus} (layer split)"


def _table(sizing: Sizing) -> Any:
    from rich.table import Table

    table = Table(show_header=True, header_style="bold")
    table.add_column("KV cache")
    table.add_column("KV/token", justify="right")
    table.add_column("GPUs", justify="right")
    table.add_column("max context, 1 sequence", justify="right")
    table.add_column(f"sequences at {sizing.context:,}", justify="right")
    for answer in sizing.answers:
        for index, cell in enumerate(answer.by_gpus):
            head = [_kv_name(answer), _bytes(answer.kv_bytes_per_token)] if index == 0 else ["", ""]
            table.add_row(*head, _gpus_cell(sizing, cell.gpus), *_cells(cell))
    return table


def _kv_name(answer: KvAnswer) -> str:
    if answer.kv_cache_dtype == "auto":
        return f"auto ({answer.kv_format.lower()})"
    return answer.kv_cache_dtype


def _cells(cell: GpuCountAnswer) -> list[str]:
    if not cell.valid:
        return ["n/a", "n/a"]
    if cell.max_context is None:
        return ["does not fit", "0"]
    context = f"{cell.max_context:,}" + (" (full)" if cell.max_context_is_full else "")
    return [context, f"{cell.max_sequences:,}"]


def _verdict(sizing: Sizing, answer: KvAnswer) -> str:
    """One line per KV type: does one GPU do, what more GPUs buy."""
    name = _kv_name(answer)
    context = f"{sizing.context:,}-token"
    one = answer.by_gpus[0]
    knob = _CONTEXT_KNOB[sizing.backend]
    if answer.gpus_needed is None:
        head = f"{name}: even 8 GPUs do not hold one {context} sequence"
    elif answer.gpus_needed == 1:
        head = f"{name}: one GPU holds {_count(one.max_sequences, context + ' sequence')}"
    else:
        unit = "tensor_parallel_size" if sizing.backend == "vllm" else "GPUs"
        limit = (
            f"one GPU takes {knob} {one.max_context:,} at most"
            if one.max_context
            else "the weights alone do not fit one GPU"
        )
        head = f"{name}: needs {unit} {answer.gpus_needed} for one {context} sequence ({limit})"
    more = [cell for cell in answer.by_gpus[1:] if cell.valid]
    if not more:
        invalid = [cell for cell in answer.by_gpus[1:] if not cell.valid]
        return head + (f"; {invalid[0].gpus} GPUs: {invalid[0].why_not}" if invalid else "")
    cell = more[-1]
    if cell.max_context is None:
        return head + f"; {cell.gpus} GPUs: still does not fit"
    gains = f"{cell.gpus} GPUs: {_count(cell.max_sequences, 'sequence')} at {sizing.context:,}"
    if not one.max_context_is_full:
        full = " (the full context)" if cell.max_context_is_full else ""
        gains += f", {knob} up to {cell.max_context:,}{full}"
    if sizing.backend == "vllm" and cell.max_sequences > 256:
        gains += f" ({_SEQUENCES_KNOB['vllm']} defaults to 256)"
    return f"{head}; {gains}"


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}" + ("" if n == 1 else "s")


def _params(n: int) -> str:
    if n >= 10**9:
        return f"{n / 1e9:.3g}B"
    return f"{n / 1e6:.3g}M" if n >= 10**6 else f"{n:,}"
