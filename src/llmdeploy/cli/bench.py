"""``llmdeploy bench``: load-test an inference endpoint; ``report``, ``compare``, ``mock-server``.

Thin layer: read options, build a typed :class:`~llmdeploy.bench.config.BenchConfig`, call the
engine, render with Rich. Domain code is imported inside the functions so ``--help`` is fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from llmdeploy.bench.report import BenchReport

ENV_API_KEY = "LLMDEPLOY_API_KEY"

app = typer.Typer(
    help="Benchmark an inference endpoint: TTFT, ITL, TPOT, throughput, goodput, CI gates.",
    invoke_without_command=True,
    no_args_is_help=False,
    add_completion=False,
)


@app.callback(invoke_without_command=True)
def bench(
    ctx: typer.Context,
    url: str | None = typer.Option(
        None, "--url", "-u", help="Server URL, e.g. http://127.0.0.1:8000/v1 (only 127.0.0.1 "
        "in tests)."
    ),
    model: str | None = typer.Option(None, "--model", "-m", help="Model name (default: "
                                        "the first one the server lists)."),
    api: str | None = typer.Option(None, "--api", help="openai or ollama (default: from the "
                                      "URL path, /v1 or /api; else ollama on port 11434, else "
                                      "openai; a guess is checked against the server)."),
    endpoint: str = typer.Option("chat", "--endpoint", help="chat or completions (Ollama: "
                                 "/api/chat or /api/generate)."),
    profile: str | None = typer.Option(None, "--profile", "-p", help="Benchmark the running "
                                          "deployment of this profile."),
    backend: str | None = typer.Option(None, "--backend", help="vllm, llamacpp or ollama: its "
                                          "running deployment, else its default local port."),
    deployment: str | None = typer.Option(None, "--deployment", "-d",
                                             help="Running deployment name."),
    api_key: str | None = typer.Option(None, "--api-key", envvar=ENV_API_KEY,
                                          help=f"Bearer token (or ${ENV_API_KEY})."),
    stream: bool = typer.Option(True, "--stream/--no-stream", help="Streamed responses (needed "
                                "for TTFT and ITL)."),
    stream_usage: bool = typer.Option(True, "--stream-usage/--no-stream-usage", help="Ask for "
                                      "the final usage event (stream_options); dropped "
                                      "automatically when the server refuses it."),
    concurrency: str | None = typer.Option(None, "--concurrency", "-c", help="Fixed "
                                              "concurrency stages, e.g. 1,4,16."),
    rate: str | None = typer.Option(None, "--rate", "-r", help="Request-rate stages in "
                                       "req/s, e.g. 2,8."),
    arrivals: str = typer.Option("constant", "--arrivals", help="constant or poisson "
                                 "(with --rate)."),
    max_concurrency: int | None = typer.Option(None, "--max-concurrency", help="Cap on "
                                                  "in-flight requests in rate stages."),
    sweep: bool = typer.Option(False, "--sweep", help="c=1, c=max, then rates in between."),
    sweep_max_concurrency: int = typer.Option(32, "--sweep-max-concurrency"),
    sweep_steps: int = typer.Option(4, "--sweep-steps"),
    requests: int | None = typer.Option(None, "--requests", "-n", help="Measured requests "
                                           "per stage (default 100 without --duration)."),
    duration: str | None = typer.Option(None, "--duration", help="Measured time per stage, "
                                           "e.g. 60s, 2m."),
    warmup: int = typer.Option(0, "--warmup", help="Warm-up requests per stage (excluded)."),
    timeout: str = typer.Option("120s", "--timeout", help="Per-request timeout."),
    input_tokens: str = typer.Option("128", "--input-tokens", help="N | uniform:MIN:MAX | "
                                     "normal:MEAN:STD[:MIN:MAX]"),
    output_tokens: str | None = typer.Option(None, "--output-tokens", help="Same syntax; "
                                                "default 128 (datasets: their own)."),
    dataset: Path | None = typer.Option(None, "--dataset", help="JSONL of prompts/messages "
                                           "or ShareGPT JSON."),
    prompt: str | None = typer.Option(None, "--prompt", help="One fixed prompt for every "
                                         "request."),
    ignore_eos: bool = typer.Option(True, "--ignore-eos/--no-ignore-eos", help="Ask the "
                                    "server to generate exactly max_tokens (vLLM, llama.cpp); "
                                    "dropped automatically when the server refuses it."),
    unique_prompts: bool = typer.Option(True, "--unique-prompts/--repeat-prompts", help="Give "
                                        "every request of the run its own prompt (default), "
                                        "or replay request i's prompt in every stage (a "
                                        "prefix cache then serves later stages)."),
    prompt_nonce: int | None = typer.Option(None, "--prompt-nonce", min=0, help="The number "
                                               "unique prompts start from (default: random "
                                               "per run; the report records it)."),
    shared_prefix_tokens: int = typer.Option(0, "--shared-prefix-tokens", min=0, help="Start "
                                             "every prompt with the same ~N-token text (like "
                                             "a shared system prompt)."),
    extra_body: str | None = typer.Option(None, "--extra-body", help="JSON merged into "
                                             "each request body; a null value removes a "
                                             "field."),
    seed: int = typer.Option(0, "--seed"),
    slo: str | None = typer.Option(None, "--slo", help="Goodput SLOs, e.g. "
                                      "ttft_ms=500,tpot_ms=50,e2e_ms=5000."),
    fail_on: list[str] | None = typer.Option(None, "--fail-on", help="Fail (exit 9) if "
                                                "true in any stage, e.g. 'ttft_p99_ms>800'."),
    metrics: bool = typer.Option(True, "--server-metrics/--no-server-metrics", help="Scrape "
                                 "Prometheus /metrics before, during and after each stage."),
    metrics_path: str | None = typer.Option(None, "--metrics-path"),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the JSON report."),
    html: Path | None = typer.Option(None, "--html", help="Also write the HTML report."),
    csv: Path | None = typer.Option(None, "--csv", help="Also write the per-stage CSV."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Live progress "
                                  "(on a terminal)."),
    loop: str = typer.Option("auto", "--loop", help="Event loop: auto (uvloop if installed), "
                             "asyncio or uvloop."),
) -> None:
    """Run a benchmark (when no subcommand is given)."""
    if ctx.invoked_subcommand is not None:
        return
    import json
    import sys

    from pydantic import ValidationError

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
    from llmdeploy.bench.gates import check_gates, parse_gates
    from llmdeploy.bench.metrics import parse_slo
    from llmdeploy.bench.runner import outcome_error, run_bench
    from llmdeploy.bench.target import resolve_target
    from llmdeploy.errors import GateFailedError, UsageError

    _choice(api, ("openai", "ollama"), "--api")
    _choice(endpoint, ("chat", "completions"), "--endpoint")
    _choice(arrivals, ("constant", "poisson"), "--arrivals")
    _choice(loop, ("auto", "asyncio", "uvloop"), "--loop")
    gates = parse_gates(fail_on or [])
    slo_map = parse_slo(slo) if slo else {}
    target = resolve_target(
        url=url,
        api=api,  # type: ignore[arg-type]
        model=model,
        profile=profile,
        backend=backend,
        name=deployment,
        endpoint=endpoint,  # type: ignore[arg-type]
        stream=stream,
        stream_usage=stream_usage,
        api_key=api_key,
        metrics_path=metrics_path,
        scrape_metrics=metrics,
    )
    if dataset is not None and prompt is not None:
        raise UsageError("use either --dataset or --prompt, not both")
    extra: dict[str, Any] = {}
    if extra_body:
        try:
            extra = json.loads(extra_body)
        except (ValueError, RecursionError) as exc:
            raise UsageError(f"--extra-body is not JSON: {exc}") from exc
        if not isinstance(extra, dict):
            raise UsageError("--extra-body must be a JSON object")
    kind = "dataset" if dataset is not None else "prompt" if prompt is not None else "synthetic"
    out_dist = LengthDist.parse(output_tokens) if output_tokens else None
    if out_dist is None and kind != "dataset":
        out_dist = LengthDist.parse(128)
    try:
        workload = WorkloadSpec(
            kind=kind,  # type: ignore[arg-type]
            input_tokens=LengthDist.parse(input_tokens),
            output_tokens=out_dist,
            dataset_path=str(dataset) if dataset else None,
            prompt=prompt,
            ignore_eos=ignore_eos,
            unique_prompts=unique_prompts,
            prompt_nonce=prompt_nonce,
            shared_prefix_tokens=shared_prefix_tokens,
            seed=seed,
            extra_body=extra,
        )
        stages: list[LoadSpec] = []
        if concurrency:
            stages += [
                LoadSpec(mode="concurrency", value=int(v))
                for v in parse_float_list(concurrency, "--concurrency", integer=True)
            ]
        if rate:
            stages += [
                LoadSpec(mode="rate", value=v, arrivals=arrivals,  # type: ignore[arg-type]
                         max_concurrency=max_concurrency)
                for v in parse_float_list(rate, "--rate")
            ]
        if sweep and stages:
            raise UsageError("--sweep picks its own stages; drop --concurrency / --rate")
        config = BenchConfig(
            target=target,
            workload=workload,
            stages=stages,
            sweep=SweepSpec(max_concurrency=sweep_max_concurrency, steps=sweep_steps)
            if sweep
            else None,
            stop=StopSpec(
                requests=requests,
                duration_s=parse_duration_s(duration) if duration else None,
                warmup_requests=warmup,
                timeout_s=parse_duration_s(timeout),
            ),
            slo=slo_map,
            fail_on=[str(g) for g in gates],
            scrape_metrics=metrics,
        )
    except ValidationError as exc:
        raise UsageError(f"invalid benchmark options: {_validation_summary(exc)}") from exc
    for flag, written in (("--output", output), ("--html", html), ("--csv", csv)):
        _writable_before_run(flag, written)

    show_progress = progress and not json_out and sys.stderr.isatty()
    display = _LiveProgress() if show_progress else None
    try:
        report = run_bench(
            config,
            on_progress=display.update if display else None,
            event_loop=loop,  # type: ignore[arg-type]
        )
    finally:
        if display is not None:
            display.stop()
    report.gates = check_gates(report, gates)
    if output is not None:
        report.save(output)
    _write_extras(report, html, csv, None)
    if json_out:
        from llmdeploy.cli.console import print_json

        print_json(_summary_json(report, output))
    else:
        _print_summary(report)
        if output is not None:
            from llmdeploy.cli.console import err

            err().print(f"[dim]Report written to {output}[/dim]")
    unusable = outcome_error(report)
    if unusable is not None:
        raise unusable
    if report.gates:
        raise GateFailedError(
            f"{len(report.gates)} --fail-on check(s) failed:\n  " + "\n  ".join(report.gates),
            hint="the thresholds come from --fail-on; the full report has every request",
        )


@app.command("report")
def report_cmd(
    path: Path = typer.Argument(..., help="A JSON report written with --output."),
    html: Path | None = typer.Option(None, "--html", help="Write a self-contained HTML page."),
    csv: Path | None = typer.Option(None, "--csv", help="Write one CSV row per stage."),
    requests_csv: Path | None = typer.Option(None, "--requests-csv",
                                                help="Write one CSV row per request."),
    slo: str | None = typer.Option(None, "--slo", help="Recompute goodput with these SLOs."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Re-render a saved report: console table, CSV, HTML with plots."""
    from llmdeploy.bench.metrics import parse_slo, summarize
    from llmdeploy.bench.report import load_report

    report = load_report(path)
    if slo:
        slo_map = parse_slo(slo)
        report.config.slo = slo_map
        for stage in report.stages:
            stage.summary = summarize(stage.records, slo_map)
    _write_extras(report, html, csv, requests_csv)
    if json_out:
        from llmdeploy.cli.console import print_json

        print_json(_summary_json(report, path))
    else:
        _print_summary(report)


