"""``llmdeploy bench``: an accurate, light load generator for inference endpoints.

Layout (each module small, no Typer/Rich here; the CLI lives in ``llmdeploy.cli.bench``):

    config         typed run spec (target, workload, load stages, stop rules, SLOs, gates)
    target         --url / deployment / backend-default resolution
    http           lean asyncio HTTP/1.1 client stamping body bytes on arrival
    streams        incremental SSE and NDJSON decoders
    protocols      OpenAI / Ollama request bodies and response collectors
    workload       seeded synthetic prompts, dataset files, fixed prompt
    schedule       absolute send offsets (constant, Poisson)
    runner         the engine: stages, workers, raw per-request records
    metrics        every metric derived from raw timestamps
    server_metrics Prometheus scrape before/during/after a stage
    report         the versioned pydantic report
    gates          --fail-on expressions
    tables/export/svgplot  CSV and self-contained HTML renderings
    mock_server    exact TTFT/ITL mock server for tests and client self-measurement
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
