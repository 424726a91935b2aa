"""``llmdeploy bench``: load-test an inference endpoint; ``report``, ``compare``, ``mock-server``.

Thin layer: read options, look up the running deployment they name (the deployment layer's
:func:`~llmdeploy.deploy.discovery.find_deployment`, so the bench itself never imports it),
build the typed config with :func:`~llmdeploy.bench.options.config_from_options`, run, and
render with Rich the rows :mod:`llmdeploy.bench.tables` defines for every output. Domain code
is imported inside the functions so ``--help`` is fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from llmdeploy.bench.compare import Verdict
    from llmdeploy.bench.options import BenchOptions
    from llmdeploy.bench.report import BenchReport
    from llmdeploy.bench.tables import CompareRow
    from llmdeploy.bench.target import RunningEndpoint

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
        None, "--url", "-u", help="Server URL, e.g. http://127.0.0.1:8000/v1 (the API base a "
        "deployment's `status` shows)."
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
    api_key_env: str | None = typer.Option(None, "--api-key-env", help="Read the bearer "
                                              "token from this environment variable (as "
                                              "chat and route take keys; never printed)."),
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
    sweep_max_concurrency: int = typer.Option(32, "--sweep-max-concurrency", help="--sweep's "
                                              "highest concurrency stage."),
    sweep_steps: int = typer.Option(4, "--sweep-steps", help="--sweep's rate stages between "
                                    "c=1's and c=max's throughput."),
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
    shared_prefix_tokens: int = typer.Option(0, "--shared-prefix-tokens", "--prefix-tokens",
                                             min=0, help="Start every prompt with a shared "
                                             "~N-token text (like a system prompt)."),
    prefixes: int = typer.Option(1, "--prefixes", min=1, help="Number of shared prefixes; "
                                 "request n starts with prefix n mod N (interleaved)."),
    turns: int = typer.Option(1, "--turns", min=1, help="Multi-turn conversations of T turns "
                              "that resend the history; -c / --rate count conversations."),
    think_time: str | None = typer.Option(None, "--think-time", help="Pause between an "
                                             "answer and the next turn, e.g. 500ms."),
    trace: Path | None = typer.Option(None, "--trace", help="Replay a request trace: "
                                         "Mooncake JSONL or BurstGPT CSV."),
    trace_format: str | None = typer.Option(None, "--trace-format", help="mooncake or "
                                               "burstgpt (default: from the file name)."),
    trace_speed: float = typer.Option(1.0, "--trace-speed", help="Replay speed: 2 sends the "
                                      "trace twice as fast."),
    trace_start: str | None = typer.Option(None, "--trace-start", help="Skip this much trace "
                                              "time first, e.g. 10m."),
    trace_duration: str | None = typer.Option(None, "--trace-duration", help="Replay only "
                                                 "this much trace time, e.g. 60s."),
    extra_body: str | None = typer.Option(None, "--extra-body", help="JSON merged into "
                                             "each request body; a null value removes a "
                                             "field."),
    seed: int = typer.Option(0, "--seed", help="Seed of every random choice (lengths, "
                             "arrivals, prefixes, dataset order): the same seed, the same "
                             "requests."),
    slo: str | None = typer.Option(None, "--slo", help="Goodput SLOs, e.g. "
                                      "ttft_ms=500,tpot_ms=50,e2e_ms=5000."),
    fail_on: list[str] | None = typer.Option(None, "--fail-on", help="Fail (exit 9) if "
                                                "true in any stage, e.g. 'ttft_p99_ms>800'."),
    metrics: bool = typer.Option(True, "--server-metrics/--no-server-metrics", help="Scrape "
                                 "Prometheus /metrics before, during and after each stage."),
    metrics_path: str | None = typer.Option(None, "--metrics-path", help="Path of the "
                                               "server's Prometheus metrics (default "
                                               "/metrics, or the deployment's)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the JSON report."),
    html: Path | None = typer.Option(None, "--html", help="Also write the HTML report."),
    csv: Path | None = typer.Option(None, "--csv", help="Also write the per-stage CSV."),
    vllm_json: Path | None = typer.Option(None, "--vllm-json", help="Also write the result "
                                             "JSON of `vllm bench serve --save-result` (one "
                                             "line per stage)."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Live progress "
                                  "(on a terminal)."),
    loop: str = typer.Option("auto", "--loop", help="Event loop: auto (uvloop if installed), "
                             "asyncio or uvloop."),
    workers: str = typer.Option("auto", "--workers", help="Client processes sharing each "
                                "stage's load (one schedule, one merged report); auto: from "
                                "the load and the CPU cores."),
) -> None:
    """Run a benchmark (when no subcommand is given)."""
    if ctx.invoked_subcommand is not None:
        return
    import sys

    from llmdeploy.bench.gates import failed_gates
    from llmdeploy.bench.options import BenchOptions, config_from_options
    from llmdeploy.bench.outcome import outcome_error
    from llmdeploy.bench.runner import run_bench
    from llmdeploy.cli.bench_views import LiveProgress, show

    if api_key_env is not None:
        import os

        from llmdeploy.cli.options import given
        from llmdeploy.client.chat_targets import key_from_env
        from llmdeploy.errors import UsageError

        if given(ctx, "api_key"):
            raise UsageError("give the key once: --api-key-env VAR or --api-key/"
                             f"${ENV_API_KEY}, not both")
        api_key = key_from_env(api_key_env, os.environ)
    options = BenchOptions(
        url=url, model=model, api=api, endpoint=endpoint, profile=profile, backend=backend,
        deployment=deployment, api_key=api_key, stream=stream, stream_usage=stream_usage,
        concurrency=concurrency, rate=rate, arrivals=arrivals, max_concurrency=max_concurrency,
        sweep=sweep, sweep_max_concurrency=sweep_max_concurrency, sweep_steps=sweep_steps,
        requests=requests, duration=duration, warmup=warmup, timeout=timeout,
        input_tokens=input_tokens, output_tokens=output_tokens, dataset=dataset, prompt=prompt,
        ignore_eos=ignore_eos, unique_prompts=unique_prompts, prompt_nonce=prompt_nonce,
        shared_prefix_tokens=shared_prefix_tokens, prefixes=prefixes, turns=turns,
        think_time=think_time, trace=trace, trace_format=trace_format, trace_speed=trace_speed,
        trace_start=trace_start, trace_duration=trace_duration, extra_body=extra_body,
        seed=seed, slo=slo, fail_on=tuple(fail_on or ()), server_metrics=metrics,
        metrics_path=metrics_path, output=output, html=html, csv=csv, vllm_json=vllm_json,
        workers=workers,
    )
    found = _running_deployment(options) if options.names_a_deployment else None
    config = config_from_options(options, found)
    display = LiveProgress() if progress and not json_out and sys.stderr.isatty() else None
    try:
        report = run_bench(
            config, on_progress=display.update if display else None, event_loop=loop
        )
    finally:
        if display is not None:
            display.stop()
    report.gates = failed_gates(report)
    if output is not None:
        report.save(output)
    written = ([str(output)] if output is not None else []) + _write_extras(
        report, html, csv, None, vllm_json
    )
    show(report, output, json_out)
    _say_written(written, json_out)
    error = outcome_error(report)
    if error is not None:
        raise error


@app.command("report")
def report_cmd(
    path: Path = typer.Argument(..., help="A JSON report written with --output."),
    html: Path | None = typer.Option(None, "--html", help="Write a self-contained HTML page."),
    csv: Path | None = typer.Option(None, "--csv", help="Write one CSV row per stage."),
    requests_csv: Path | None = typer.Option(None, "--requests-csv",
                                                help="Write one CSV row per request."),
    vllm_json: Path | None = typer.Option(None, "--vllm-json", help="Write the result JSON "
                                             "of `vllm bench serve --save-result`."),
    slo: str | None = typer.Option(None, "--slo", help="Recompute goodput with these SLOs."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Re-render a saved report: console table, CSV, HTML with plots."""
    from llmdeploy.bench.metrics import parse_slo, resummarize
    from llmdeploy.bench.report import load_report
    from llmdeploy.cli.bench_views import show

    report = load_report(path)
    if slo:
        resummarize(report, parse_slo(slo))
    written = _write_extras(report, html, csv, requests_csv, vllm_json)
    show(report, path, json_out)
    _say_written(written, json_out)


