"""What every output shows, as plain data: the console, HTML, CSV and ``compare`` render it.

* :func:`summary_table`: the summary (:data:`~llmdeploy.bench.columns.SUMMARY_COLUMNS`, one
  row per metric, one cell per stage); :func:`compare_rows` the same metrics across reports;
* :func:`describe_run`: what was run (target, model, workload, client);
* :func:`stage_notes`: per stage, what the table cannot say (token source, cache, errors,
  warm-up, send lag, early stop, the server's metrics);
* :func:`error_messages`: the first message per error cause, over all stages;
* :data:`CSV_COLUMNS` / :func:`stage_csv_row` and :func:`request_rows`: the CSV files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from llmdeploy.bench.columns import (
    LATENCIES,
    METRICS,
    SUMMARY_COLUMNS,
    Column,
    format_number,
)
from llmdeploy.bench.report import BenchReport, StageResult, StageSummary

__all__ = [
    "CSV_COLUMNS",
    "CompareRow",
    "Note",
    "RunDescription",
    "SummaryRow",
    "client_limited_warning",
    "compare_rows",
    "describe_run",
    "error_messages",
    "request_rows",
    "server_table",
    "stage_csv_row",
    "stage_notes",
    "summary_table",
    "token_source_label",
]

API_SOURCE_LABELS = {
    "flag": "--api",
    "deployment": "from the deployment",
    "backend": "from --backend",
    "url": "from the URL path",
    "port": "guessed from the port",
    "discovery": "found by the model listing",
    "default": "default",
}


# the summary table ---------------------------------------------------------------------
@dataclass(frozen=True)
class SummaryRow:
    column: Column
    cells: list[str]  # one per stage
    alerts: list[bool]  # the cell reports a problem


def _rows(columns: tuple[Column, ...], summaries: list[StageSummary]) -> list[SummaryRow]:
    rows = []
    for col in columns:
        if col.optional and all(col.value(s) is None for s in summaries):
            continue
        rows.append(SummaryRow(col, [col.cell(s) for s in summaries],
                               [col.alerts(s) for s in summaries]))
    return rows


def summary_table(report: BenchReport) -> list[SummaryRow]:
    """The summary rows of ``report``, one cell per stage (in ``report.stages`` order)."""
    return _rows(SUMMARY_COLUMNS, [st.summary for st in report.stages])


@dataclass(frozen=True)
class CompareRow:
    stage: str
    column: Column
    cells: list[str]  # per report; "-" where the stage is missing
    values: list[float | None]  # per report
    deltas_pct: list[float | None]  # change against the first report


def compare_rows(reports: list[BenchReport]) -> list[CompareRow]:
    """The summary's numeric columns for each stage name across ``reports`` (matched by
    name; a stage missing from a run shows as None), with % change against the first."""
    names: list[str] = []
    for rep in reports:
        names.extend(st.name for st in rep.stages if st.name not in names)
    rows: list[CompareRow] = []
    for name in names:
        summaries = [next((s.summary for s in r.stages if s.name == name), None) for r in reports]
        for col in SUMMARY_COLUMNS:
            if col.metric is None:
                continue
            values = [None if s is None else col.value(s) for s in summaries]
            if all(v is None for v in values):
                continue
            base = values[0]
            deltas = [
                None if v is None or base is None or base == 0 else (v - base) / abs(base) * 100
                for v in values
            ]
            cells = ["-" if s is None else col.cell(s) for s in summaries]
            rows.append(CompareRow(name, col, cells, values, deltas))
    return rows


# what was run ----------------------------------------------------------------------------
@dataclass(frozen=True)
class RunDescription:
    endpoint: str  # e.g. http://127.0.0.1:8000/v1 (openai chat)
    api_source: str  # how the API kind was decided, in words
    model: str
    stream: bool
    workload: str  # e.g. synthetic; input 128 / output 128 tokens; unique prompts; seed 0
    created: str
    client: str
    slo: str
    gates: str

    def facts(self) -> list[tuple[str, str]]:
        """(label, text) pairs for a table of the run."""
        return [
            ("target", f"{self.endpoint} (API kind {self.api_source})"),
            ("model", self.model),
            ("streaming", "yes" if self.stream else "no"),
            ("workload", self.workload),
            ("created", self.created),
            ("client", self.client),
            ("SLO", self.slo),
            ("gates", self.gates),
        ]


def describe_run(report: BenchReport) -> RunDescription:
    cfg, env = report.config, report.environment
    t, wl = cfg.target, cfg.workload
    prompts = "unique prompts" if wl.unique_prompts else "repeated prompts"
    if wl.shared_prefix_tokens:
        prompts += (f", shared prefix {wl.shared_prefix_tokens} tokens"
                    + (f" x {wl.prefixes} prefixes interleaved" if wl.prefixes > 1 else ""))
    if wl.turns > 1:
        prompts += f", {wl.turns}-turn conversations"
        if wl.think_time_s:
            prompts += f" ({wl.think_time_s:g} s think time)"
    if wl.prompt_nonce is not None:
        prompts += f", nonce {wl.prompt_nonce}"
    output = wl.output_tokens.describe() if wl.output_tokens else "from the dataset"
    lengths = f"input {wl.input_tokens.describe()} / output {output} tokens"
    if wl.kind == "trace":
        window = f"from {wl.trace_start_s:g} s" + (
            f" for {wl.trace_duration_s:g} s" if wl.trace_duration_s else "")
        lengths = (f"{wl.trace_format} trace {wl.trace_path} ({window} of trace time), "
                   "lengths from the trace")
    return RunDescription(
        endpoint=f"{t.base_url}{t.api_prefix} ({t.api} {t.endpoint})",
        api_source=API_SOURCE_LABELS.get(t.api_source, t.api_source),
        model=report.model,
        stream=t.stream,
        workload=f"{wl.kind}; {lengths}; {prompts}; seed {wl.seed}",
        created=report.created_at,
        client=f"{env.http_client}, {env.event_loop}, {env.cpu_count} CPUs, {env.platform}",
        slo=json.dumps(cfg.slo) if cfg.slo else "-",
        gates=", ".join(cfg.fail_on) or "-",
    )


# notes -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Note:
    text: str
    level: Literal["info", "error", "dim"] = "info"


def token_source_label(summary: StageSummary) -> str:
    if not summary.token_sources:
        return "-"
    return "+".join(k for k, _ in sorted(summary.token_sources.items(), key=lambda x: -x[1]))


def stage_notes(stage: StageResult, asked_workers: int | None = None) -> list[Note]:
    """What the summary table cannot say about one stage (``asked_workers``: the run's
    ``--workers``, None for auto: a stage that ran fewer processes says why)."""
    s = stage.summary
    notes = [Note(f"tokens from {token_source_label(s)}")]
    ran = len(s.client.workers) if s.client is not None else None
    if asked_workers is not None and ran is not None and 0 < ran < asked_workers:
        notes.append(Note(f"--workers {asked_workers}: {ran} process{'es' if ran > 1 else ''} "
                          "(a concurrency stage needs a stream per process)"))
    if s.cached_prompt_tokens is not None:
        notes.append(Note(f"cached prompt tokens {s.cached_prompt_tokens:,} of "
                          f"{s.prompt_tokens:,}"))
    expected = stage.expected_cached_prompt_tokens
    if expected is not None:
        share = f" ({expected / s.prompt_tokens:.0%} of prompt tokens)" if s.prompt_tokens else ""
        notes.append(Note(f"cacheable by design ~{expected:,}{share}"))
    for t in s.by_turn:
        ttft = "-" if t.ttft_ms is None else f"{t.ttft_ms.median:.1f}"
        cached = "" if t.cached_prompt_tokens is None else (
            f", cached {t.cached_prompt_tokens:,}/{t.prompt_tokens:,}")
        notes.append(Note(f"turn {t.turn + 1}: {t.ok}/{t.requests} ok, TTFT p50 {ttft} ms"
                          f"{cached}"))
    if s.errors_by_cause:
        causes = ", ".join(f"{k}: {v}" for k, v in s.errors_by_cause.items())
        notes.append(Note(f"errors {s.error_rate:.1%} ({causes})", "error"))
    if s.warmup_excluded:
        notes.append(Note(f"{s.warmup_excluded} warm-up excluded"))
    if s.schedule_lag_ms is not None:
        notes.append(Note(f"send lag p99 {s.schedule_lag_ms.p99:.2f} ms"))
    if stage.aborted:
        notes.append(Note(f"stopped early: {stage.aborted}", "error"))
    warning = client_limited_warning(stage)
    if warning:
        notes.append(Note(warning, "error"))
    if stage.server is not None and stage.server.derived:
        server = ", ".join(f"{k} {format_number(v, 1)}" for k, v in stage.server.derived.items())
        notes.append(Note(f"server: {server}"))
    elif stage.server is not None and stage.server.error:
        notes.append(Note(f"server metrics: {stage.server.error}", "dim"))
    return notes


def client_limited_warning(stage: StageResult) -> str | None:
    """The warning for a stage the client could not drive as planned (None when it could,
    or for a report without a self-check)."""
    c = stage.summary.client
    if c is None or not c.client_limited:
        return None
    return (
        f"client-limited: {'; '.join(c.reasons)}. These figures may show the client's "
        "ceiling, not the server's: raise --workers or lower the load"
    )


def error_messages(report: BenchReport) -> list[tuple[str, str]]:
    """(cause, first message) over all stages, each pair once, in stage order."""
    seen: dict[tuple[str, str], None] = {}
    for st in report.stages:
        for cause, message in st.summary.error_messages.items():
            seen.setdefault((cause, message), None)
    return list(seen)


def server_table(report: BenchReport) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The server's derived metrics: (metric names, [(stage, cells)]); no names when none."""
    keys: list[str] = []
    for st in report.stages:
        if st.server:
            keys.extend(k for k in st.server.derived if k not in keys)
    rows = [
        (st.name, [format_number((st.server.derived if st.server else {}).get(k)) for k in keys])
        for st in report.stages
    ]
    return keys, rows


