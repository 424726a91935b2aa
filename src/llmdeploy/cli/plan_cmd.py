"""`llmdeploy plan`: does a profile (or a hypothetical model) fit its memory before anything starts?

Reads the options into a ``PlanRequest``, calls ``planner.request.plan_request`` once, prints
the outcome (a table or JSON) and turns a misfit into exit 10 (PlanError). What the options
mean, and which target a plan uses, is the planner's: ``docs/planner.md``.

``plan MODEL_REF --gpu NAME`` asks another question, before buying a GPU: what fits on GPUs of
one size (``planner.request.ModelQuestion``, answered by ``answer_question``). It reads only
the model's headers, and exits 0 whatever the answer (an answer is not a misfit).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from llmdeploy.cli.options import JsonOpt, ProfileFileOpt, ProfileOpt

if TYPE_CHECKING:
    from llmdeploy.planner.request import PlanOutcome


def plan(
    model_ref: str | None = typer.Argument(
        None,
        metavar="[MODEL_REF]",
        help="A model to size before buying a GPU: hf://org/repo, hf://org/repo/file.gguf, "
        "https://.../model.gguf, ollama://name:tag or a local path. Only its headers are read.",
    ),
    gpu: str | None = typer.Option(
        None, "--gpu", help="A GPU by name: h100, h200, a100-80gb, l4, l40s, rtx-4090, ..."
    ),
    gpus: int | None = typer.Option(
        None, "--gpus", min=1, help="With MODEL_REF: the GPU count to compare with one (2)."
    ),
    profile: str | None = ProfileOpt,
    profile_file: Path | None = ProfileFileOpt,
    gpu_memory: str | None = typer.Option(
        None,
        "--gpu-memory",
        help="Memory of ONE GPU, e.g. 24GiB (vLLM multiplies it by tensor_parallel_size). "
        "Default for CUDA profiles: what nvidia-smi reports.",
    ),
    memory: str | None = typer.Option(
        None,
        "--memory",
        help="CPU target: memory the server may use (default: the profile's resources.memory, "
        "else host RAM).",
    ),
    arch: str | None = typer.Option(
        None, "--arch", help="Published shape of a known model (llama-2-7b, mistral-7b, ...)."
    ),
    params: str | None = typer.Option(None, "--params", help="Parameter count: 7B, 135M, ..."),
    quant: str | None = typer.Option(
        None, "--quant", help="Weights format: FP16, BF16, FP8, Q8_0, Q4_K_M, MXFP4, AWQ, ..."
    ),
    layers: int | None = typer.Option(None, "--layers", min=1, help="Transformer layers."),
    kv_heads: int | None = typer.Option(None, "--kv-heads", min=1, help="KV (GQA) heads."),
    head_dim: int | None = typer.Option(None, "--head-dim", min=1, help="Head dimension."),
    hidden: int | None = typer.Option(
        None, "--hidden-size", min=1, help="Hidden size (sizes activations; optional)."
    ),
    context: int | None = typer.Option(
        None, "--context", min=1, help="Context tokens per sequence."
    ),
    seqs: int | None = typer.Option(None, "--seqs", min=1, help="Concurrent sequences."),
    backend: str | None = typer.Option(
        None,
        "--backend",
        help="Hypothetical mode: llamacpp, vllm or ollama (default: llamacpp for GGUF "
        "quantizations, else vllm).",
    ),
    kv_cache_dtype: str | None = typer.Option(
        None, "--kv-cache-dtype", help="KV cache type: f16, bf16, fp8, q8_0, q4_0."
    ),
    tensor_parallel: int | None = typer.Option(
        None, "--tensor-parallel", min=1, help="vLLM tensor_parallel_size (GPUs)."
    ),
    cpu_kv_space: int | None = typer.Option(
        None, "--cpu-kv-space", min=1, help="vLLM on the CPU: VLLM_CPU_KVCACHE_SPACE in GiB."
    ),
    list_arch: bool = typer.Option(False, "--list-arch", help="List the --arch presets."),
    as_json: bool = JsonOpt,
) -> None:
    """Say whether a deployment fits its GPU or container memory, and what would make it fit;
    with MODEL_REF, what fits on which GPU (context, sequences, GPUs per KV cache type)."""
    from llmdeploy.cli.console import out, print_json
    from llmdeploy.cli.options import resolve_profile
    from llmdeploy.planner.request import (
        PlanRequest,
        parameters_option,
        plan_request,
        size_option,
    )

    if list_arch:
        _print_presets(as_json)
        return
    gpu_bytes = _gpu_memory_bytes(gpu, gpu_memory)
    if model_ref is not None:
        # the options `plan MODEL_REF` does not take (it answers for one sequence and the most)
        others = {
            "--profile": profile,
            "--profile-file": profile_file,
            "--arch": arch,
            "--params": params,
            "--layers": layers,
            "--kv-heads": kv_heads,
            "--head-dim": head_dim,
            "--hidden-size": hidden,
            "--seqs": seqs,
            "--memory": memory,
            "--tensor-parallel": tensor_parallel,
            "--cpu-kv-space": cpu_kv_space,
        }
        _plan_model(
            model_ref,
            gpu=gpu,
            gpu_bytes=gpu_bytes,
            gpus=gpus,
            context=context,
            kv_cache_dtype=kv_cache_dtype,
            backend=backend,
            quant=quant,
            as_json=as_json,
            unused=[flag for flag, value in others.items() if value is not None],
        )
        return
    if gpus is not None:
        from llmdeploy.errors import UsageError

        raise UsageError("--gpus is for plan MODEL_REF", hint="profiles: --tensor-parallel N")
    request = PlanRequest(  # option values are parsed first, then the profile is read
        gpu_memory_bytes=gpu_bytes,
        memory_bytes=size_option("--memory", memory),
        parameters=parameters_option(params),
        layers=layers,
        kv_heads=kv_heads,
        head_dim=head_dim,
        hidden_size=hidden,
        arch=arch,
        quantization=quant,
        backend=backend,
        context=context,
        sequences=seqs,
        kv_cache_dtype=kv_cache_dtype,
        tensor_parallel_size=tensor_parallel,
        cpu_kv_space_gib=cpu_kv_space,
        profile=(
            resolve_profile(profile, profile_file).profile
            if profile is not None or profile_file is not None
            else None
        ),
    )
    outcome = plan_request(request)
    if as_json:
        print_json(outcome.to_json())
    else:
        _render(out(), outcome)
    if outcome.fits is False:
        raise outcome.misfit()


def _gpu_memory_bytes(gpu: str | None, gpu_memory: str | None) -> int | None:
    """One GPU's memory from ``--gpu NAME`` or ``--gpu-memory SIZE`` (not both)."""
    from llmdeploy.errors import UsageError
    from llmdeploy.planner.gpus import gpu_named
    from llmdeploy.planner.request import size_option

    if gpu is not None and gpu_memory is not None:
        raise UsageError("give --gpu NAME or --gpu-memory SIZE, not both")
    if gpu is not None:
        return gpu_named(gpu).memory_bytes
    return size_option("--gpu-memory", gpu_memory)


