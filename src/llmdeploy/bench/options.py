"""From ``llmdeploy bench`` option values to a typed run: the one place they are interpreted.

:func:`config_from_options` checks every option value and combination and builds the
:class:`~llmdeploy.bench.config.BenchConfig`. The target comes from the URL, or from the
running deployment the caller looked up (:class:`~llmdeploy.bench.target.RunningEndpoint`,
plain data: the bench needs no deployment code), by the precedence rules of
:func:`~llmdeploy.bench.target.resolve_target`. A bad value is a
:class:`~llmdeploy.errors.UsageError` (exit 2) naming the option.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from llmdeploy.bench.config import (
    BenchConfig,
    LengthDist,
    LoadSpec,
    StopSpec,
    SweepSpec,
    WorkloadSpec,
    parse_duration_s,
    parse_float_list,
)
from llmdeploy.bench.gates import parse_gates
from llmdeploy.bench.metrics import parse_slo
from llmdeploy.bench.target import RunningEndpoint, resolve_target
from llmdeploy.bench.traces import TraceFormat, guess_format, load_trace, window
from llmdeploy.errors import BenchError, UsageError

__all__ = [
    "DEFAULT_OUTPUT_TOKENS",
    "BenchOptions",
    "config_from_options",
    "parse_workers",
    "usage_choice",
]

DEFAULT_OUTPUT_TOKENS = 128  # synthetic and fixed-prompt workloads; datasets bring their own


@dataclass(frozen=True)
class BenchOptions:
    """The values of ``llmdeploy bench``'s options, as the command line gives them (text
    where it is text). ``deployment`` is ``--deployment``'s name; ``output``, ``html`` and
    ``csv`` are the files the run will write (checked before the run)."""

    url: str | None = None
    model: str | None = None
    api: str | None = None
    endpoint: str = "chat"
    profile: str | None = None
    backend: str | None = None
    deployment: str | None = None
    api_key: str | None = None
    stream: bool = True
    stream_usage: bool = True
    concurrency: str | None = None
    rate: str | None = None
    arrivals: str = "constant"
    max_concurrency: int | None = None
    sweep: bool = False
    sweep_max_concurrency: int = 32
    sweep_steps: int = 4
    requests: int | None = None
    duration: str | None = None
    warmup: int = 0
    timeout: str = "120s"
    input_tokens: str = "128"
    output_tokens: str | None = None
    dataset: Path | None = None
    prompt: str | None = None
    ignore_eos: bool = True
    unique_prompts: bool = True
    prompt_nonce: int | None = None
    shared_prefix_tokens: int = 0
    prefixes: int = 1
    turns: int = 1
    think_time: str | None = None
    trace: Path | None = None
    trace_format: str | None = None
    trace_speed: float = 1.0
    trace_start: str | None = None
    trace_duration: str | None = None
    extra_body: str | None = None
    seed: int = 0
    slo: str | None = None
    fail_on: tuple[str, ...] = ()
    server_metrics: bool = True
    metrics_path: str | None = None
    output: Path | None = None
    html: Path | None = None
    csv: Path | None = None
    vllm_json: Path | None = None
    workers: str = "auto"

    @property
    def names_a_deployment(self) -> bool:
        """No ``--url``, and a deployment to look up by profile, name or backend."""
        return self.url is None and any((self.profile, self.backend, self.deployment))


def config_from_options(
    options: BenchOptions, deployment: RunningEndpoint | None = None
) -> BenchConfig:
    """The run ``options`` describe, aimed at ``deployment`` when there is no URL.

    Raises UsageError for a bad value or combination (the message names the option);
    DeploymentNotFoundError when a profile or name is given without a ``deployment``."""
    o = options
    usage_choice(o.api, ("openai", "ollama"), "--api")
    usage_choice(o.endpoint, ("chat", "completions"), "--endpoint")
    usage_choice(o.arrivals, ("constant", "poisson"), "--arrivals")
    gates = parse_gates(list(o.fail_on))
    slo = parse_slo(o.slo) if o.slo else {}
    target = resolve_target(
        url=o.url,
        api=o.api,  # type: ignore[arg-type]  # checked above
        model=o.model,
        profile=o.profile,
        backend=o.backend,
        name=o.deployment,
        endpoint=o.endpoint,  # type: ignore[arg-type]
        stream=o.stream,
        stream_usage=o.stream_usage,
        api_key=o.api_key,
        metrics_path=o.metrics_path,
        scrape_metrics=o.server_metrics,
        deployment=deployment,
    )
    if o.dataset is not None and o.prompt is not None:
        raise UsageError("use either --dataset or --prompt, not both")
    if o.sweep and (o.concurrency or o.rate):
        raise UsageError("--sweep picks its own stages; drop --concurrency / --rate")
    trace_format = _trace_checks(o)
    if o.prefixes > 1 and not o.shared_prefix_tokens:
        raise UsageError("--prefixes needs --prefix-tokens (the length of each prefix; also "
                         "spelt --shared-prefix-tokens)")
    kind: Literal["synthetic", "dataset", "prompt", "trace"] = (
        "trace" if o.trace is not None
        else "dataset" if o.dataset is not None
        else "prompt" if o.prompt is not None
        else "synthetic"
    )
    requests = o.requests
    if o.trace is not None and requests is None and o.duration is None:
        requests = max(1, _trace_requests(o, trace_format) - o.warmup)
    out_tokens = LengthDist.parse(o.output_tokens) if o.output_tokens else None
    if out_tokens is None and kind != "dataset":
        out_tokens = LengthDist.parse(DEFAULT_OUTPUT_TOKENS)
    from pydantic import ValidationError

    try:
        config = BenchConfig(
            target=target,
            workload=WorkloadSpec(
                kind=kind,
                input_tokens=LengthDist.parse(o.input_tokens),
                output_tokens=out_tokens,
                dataset_path=str(o.dataset) if o.dataset else None,
                prompt=o.prompt,
                ignore_eos=o.ignore_eos,
                unique_prompts=o.unique_prompts,
                prompt_nonce=o.prompt_nonce,
                shared_prefix_tokens=o.shared_prefix_tokens,
                prefixes=o.prefixes,
                turns=o.turns,
                think_time_s=parse_duration_s(o.think_time) if o.think_time else 0.0,
                trace_path=str(o.trace) if o.trace is not None else None,
                trace_format=trace_format,
                trace_start_s=parse_duration_s(o.trace_start) if o.trace_start else 0.0,
                trace_duration_s=parse_duration_s(o.trace_duration)
                if o.trace_duration
                else None,
                seed=o.seed,
                extra_body=_extra_body(o.extra_body),
            ),
            stages=_stages(o),
            sweep=SweepSpec(max_concurrency=o.sweep_max_concurrency, steps=o.sweep_steps)
            if o.sweep
            else None,
            stop=StopSpec(
                requests=requests,
                duration_s=parse_duration_s(o.duration) if o.duration else None,
                warmup_requests=o.warmup,
                timeout_s=parse_duration_s(o.timeout),
            ),
            slo=slo,
            fail_on=[str(g) for g in gates],
            scrape_metrics=o.server_metrics,
            workers=parse_workers(o.workers),
        )
    except ValidationError as exc:
        raise UsageError(_validation_summary(exc)) from exc
    for flag, path in (("--output", o.output), ("--html", o.html), ("--csv", o.csv),
                       ("--vllm-json", o.vllm_json)):
        _check_writable(flag, path)
    return config


def parse_workers(text: str) -> int | None:
    """``--workers``: ``auto`` (None: the runner decides per stage) or a whole number >= 1."""
    value = text.strip().lower()
    if value == "auto":
        return None
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise UsageError(
            f"Invalid value for '--workers': Input should be auto or a whole number >= 1 "
            f"(got {text!r})"
        )
    return n


def usage_choice(value: str | None, allowed: tuple[str, ...], flag: str) -> None:
    """UsageError unless ``value`` is None or one of ``allowed``."""
    if value is not None and value not in allowed:
        raise UsageError(f"{flag} must be one of {', '.join(allowed)} (got {value!r})")


def _trace_checks(o: BenchOptions) -> TraceFormat | None:
    """The trace format (given, or from the file name), after checking that nothing else
    asks for another load or workload; None without ``--trace``."""
    usage_choice(o.trace_format, ("mooncake", "burstgpt"), "--trace-format")
    if o.trace is None:
        for flag, value in (("--trace-format", o.trace_format),
                            ("--trace-start", o.trace_start),
                            ("--trace-duration", o.trace_duration)):
            if value is not None:
                raise UsageError(f"{flag} needs --trace FILE")
        return None
    clash = [flag for flag, value in (("--concurrency", o.concurrency), ("--rate", o.rate),
                                      ("--sweep", o.sweep), ("--dataset", o.dataset),
                                      ("--prompt", o.prompt)) if value]
    if o.turns > 1:
        clash.append("--turns")
    if clash:
        raise UsageError(f"--trace replays the trace's own arrivals and lengths; drop "
                         f"{', '.join(clash)}")
    if o.trace_speed <= 0 or o.trace_speed != o.trace_speed:
        raise UsageError(f"--trace-speed must be > 0 (got {o.trace_speed})")
    trace = Path(o.trace)
    if not trace.is_file():  # say what is wrong with the path before guessing its format
        why = "is a directory" if trace.is_dir() else (
            "no such file" if not trace.exists() else "not a regular file")
        raise BenchError(f"cannot read trace {trace}: {why}",
                         hint="give a Mooncake .jsonl or a BurstGPT .csv file")
    fmt = o.trace_format or guess_format(o.trace)
    if fmt is None:
        raise UsageError(f"--trace {o.trace}: cannot tell the format from the file name",
                         hint="add --trace-format mooncake|burstgpt")
    return fmt  # type: ignore[return-value]  # checked above


def _trace_requests(o: BenchOptions, fmt: TraceFormat | None) -> int:
    """Requests in the replayed window (the file is read here, so a bad trace stops the run
    before it starts, as a BenchError naming file, line and field)."""
    assert o.trace is not None and fmt is not None
    trace = load_trace(o.trace, fmt)
    start = parse_duration_s(o.trace_start) if o.trace_start else 0.0
    duration = parse_duration_s(o.trace_duration) if o.trace_duration else None
    return len(window(trace, start, duration, o.trace_speed))


def _stages(o: BenchOptions) -> list[LoadSpec]:
    if o.trace is not None:
        return [LoadSpec(mode="trace", value=o.trace_speed,
                         max_concurrency=o.max_concurrency)]
    stages: list[LoadSpec] = []
    if o.concurrency:
        stages += [
            LoadSpec(mode="concurrency", value=int(v))
            for v in parse_float_list(o.concurrency, "--concurrency", integer=True)
        ]
    if o.rate:
        stages += [
            LoadSpec(mode="rate", value=v, arrivals=o.arrivals,  # type: ignore[arg-type]
                     max_concurrency=o.max_concurrency)
            for v in parse_float_list(o.rate, "--rate")
        ]
    return stages


def _extra_body(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        extra = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"--extra-body is not JSON: {exc}") from exc
    if not isinstance(extra, dict):
        raise UsageError("--extra-body must be a JSON object")
    return extra


def _check_writable(flag: str, path: Path | None) -> None:
    """Refuse an output path that cannot be written before the run, not after it."""
    if path is None:
        return
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a directory; give a file name")
    if not folder.is_dir():
        raise UsageError(f"{flag} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"{flag} {path}: not writable")


# the option a BenchConfig field comes from, so a refused value names what the user typed
# (model, field) -> option; the specs are built one by one, so a ValidationError's location
# is relative to the model named in its title
_FLAG_OF_FIELD = {
    ("StopSpec", "requests"): "--requests", ("StopSpec", "duration_s"): "--duration",
    ("StopSpec", "warmup_requests"): "--warmup", ("StopSpec", "timeout_s"): "--timeout",
    ("WorkloadSpec", "prompt_nonce"): "--prompt-nonce",
    ("WorkloadSpec", "shared_prefix_tokens"): "--prefix-tokens",
    ("WorkloadSpec", "prefixes"): "--prefixes", ("WorkloadSpec", "turns"): "--turns",
    ("WorkloadSpec", "think_time_s"): "--think-time",
    ("WorkloadSpec", "trace_start_s"): "--trace-start",
    ("WorkloadSpec", "trace_duration_s"): "--trace-duration",
    ("SweepSpec", "max_concurrency"): "--sweep-max-concurrency",
    ("SweepSpec", "steps"): "--sweep-steps",
    ("BenchConfig", "workers"): "--workers",
}


def _validation_summary(exc: Any) -> str:
    """The first problems of a bench spec's ValidationError in Typer's words for an option's
    bad value, ``Invalid value for '--option': message (got value)`` (a field no option
    sets: its dotted path), so every refused option reads alike."""
    errors = exc.errors()
    parts = []
    for e in errors[:3]:
        loc = [str(x) for x in e["loc"]]
        flag = _FLAG_OF_FIELD.get((exc.title, loc[0])) if len(loc) == 1 else None
        where = flag or ".".join(loc) or "options"
        got = f" (got {e['input']!r})" if not isinstance(e.get("input"), dict | list) else ""
        parts.append(f"Invalid value for '{where}': {e['msg']}{got}")
    text = "; ".join(parts)
    return text + (f" (and {len(errors) - 3} more)" if len(errors) > 3 else "")