# CSV -------------------------------------------------------------------------------------
_CSV_STATS = ("mean", "median", "p90", "p95", "p99", "max")
_CSV_LATENCIES = [f"{name}_{stat}_ms" for name, _, _ in LATENCIES[:4] for stat in _CSV_STATS]
_CSV_RATES = ("requests_per_s", "output_tokens_per_s", "total_tokens_per_s", "concurrency")

CSV_COLUMNS = [
    "stage",
    "mode",
    "load",
    "requests",
    "ok",
    "failed",
    "error_rate",
    "duration_s",
    *_CSV_RATES,
    "prompt_tokens",
    "output_tokens",
    "cached_prompt_tokens",
    "token_source",
    *_CSV_LATENCIES,
    "goodput_per_s",
    "goodput_ratio",
    "errors_by_cause",
]


def _csv_number(key: str, s: StageSummary, digits: int) -> object:
    value = METRICS[key].value(s)
    return "" if value is None else round(value, digits)


def stage_csv_row(stage: StageResult) -> dict[str, object]:
    s = stage.summary
    row: dict[str, object] = {
        "stage": stage.name,
        "mode": stage.load.mode,
        "load": stage.load.value,
        "requests": s.requests,
        "ok": s.ok,
        "failed": s.failed,
        "error_rate": _csv_number("error_rate", s, 6),
        "duration_s": round(s.duration_s, 6),
        **{key: _csv_number(key, s, 4) for key in _CSV_RATES},
        "prompt_tokens": s.prompt_tokens,
        "output_tokens": s.output_tokens,
        "cached_prompt_tokens": "" if s.cached_prompt_tokens is None else s.cached_prompt_tokens,
        "token_source": token_source_label(s),
        **{key: _csv_number(key, s, 4) for key in _CSV_LATENCIES},
        "goodput_per_s": _csv_number("goodput_per_s", s, 4),
        "goodput_ratio": _csv_number("goodput_ratio", s, 6),
        "errors_by_cause": ";".join(f"{k}={v}" for k, v in s.errors_by_cause.items()),
    }
    return {key: row[key] for key in CSV_COLUMNS}


def request_rows(report: BenchReport) -> list[dict[str, object]]:
    """One row per request with its derived latencies (for --requests-csv)."""
    rows: list[dict[str, object]] = []
    for stage in report.stages:
        for r in stage.records:
            ttft, tpot = r.ttft_s, r.tpot_s
            rows.append(
                {
                    "stage": stage.name,
                    "index": r.index,
                    "warmup": r.warmup,
                    "start_s": round(r.start_s, 6),
                    "end_s": round(r.end_s, 6),
                    "ttft_ms": "" if ttft is None else round(ttft * 1000, 4),
                    "tpot_ms": "" if tpot is None else round(tpot * 1000, 4),
                    "e2e_ms": round(r.e2e_s * 1000, 4),
                    "chunks": len(r.token_times_s),
                    "prompt_tokens": "" if r.prompt_tokens is None else r.prompt_tokens,
                    "output_tokens": "" if r.output_tokens is None else r.output_tokens,
                    "cached_tokens": "" if r.cached_tokens is None else r.cached_tokens,
                    "token_source": r.token_source,
                    "error": r.error or "",
                    "error_detail": r.error_detail or "",
                }
            )
    return rows
