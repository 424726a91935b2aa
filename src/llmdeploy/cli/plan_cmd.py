"""`llmdeploy plan`: does a profile (or a hypothetical model) fit its memory before anything starts?

With ``--profile``: the profile's model (inspected when it is on disk, else guessed from the
reference's name), its backend knobs and target (``--gpu-memory`` per GPU, or for the CPU the
container limit ``resources.memory`` or host RAM). Without: a hypothetical model from ``--arch``
or ``--params/--quant/--layers/--kv-heads/--head-dim``. Flags such as ``--context``, ``--seqs``,
``--quant`` and ``--kv-cache-dtype`` also act as what-ifs on a profile.

Exit status: 0 when it fits, 10 (PlanError) when it does not.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from llmdeploy.cli.options import JsonOpt, ProfileFileOpt, ProfileOpt
from llmdeploy.core.sizes import GIB

if TYPE_CHECKING:
    from llmdeploy.core.model_info import ModelInfo
    from llmdeploy.planner import FitReport, ServingSpec, Target
    from llmdeploy.planner.spec import Device

_SHAPE_FIELDS = ("layers", "kv_heads", "head_dim", "hidden_size", "parameters", "quantization")
# ModelInfo fields a preset lays over an inspected or guessed model
_OVERLAY_FIELDS = (
    "architecture",
    "parameters",
    "layers",
    "attention_heads",
    "kv_heads",
    "head_dim",
    "hidden_size",
    "context_length",
    "vocab_size",
    "quantization",
    "torch_dtype",
)


def plan(
    profile: str | None = ProfileOpt,
    profile_file: Path | None = ProfileFileOpt,
    gpu_memory: str | None = typer.Option(
        None,
        "--gpu-memory",
        help="Memory of ONE GPU, e.g. 24GiB (vLLM multiplies it by tensor_parallel_size). "
        "Default for GPU profiles: what nvidia-smi reports.",
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
    """Say whether a deployment fits its GPU or container memory, and what would make it fit."""
    from llmdeploy.cli.console import out, print_json
    from llmdeploy.errors import ModelError, PlanError, UsageError
    from llmdeploy.planner import PRESETS
    from llmdeploy.planner import plan as make_plan

    if list_arch:
        _print_presets(as_json)
        return
    gpu_bytes = _size("--gpu-memory", gpu_memory)
    mem_bytes = _size("--memory", memory)
    explicit = _explicit_info(params, layers, kv_heads, head_dim, hidden)
    preset = None
    if arch is not None:
        preset = PRESETS.get(arch.lower())
        if preset is None:
            raise UsageError(
                f"no architecture preset named {arch!r}",
                hint="known: " + ", ".join(PRESETS),
            )
    what = {
        "context": context,
        "seqs": seqs,
        "kv_cache_dtype": kv_cache_dtype,
        "tensor_parallel": tensor_parallel,
        "cpu_kv_space": cpu_kv_space,
    }
    if profile is not None or profile_file is not None:
        if backend is not None:
            raise UsageError(
                "--backend is for hypothetical plans; a profile names its own backend.kind"
            )
        info, origin, spec, target, title = _from_profile(
            profile, profile_file, preset, explicit, quant, what, gpu_bytes, mem_bytes
        )
    else:
        info, origin, spec, target, title = _hypothetical(
            arch, preset, explicit, quant, backend, what, gpu_bytes, mem_bytes
        )
    for flag, value in (("--tensor-parallel", tensor_parallel), ("--cpu-kv-space", cpu_kv_space)):
        if value is not None and spec.backend != "vllm":
            raise UsageError(f"{flag} applies to vLLM; this plan is for {spec.backend}")
    try:
        report = make_plan(info, spec, target)
    except ModelError as exc:
        raise ModelError(f"{exc.message} (model: {origin})", hint=exc.hint) from exc
    if as_json:
        print_json(
            {
                "plan": title,
                "model": _model_json(info, origin),
                **report.to_json(),
            }
        )
    else:
        _render(out(), title, info, origin, spec, report)
    if report.fits is False:
        over = -(report.margin_bytes or 0)
        best = report.suggestions[0].summary if report.suggestions else None
        raise PlanError(
            f"{title} does not fit: {_human(report.total_bytes)} needed, "
            f"{_human(report.budget_bytes or 0)} available ({_human(over)} over)",
            hint=f"for example {best}" if best else "see the notes above",
        )


# --------------------------------------------------------------------------- inputs


def _size(flag: str, value: str | None) -> int | None:
    if value is None:
        return None
    from llmdeploy.core.sizes import to_bytes
    from llmdeploy.errors import UsageError

    try:
        size = to_bytes(value)
    except ValueError as exc:
        raise UsageError(
            f"{flag}: not a size: {value!r}", hint="use e.g. 24GiB, 80G or 16384M"
        ) from exc
    if size <= 0:
        raise UsageError(f"{flag} must be positive")
    return size


def _explicit_info(
    params: str | None,
    layers: int | None,
    kv_heads: int | None,
    head_dim: int | None,
    hidden: int | None,
) -> dict[str, Any]:
    from llmdeploy.errors import UsageError
    from llmdeploy.planner import parse_parameter_count

    values: dict[str, Any] = {
        "layers": layers,
        "kv_heads": kv_heads,
        "head_dim": head_dim,
        "hidden_size": hidden,
    }
    if params is not None:
        count = parse_parameter_count(params)
        if count is None or count <= 0:
            raise UsageError(f"--params: not a parameter count: {params!r}", hint="e.g. 7B")
        values["parameters"] = count
    return {key: value for key, value in values.items() if value is not None}


def _overlay(base: ModelInfo, top: ModelInfo | None, explicit: dict[str, Any]) -> ModelInfo:
    """``base`` with the known fields of ``top`` and then ``explicit`` laid over it."""
    from dataclasses import replace

    changes: dict[str, Any] = {}
    if top is not None:
        for name in _OVERLAY_FIELDS:
            value = getattr(top, name)
            if value is not None:
                changes[name] = value
    changes.update(explicit)
    return replace(base, **changes)


def _from_profile(
    profile: str | None,
    profile_file: Path | None,
    preset: ModelInfo | None,
    explicit: dict[str, Any],
    quant: str | None,
    what: dict[str, Any],
    gpu_bytes: int | None,
    mem_bytes: int | None,
) -> tuple[ModelInfo, str, ServingSpec, Target, str]:
    from dataclasses import replace

    from llmdeploy.cli.options import resolve_profile
    from llmdeploy.errors import UsageError
    from llmdeploy.planner import Target, spec_from_profile, target_for_profile, with_overrides
    from llmdeploy.planner.host import detect_gpu_memory, host_memory_bytes, model_info_for_ref

    resolved = resolve_profile(profile, profile_file)
    prof = resolved.profile
    found, origin = model_info_for_ref(prof.model.ref)
    info = _overlay(found, preset, explicit)
    spec = with_overrides(
        spec_from_profile(prof, info),
        context=what["context"],
        sequences=what["seqs"],
        weights_format=quant,
        kv_cache_dtype=what["kv_cache_dtype"],
        tensor_parallel_size=what["tensor_parallel"],
        cpu_kv_cache_bytes=what["cpu_kv_space"] * GIB if what["cpu_kv_space"] else None,
    )
    title = f"profile {prof.name}"
    if spec.device == "gpu":
        if mem_bytes is not None:
            raise UsageError(
                f"--memory is for CPU profiles; {prof.name} runs on {prof.accelerator}",
                hint="give the memory of one GPU with --gpu-memory",
            )
        per_gpu, how = (gpu_bytes, "--gpu-memory") if gpu_bytes else detect_gpu_memory()
        if per_gpu is None:
            raise UsageError(
                f"{prof.name} runs on {prof.accelerator} and the GPU memory is unknown ({how})",
                hint="pass the memory of one GPU, e.g. --gpu-memory 24GiB",
            )
        target = target_for_profile(prof, per_gpu)
        assert target is not None
        devices = spec.tensor_parallel_size if spec.backend == "vllm" else 1
        target = replace(target, devices=devices, description=f"{devices} x {_human(per_gpu)} GPU")
        return info, origin, spec, target, title
    if gpu_bytes is not None:
        raise UsageError(
            f"--gpu-memory is for GPU profiles; {prof.name} runs on the CPU",
            hint="use --memory for the memory a CPU container may use",
        )
    host = host_memory_bytes()
    if mem_bytes is not None:
        target = Target("cpu", mem_bytes, description="--memory", host_memory_bytes=host)
    else:
        found_target = target_for_profile(prof, host)
        assert found_target is not None
        target = found_target
    return info, origin, spec, target, title


def _hypothetical(
    arch: str | None,
    preset: ModelInfo | None,
    explicit: dict[str, Any],
    quant: str | None,
    backend: str | None,
    what: dict[str, Any],
    gpu_bytes: int | None,
    mem_bytes: int | None,
) -> tuple[ModelInfo, str, ServingSpec, Target, str]:
    from llmdeploy.core.model_info import ModelInfo
    from llmdeploy.errors import UsageError
    from llmdeploy.planner import Target, hypothetical_spec
    from llmdeploy.planner import quant as quants
    from llmdeploy.planner.host import host_memory_bytes

    if preset is None and not explicit:
        raise UsageError(
            "nothing to plan: give --profile, or describe a model",
            hint="e.g. llmdeploy plan --arch llama-2-7b --quant Q4_K_M --context 4096 --seqs 4 "
            "--gpu-memory 24GiB, or --params 7B --layers 32 --kv-heads 8 --head-dim 128",
        )
    info = _overlay(ModelInfo(format="unknown"), preset, explicit)
    if quant is not None:
        if quants.bits_per_weight(quant) is None:
            raise UsageError(
                f"--quant: unknown format {quant!r}", hint="known: " + ", ".join(quants.WEIGHT_BITS)
            )
        info = _overlay(info, None, {"quantization": quants.canonical(quant)})
    if backend is None:
        backend = "llamacpp" if quants.is_gguf_quant(info.quantization) else "vllm"
    if backend not in ("llamacpp", "vllm", "ollama"):
        raise UsageError(f"--backend: {backend!r}", hint="use llamacpp, vllm or ollama")
    context = what["context"] or info.context_length
    if context is None:
        raise UsageError(
            "--context is needed (tokens per sequence)", hint="e.g. --context 4096"
        )
    device: Device = "gpu" if gpu_bytes is not None else "cpu"
    tp = what["tensor_parallel"] or 1
    spec = hypothetical_spec(
        info,
        backend=backend,  # type: ignore[arg-type]
        device=device,
        context=context,
        sequences=what["seqs"] or 1,
        kv_cache_dtype=what["kv_cache_dtype"],
        tensor_parallel_size=tp,
        cpu_kv_cache_bytes=what["cpu_kv_space"] * GIB if what["cpu_kv_space"] else None,
    )
    if gpu_bytes is not None:
        devices = tp if backend == "vllm" else 1
        target = Target("gpu", gpu_bytes, devices, f"{devices} x {_human(gpu_bytes)} GPU")
    else:
        host = host_memory_bytes()
        target = Target(
            "cpu",
            mem_bytes or host,
            description="--memory" if mem_bytes else "host RAM",
            host_memory_bytes=host,
        )
    origin = f"preset {arch}" if preset is not None else "given on the command line"
    if preset is not None and explicit:
        origin += " (with command-line overrides)"
    name = arch or (f"{info.parameters / 1e9:.3g}B model" if info.parameters else "model")
    return info, origin, spec, target, f"hypothetical {name}"


# --------------------------------------------------------------------------- output


def _human(value: int | float) -> str:
    from llmdeploy.core.sizes import format_bytes

    return format_bytes(value, digits=2)


def _model_json(info: ModelInfo, origin: str) -> dict[str, Any]:
    data = {name: getattr(info, name) for name in _SHAPE_FIELDS}
    data.update(
        architecture=info.architecture,
        torch_dtype=info.torch_dtype,
        context_length=info.context_length,
        origin=origin,
    )
    return data


def _print_presets(as_json: bool) -> None:
    from llmdeploy.cli.console import out, print_json
    from llmdeploy.planner import PRESETS

    if as_json:
        print_json({name: _model_json(info, "preset") for name, info in PRESETS.items()})
        return
    for name, info in PRESETS.items():
        out().print(
            f"{name:14} {info.parameters or 0:>14,} params  {info.layers} layers  "
            f"{info.kv_heads} KV heads x {info.head_dim}  context {info.context_length}"
        )


def _render(
    console: Any, title: str, info: ModelInfo, origin: str, spec: ServingSpec, report: FitReport
) -> None:
    from rich.table import Table

    params = f"{info.parameters / 1e9:.3g}B params, " if info.parameters else ""
    console.print(f"[bold]{title}[/bold]: {spec.backend} on the {spec.device}, {report.target}")
    console.print(
        f"model: {info.architecture or 'unknown architecture'} ({params}{info.layers} layers, "
        f"{info.kv_heads or info.attention_heads} KV heads x {info.head_dim}) - {origin}",
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