@app.command("compare")
def compare_cmd(
    paths: list[Path] = typer.Argument(..., help="Two or more JSON reports; the first is the "
                                       "baseline."),
    json_out: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
    threshold: float = typer.Option(5.0, "--threshold", min=0.0, help="Noise threshold in %: "
                                    "smaller changes are never called better or worse."),
    min_change_ms: float = typer.Option(1.0, "--min-change-ms", min=0.0, help="A latency "
                                        "that moved by less than this many ms is never called "
                                        "better or worse."),
    fail_on_regression: bool = typer.Option(False, "--fail-on-regression", help="Exit 9 when "
                                            "any metric of any run is worse than the base."),
) -> None:
    """Show runs side by side with deltas against the first, and a verdict per metric:
    better, worse or no significant change (bootstrap intervals from the per-request
    records, a noise threshold)."""
    from llmdeploy.bench.compare import compare_verdicts, regressions, verdict_line
    from llmdeploy.bench.report import load_report
    from llmdeploy.bench.tables import compare_rows
    from llmdeploy.errors import GateFailedError, UsageError

    if len(paths) < 2:
        raise UsageError("compare needs at least two reports")
    reports = [load_report(p) for p in paths]
    rows = compare_rows(reports)
    verdicts = [compare_verdicts(reports[0], r, threshold_pct=threshold,
                                 min_change_ms=min_change_ms) for r in reports[1:]]
    if json_out:
        from llmdeploy.cli.console import print_json

        print_json(
            {
                "runs": [str(p) for p in paths],
                "rows": [
                    {"stage": r.stage, "metric": r.column.label,
                     "key": r.column.metric.key if r.column.metric else None,
                     "unit": r.column.metric.unit if r.column.metric else None,
                     "values": r.values, "delta_pct": r.deltas_pct}
                    for r in rows
                ],
                "threshold_pct": threshold,
                "min_change_ms": min_change_ms,
                "verdicts": [
                    {"run": str(p), "verdict": verdict_line(vs),
                     "metrics": [v.as_dict() for v in vs]}
                    for p, vs in zip(paths[1:], verdicts, strict=True)
                ],
            }
        )
    else:
        _print_compare(paths, rows, verdicts)
    worse = [(p, v) for p, vs in zip(paths[1:], verdicts, strict=True) for v in regressions(vs)]
    if fail_on_regression and worse:
        raise GateFailedError(
            f"{len(worse)} metric(s) got worse than {paths[0].name}:\n  "
            + "\n  ".join(f"{p.name}: {v.stage} {v.label} {v.change_pct:+.1f}"
                          f"{' pt' if v.metric == 'error_rate' else '%'}"
                          if v.change_pct is not None else f"{p.name}: {v.stage} {v.label}"
                          for p, v in worse),
            hint=f"changes under {threshold:g}% (latencies: under {min_change_ms:g} ms) or "
                 "inside the run-to-run noise are not counted",
        )


