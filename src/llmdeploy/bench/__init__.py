"""``llmdeploy bench``: an accurate, light load generator for inference endpoints.

Layout (each module small, no Typer/Rich here, no printing, and nothing from deploy/: the CLI
in ``llmdeploy.cli.bench`` looks deployments up and passes what it found as plain data):

    options         option values -> BenchConfig (the one place they are interpreted)
    config          typed run spec (target, workload, load stages, stop rules, SLOs, gates)
    target          --url / found deployment / backend-default resolution, API kind
    http            lean asyncio HTTP/1.1 client (pool); http_connection: one connection,
                    stamping body bytes on arrival
    streams         incremental SSE and NDJSON decoders
    protocols       OpenAI / Ollama request bodies; collector: what came back, the outcome
    workload        seeded synthetic prompts, dataset files, fixed prompt, shared prefixes;
                    conversations: multi-turn; traces: Mooncake / BurstGPT replay
    schedule        absolute send offsets (constant, Poisson)
    preflight       model listing, API-kind check, the one-request pre-flight
    runner          the engine: stages, workers, raw per-request records
    loop, progress  the event loop and environment; live progress snapshots
    metrics         every metric derived from raw timestamps
    server_metrics  Prometheus scrape before/during/after a stage
    report          the versioned pydantic report
    gates, outcome  --fail-on expressions; how a finished run ends (exit 7 / 9)
    columns         every named stage metric and the summary columns, defined once
    tables          the rows every output renders (console, HTML, CSV, compare)
    compare         compare's verdicts (bootstrap intervals, noise threshold)
    vllm_json       the result JSON of vllm bench serve --save-result
    plots, export   Vega-Lite plot specs; CSV and the HTML page (templates/report.html.j2)
    mock_server     exact TTFT/ITL mock server for tests and client self-measurement
"""

from __future__ import annotations

from llmdeploy.bench.config import BenchConfig, LengthDist, LoadSpec, StopSpec, TargetSpec
from llmdeploy.bench.report import BenchReport, load_report
from llmdeploy.bench.runner import run_bench

__all__ = [
    "BenchConfig",
    "BenchReport",
    "LengthDist",
    "LoadSpec",
    "StopSpec",
    "TargetSpec",
    "load_report",
    "run_bench",
]