@app.command("compare")
def compare_cmd(
    paths: list[Path] = typer.Argument(..., help="Two or more JSON reports; the first is the "
                                       "baseline."),
    json_out: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Show runs side by side with deltas against the first."""
    from llmdeploy.bench.report import load_report
    from llmdeploy.bench.tables import compare_rows
    from llmdeploy.errors import UsageError

    if len(paths) < 2:
        raise UsageError("compare needs at least two reports")
    reports = [load_report(p) for p in paths]
    rows = compare_rows(reports)
    if json_out:
        from llmdeploy.cli.console import print_json

        print_json(
            {
                "runs": [str(p) for p in paths],
                "rows": [
                    {"stage": s, "metric": m, "values": v, "delta_pct": d}
                    for s, m, v, d, _ in rows
                ],
            }
        )
        return
    from rich.table import Table

    from llmdeploy.cli.console import out

    table = Table(title="llmdeploy bench compare (delta vs the first run)", title_justify="left")
    table.add_column("stage")
    table.add_column("metric")
    for i, p in enumerate(paths):
        table.add_column(f"{'base: ' if i == 0 else ''}{p.name}", justify="right")
    prev = None
    for stage, metric, values, deltas, higher in rows:
        cells = []
        for i, (v, d) in enumerate(zip(values, deltas, strict=True)):
            text = "-" if v is None else _fmt(v)
            if i > 0 and d is not None:
                better = (d > 0) == higher
                color = "dim" if abs(d) < 1 else ("green" if better else "red")
                text += f" [{color}]({d:+.1f}%)[/{color}]"
            cells.append(text)
        table.add_row(stage if stage != prev else "", metric, *cells)
        prev = stage
    out().print(table)


@app.command("mock-server")
def mock_server_cmd(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    ttft_ms: float = typer.Option(50.0, "--ttft-ms", help="Injected time to first token."),
    itl_ms: float = typer.Option(10.0, "--itl-ms", help="Injected inter-token latency."),
    output_tokens: int = typer.Option(32, "--output-tokens", help="Tokens when the request "
                                      "sets no max_tokens."),
    model: str = typer.Option("mock-model", "--model"),
    error_rate: float = typer.Option(0.0, "--error-rate", help="Fraction answered HTTP 500."),
    disconnect_after: int | None = typer.Option(None, "--disconnect-after",
                                                   help="Drop the connection after N tokens."),
    usage: bool = typer.Option(True, "--usage/--no-usage", help="Send token usage."),
    api_key: str | None = typer.Option(None, "--api-key", help="Require this bearer token."),
) -> None:
    """Serve OpenAI and Ollama APIs with exact injected TTFT and ITL (for tests)."""
    from llmdeploy.bench.mock_server import MockConfig, serve

    serve(
        MockConfig(
            ttft_ms=ttft_ms,
            itl_ms=itl_ms,
            output_tokens=output_tokens,
            model=model,
            error_rate=error_rate,
            disconnect_after=disconnect_after,
            usage=usage,
            api_key=api_key,
        ),
        host,
        port,
    )


# helpers ---------------------------------------------------------------------------------
def _writable_before_run(flag: str, path: Path | None) -> None:
    """Refuse an output path that cannot be written before the run, not after it."""
    import os

    from llmdeploy.errors import UsageError

    if path is None:
        return
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a directory; give a file name")
    if not folder.is_dir():
        raise UsageError(f"{flag} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"{flag} {path}: not writable")


def _choice(value: str | None, allowed: tuple[str, ...], flag: str) -> None:
    if value is not None and value not in allowed:
        from llmdeploy.errors import UsageError

        raise UsageError(f"{flag} must be one of {', '.join(allowed)} (got {value!r})")


def _validation_summary(exc: Any) -> str:
    """The first problems of a pydantic ValidationError as ``field: message``."""
    errors = exc.errors()
    text = "; ".join(
        f"{'.'.join(str(x) for x in e['loc']) or 'options'}: {e['msg']}" for e in errors[:3]
    )
    return text + (f" (and {len(errors) - 3} more)" if len(errors) > 3 else "")


def _fmt(v: float | None, digits: int = 1) -> str:
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) < 1 and v != 0:
        return f"{v:.3g}"
    return f"{v:.{digits}f}"


def _write_extras(
    report: BenchReport, html: Path | None, csv: Path | None, requests_csv: Path | None
) -> None:
    from llmdeploy.bench.export import write_csv, write_html, write_requests_csv

    if html is not None:
        write_html(report, html)
    if csv is not None:
        write_csv(report, csv)
    if requests_csv is not None:
        write_requests_csv(report, requests_csv)


def _summary_json(report: BenchReport, path: Path | None) -> dict[str, Any]:
    data = report.model_dump(mode="json", exclude={"stages": {"__all__": {"records"}}})
    data["report_path"] = str(path) if path else None
    return data


_API_SOURCE = {
    "flag": "--api",
    "deployment": "from the deployment",
    "backend": "from --backend",
    "url": "from the URL path",
    "port": "guessed from the port",
    "discovery": "found by the model listing",
    "default": "default",
}


def _print_summary(report: BenchReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    from llmdeploy.bench.tables import token_source_label
    from llmdeploy.cli.console import out

    console = out()
    cfg = report.config
    wl = cfg.workload
    out_len = wl.output_tokens.describe() if wl.output_tokens else "dataset"
    prompts = "unique prompts" if wl.unique_prompts else "repeated prompts"
    if wl.shared_prefix_tokens:
        prompts += f", shared prefix {wl.shared_prefix_tokens}"
    console.print(
        f"[bold]llmdeploy bench[/bold] {cfg.target.base_url}{cfg.target.api_prefix} · "
        f"{cfg.target.api} {cfg.target.endpoint} "
        f"[dim]({_API_SOURCE.get(cfg.target.api_source, cfg.target.api_source)})[/dim] · "
        f"model [cyan]{escape(report.model)}[/cyan] · "
        f"{'stream' if cfg.target.stream else 'no stream'} · input {wl.input_tokens.describe()} "
        f"/ output {out_len} tokens ({wl.kind}, {prompts})"
    )
    for d in report.downgrades:
        why = f"HTTP {d.status}" + (f": {d.server_message}" if d.server_message else "")
        console.print(
            f"[yellow]! {d.field} not sent: the server refused it ({escape(why)}); "
            f"{escape(d.effect)}[/yellow]"
        )
    table = Table(title_justify="left", show_lines=False)
    table.add_column("metric", no_wrap=True)
    for st in report.stages:
        table.add_column(st.name, justify="right", no_wrap=True)
    summaries = [st.summary for st in report.stages]

    def dist_row(label: str, name: str, stat: str) -> None:
        cells = []
        for s in summaries:
            dist = getattr(s, name)
            cells.append("-" if dist is None else _fmt(getattr(dist, stat), 2))
        table.add_row(label, *cells)

    def ok_cell(s: Any) -> str:
        text = f"{s.ok}/{s.requests}"
        return f"[red]{text}[/red]" if s.failed else text

    table.add_row("ok / requests", *[ok_cell(s) for s in summaries])
    table.add_row("requests/s", *[_fmt(s.requests_per_s, 2) for s in summaries])
    table.add_row("output tok/s", *[_fmt(s.output_tokens_per_s) for s in summaries])
    table.add_row("total tok/s", *[_fmt(s.total_tokens_per_s) for s in summaries])
    table.add_row("concurrency", *[_fmt(s.concurrency, 2) for s in summaries])
    for label, name in (("TTFT", "ttft_ms"), ("ITL", "itl_ms"), ("TPOT", "tpot_ms"),
                        ("E2E", "e2e_ms")):
        for stat, stat_label in (("mean", "mean"), ("median", "p50"), ("p90", "p90"),
                                 ("p99", "p99"), ("max", "max")):
            if name in ("tpot_ms", "itl_ms") and stat == "p90":
                continue
            dist_row(f"{label} {stat_label} ms", name, stat)
    if any(s.goodput for s in summaries):
        table.add_row(
            "goodput",
            *[
                "-" if s.goodput is None
                else f"{s.goodput.requests_per_s:.2f}/s ({s.goodput.ratio:.0%})"
                for s in summaries
            ],
        )
    console.print(table)
    console.print("[dim]latencies in ms; TTFT/ITL/TPOT/E2E over successful requests only[/dim]")
    for st in report.stages:
        s = st.summary
        notes = [f"tokens from {token_source_label(s)}"]
        if s.cached_prompt_tokens is not None:
            notes.append(f"cached prompt tokens {s.cached_prompt_tokens:,} of {s.prompt_tokens:,}")
        if s.errors_by_cause:
            causes = ", ".join(f"{k}: {v}" for k, v in s.errors_by_cause.items())
            notes.append(f"[red]errors {s.error_rate:.1%} ({causes})[/red]")
        if s.warmup_excluded:
            notes.append(f"{s.warmup_excluded} warm-up excluded")
        if s.schedule_lag_ms is not None:
            notes.append(f"send lag p99 {s.schedule_lag_ms.p99:.2f} ms")
        if st.aborted:
            notes.append(f"[red]stopped early: {st.aborted}[/red]")
        if st.server is not None and st.server.derived:
            server = ", ".join(f"{k} {_fmt(v)}" for k, v in st.server.derived.items())
            notes.append(f"server: {server}")
        elif st.server is not None and st.server.error:
            notes.append(f"[dim]server metrics: {st.server.error}[/dim]")
        console.print(f"  {st.name}: " + " · ".join(notes))
    seen: set[tuple[str, str]] = set()
    for st in report.stages:
        for cause, message in st.summary.error_messages.items():
            if (cause, message) in seen:
                continue
            if not seen:
                console.print(
                    "[bold]First message per error cause[/bold] "
                    "(the server's own where it sent one):"
                )
            seen.add((cause, message))
            console.print(f"  [red]{escape(cause)}[/red]: {escape(message)}", soft_wrap=True)
    if report.gates:
        for g in report.gates:
            console.print(f"  [red]✗ {g}[/red]")
    elif report.config.fail_on:
        console.print(f"  [green]✓ gates passed: {', '.join(report.config.fail_on)}[/green]")


class _LiveProgress:
    """Rich progress bars refreshed from the engine's own callback (no refresh thread, so the
    display never competes with the event loop for the GIL)."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        from llmdeploy.cli.console import err

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[extra]}"),
            TimeElapsedColumn(),
            console=err(),
            auto_refresh=False,
            transient=False,
        )
        self._progress.start()
        self._tasks: dict[int, Any] = {}

    def update(self, p: Any) -> None:
        from llmdeploy.bench.runner import Progress as BenchProgress

        assert isinstance(p, BenchProgress)
        prog = self._progress
        if p.total is not None:
            total, done = float(p.total), float(p.done)
        else:
            total, done = float(p.duration_s or 1), min(p.elapsed_s, float(p.duration_s or 1))
        if p.stage_index not in self._tasks:
            self._tasks[p.stage_index] = prog.add_task(p.stage, total=total, extra="")
        task = self._tasks[p.stage_index]
        extra = f"{p.in_flight} in flight"
        if p.failed:
            extra += f", [red]{p.failed} failed[/red]"
        if p.finished:
            extra = f"{p.done} done" + (f", [red]{p.failed} failed[/red]" if p.failed else "")
            done = total
        prog.update(task, completed=done, extra=extra)
        prog.refresh()

    def stop(self) -> None:
        self._progress.stop()