def _print_compare(paths: list[Path], rows: list[CompareRow],
                   verdicts: list[list[Verdict]]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from llmdeploy.bench.columns import format_number
    from llmdeploy.bench.compare import verdict_line
    from llmdeploy.cli.console import out

    table = Table(title="llmdeploy bench compare (delta vs the first run)", title_justify="left")
    table.add_column("stage")
    table.add_column("metric")
    for i, p in enumerate(paths):
        table.add_column(f"{'base: ' if i == 0 else ''}{escape(p.name)}", justify="right")
    prev = None
    for r in rows:
        higher = r.column.metric is not None and r.column.metric.higher_is_better
        cells = []
        for i, (text, d) in enumerate(zip(r.cells, r.deltas_pct, strict=True)):
            if i > 0 and d is not None:
                color = "dim" if abs(d) < 1 else ("green" if (d > 0) == higher else "red")
                text += f" [{color}]({d:+.1f}%)[/{color}]"
            cells.append(text)
        table.add_row(escape(r.stage) if r.stage != prev else "", r.column.label, *cells)
        prev = r.stage
    console = out()
    console.print(table)
    style = {"better": "green", "worse": "bold red", "no significant change": "dim",
             "not measured": "dim"}
    for p, vs in zip(paths[1:], verdicts, strict=True):
        vt = Table(title=f"verdicts: {escape(p.name)} vs {escape(paths[0].name)}",
                   title_justify="left")
        for name in ("stage", "metric", "base", "run", "change", "95% interval", "verdict"):
            vt.add_column(name, justify="right" if name in ("base", "run", "change") else "left")
        prev = None
        for v in vs:
            unit = " pt" if v.metric == "error_rate" else "%"
            change = "-" if v.change_pct is None else f"{v.change_pct:+.1f}{unit}"
            interval = ("threshold only" if v.method == "threshold" else "-"
                        if v.low_pct is None or v.high_pct is None
                        else f"[{v.low_pct:+.1f}, {v.high_pct:+.1f}]{unit}")
            vt.add_row(escape(v.stage) if v.stage != prev else "", v.label,
                       format_number(v.base), format_number(v.value), change, interval,
                       f"[{style[v.verdict]}]{v.verdict}[/{style[v.verdict]}]")
            prev = v.stage
        console.print(vt)
        console.print(f"[bold]verdict {escape(p.name)}:[/bold] {escape(verdict_line(vs))}")


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
    epoll: bool = typer.Option(False, "--epoll", help="The default event loop instead of "
                               "select(), whose timers are precise to the microsecond."),
) -> None:
    """Serve OpenAI and Ollama APIs with exact injected TTFT and ITL (for tests).

    Prints ``listening http://HOST:PORT (OpenAI API base http://HOST:PORT/v1, ...)`` once it
    accepts connections (``--port 0``: a free port)."""
    from llmdeploy.bench.mock_server import MockConfig, serve

    config = MockConfig(
        ttft_ms=ttft_ms,
        itl_ms=itl_ms,
        output_tokens=output_tokens,
        model=model,
        error_rate=error_rate,
        disconnect_after=disconnect_after,
        usage=usage,
        api_key=api_key,
        precise_timers=not epoll,
    )
    serve(config, host, port, on_ready=lambda url: typer.echo(
        f"listening {url} (OpenAI API base {url}/v1, Ollama API {url}/api)"
    ))