def _plan_model(
    model_ref: str,
    *,
    gpu: str | None,
    gpu_bytes: int | None,
    gpus: int | None,
    context: int | None,
    kv_cache_dtype: str | None,
    backend: str | None,
    quant: str | None,
    as_json: bool,
    unused: list[str],
) -> None:
    """``plan MODEL_REF``: what fits on GPUs of one size (``ModelQuestion``)."""
    from llmdeploy.cli.console import out, print_json
    from llmdeploy.cli.plan_views import render_question
    from llmdeploy.errors import UsageError
    from llmdeploy.planner.gpus import gpu_named
    from llmdeploy.planner.host import detect_gpu_memory
    from llmdeploy.planner.request import ModelQuestion, answer_question

    if unused:
        raise UsageError(
            f"{', '.join(unused)}: not with MODEL_REF",
            hint="plan MODEL_REF answers for one sequence and for the most that fit; give "
            "--gpu or --gpu-memory, --gpus, --context, --kv-cache-dtype, --backend, --quant",
        )
    source = f"--gpu {gpu}" if gpu is not None else "--gpu-memory"
    if gpu_bytes is None:
        gpu_bytes, source = detect_gpu_memory()
        if gpu_bytes is None:
            raise UsageError(
                f"which GPU? this host's is unknown ({source})",
                hint="name one (--gpu h100, --gpu l4, ...) or give its memory: --gpu-memory "
                "24GiB",
            )
        source = f"this host's GPU ({source})"
    question = ModelQuestion(
        ref=model_ref,
        per_gpu_bytes=gpu_bytes,
        gpu=gpu_named(gpu) if gpu is not None else None,
        gpu_source=source,
        gpus=gpus or 2,
        context=context,
        kv_cache_dtype=kv_cache_dtype,
        backend=backend,
        quantization=quant,
    )
    outcome = answer_question(question)
    if as_json:
        print_json(outcome.to_json())
    else:
        render_question(out(), outcome)