# helpers ---------------------------------------------------------------------------------
def _running_deployment(options: BenchOptions) -> RunningEndpoint | None:
    """The running deployment ``--profile`` / ``--deployment`` / ``--backend`` name, found by
    its labels on every engine that answers. With only ``--backend`` and none running: None
    (the bench then uses that backend's default local port)."""
    from llmdeploy.bench.target import RunningEndpoint
    from llmdeploy.deploy.discovery import find_deployment
    from llmdeploy.errors import DeploymentNotFoundError

    try:
        dep = find_deployment(
            profile=options.profile, backend=options.backend, name=options.deployment
        )
    except DeploymentNotFoundError:
        if options.profile is None and options.deployment is None:
            return None
        raise
    return RunningEndpoint(
        base_url=dep.base_url,
        api=dep.api,
        served_model=dep.served_model or None,
        metrics_path=dep.metrics_path,
        backend=dep.backend or None,
    )


def _write_extras(
    report: BenchReport,
    html: Path | None,
    csv: Path | None,
    requests_csv: Path | None,
    vllm_json: Path | None = None,
) -> list[str]:
    """Write the extra outputs asked for; returns what was written, as the user should read
    it (the path, and what it is where the suffix does not say)."""
    from llmdeploy.bench.export import write_csv, write_html, write_requests_csv

    written: list[str] = []
    if vllm_json is not None:
        from llmdeploy.bench.vllm_json import write_vllm_json

        write_vllm_json(report, vllm_json)
        written.append(f"{vllm_json} (vLLM bench serve's result format)")
    if html is not None:
        write_html(report, html)
        written.append(str(html))
    if csv is not None:
        write_csv(report, csv)
        written.append(str(csv))
    if requests_csv is not None:
        write_requests_csv(report, requests_csv)
        written.append(f"{requests_csv} (one row per request)")
    return written


def _say_written(written: list[str], json_out: bool) -> None:
    """One line on stderr naming every file written (none with ``--json``: stdout is the
    data, and scripts know what they asked for)."""
    if written and not json_out:
        from llmdeploy.cli.console import err

        err().print(
            f"Written: {', '.join(written)}", style="dim", markup=False, highlight=False,
            soft_wrap=True,
        )