def _human(value: int | float) -> str:
    from llmdeploy.core.sizes import format_bytes

    return format_bytes(value, digits=2)


def _print_presets(as_json: bool) -> None:
    from llmdeploy.cli.console import out, print_json
    from llmdeploy.planner import PRESETS
    from llmdeploy.planner.request import model_json

    if as_json:
        print_json({name: model_json(info, "preset") for name, info in PRESETS.items()})
        return
    for name, info in PRESETS.items():
        out().print(
            f"{name:14} {info.parameters or 0:>14,} params  {info.layers} layers  "
            f"{info.kv_heads} KV heads x {info.head_dim}  context {info.context_length}"
        )


def _render(console: Any, outcome: PlanOutcome) -> None:
    from rich.table import Table

    title, info, origin = outcome.title, outcome.info, outcome.origin
    spec, report = outcome.spec, outcome.report

    params = f"{info.parameters / 1e9:.3g}B params, " if info.parameters else ""
    console.print(f"[bold]{title}[/bold]: {spec.backend} on the {spec.device}, {report.target}")
    shape = (
        f"{info.kv_heads or info.attention_heads} KV heads x {info.head_dim}"
        if report.kv_uniform
        else report.kv_layout
    )
    console.print(
        f"model: {info.architecture or 'unknown architecture'} ({params}{info.layers} layers, "
        f"{shape}) - {origin}",
        markup=False,
    )
    per_slot = " per slot" if spec.shared_context else " each"
    sequences = "sequence" if report.sequences == 1 else "sequences"
    console.print(
        f"workload: {report.sequences} {sequences} x {report.context_tokens:,} tokens{per_slot} "
        f"= {report.kv_cache_tokens:,} tokens of KV cache"
    )
    table = Table(show_header=True, header_style="bold")
    table.add_column("")
    table.add_column("bytes", justify="right")
    table.add_column("", justify="right")
    table.add_column("how")
    kv_how = (
        f"{report.kv_bytes_per_token:,} B/token x {report.kv_cache_tokens:,} tokens "
        f"(K {spec.kv_k_format}, V {spec.kv_v_format})"
    )
    if not report.kv_uniform and report.kv_by_kind:
        parts = " + ".join(f"{kind} {_human(size)}" for kind, size in report.kv_by_kind.items())
        kv_how = f"per layer: {parts} (K {spec.kv_k_format}, V {spec.kv_v_format})"
    if report.kv_cache_bytes != report.kv_cache_required_bytes:
        kv_how = f"allocated; the workload needs {_human(report.kv_cache_required_bytes)}: {kv_how}"
    detail = ", ".join(f"{k} {_human(v)}" for k, v in report.overhead_detail.items() if v)
    rows = [
        ("weights", report.weights_bytes, f"{report.weights_format}: {report.weights_source}"),
        ("KV cache", report.kv_cache_bytes, kv_how),
        ("overhead", report.overhead_bytes, detail),
        ("total", report.total_bytes, ""),
    ]
    if report.available_bytes is not None:
        rows.append(("available", report.available_bytes, report.target))
    if report.budget_bytes is not None and report.budget_bytes != report.available_bytes:
        rows.append(("budget", report.budget_bytes, "x gpu_memory_utilization"))
    for name, value, how in rows:
        table.add_row(name, f"{value:,}", _human(value), how)
    console.print(table)
    if report.fits is True:
        console.print(f"[green]fits[/green]: {_human(report.margin_bytes or 0)} to spare")
    elif report.fits is False:
        over = _human(-(report.margin_bytes or 0))
        console.print(f"[red]does not fit[/red]: {over} over")
    for suggestion in report.suggestions:
        flags = " ".join(suggestion.cli_flags)
        console.print(
            f"  would fit: {suggestion.summary}  [dim]({flags}; total "
            f"{_human(suggestion.total_bytes)})[/dim]"
        )
    for note in report.notes:
        console.print(f"[dim]note:[/dim] {note}", soft_wrap=True)
