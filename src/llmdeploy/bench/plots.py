"""The HTML report's plots, as Vega-Lite specifications (plain data, drawn by the browser).

Seven plots, each a dict with an ``id``: the TTFT, ITL, E2E and TPOT distributions (CDF, one
line per stage), TTFT and TPOT (p50 and p99) against output throughput across stages, and
TTFT of every request over time with failed requests marked. Every plot zooms and pans
(wheel, drag; double-click resets), shows the values under the pointer, and a click on a
legend entry brings that series forward. Point counts are capped (:data:`MAX_CDF_POINTS`
per stage, :data:`MAX_SCATTER_POINTS` in all) and values rounded (latencies to the
microsecond, fractions to 1e-4) so the page stays light.
"""

from __future__ import annotations

import itertools
from typing import Any

from llmdeploy.bench.report import BenchReport, StageResult

__all__ = ["MAX_CDF_POINTS", "MAX_SCATTER_POINTS", "PALETTE", "plot_specs"]

MAX_SCATTER_POINTS = 3000
MAX_CDF_POINTS = 300
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
FAILED_COLOR = "#d62728"  # kept out of PALETTE: red means failed
WIDTH, HEIGHT = 560, 240

Spec = dict[str, Any]


def plot_specs(report: BenchReport) -> list[Spec]:
    """Every plot of the report, in page order: ``{"id": ..., "spec": Vega-Lite spec}``."""
    return [
        {"id": "cdf-ttft", "spec": _cdf(report, "ttft", "TTFT")},
        {"id": "cdf-itl", "spec": _cdf(report, "itl", "ITL")},
        {"id": "cdf-e2e", "spec": _cdf(report, "e2e", "E2E latency")},
        {"id": "cdf-tpot", "spec": _cdf(report, "tpot", "TPOT")},
        {"id": "sweep-ttft", "spec": _sweep(report, "TTFT", "ttft_ms")},
        {"id": "sweep-tpot", "spec": _sweep(report, "TPOT", "tpot_ms")},
        {"id": "ttft-time", "spec": _timeline(report)},
    ]


# data --------------------------------------------------------------------------------------
def stage_values_ms(st: StageResult, metric: str) -> list[float]:
    """One latency of the stage's successful measured requests, in ms (``itl``: every gap
    between consecutive content chunks)."""
    values: list[float] = []
    for r in st.records:
        if r.warmup or not r.ok:
            continue
        if metric == "itl":
            values.extend((b - a) * 1000 for a, b in itertools.pairwise(r.token_times_s))
            continue
        v = r.e2e_s if metric == "e2e" else r.ttft_s if metric == "ttft" else r.tpot_s
        if v is not None:
            values.append(v * 1000)
    return values


def cdf_points(values: list[float]) -> list[tuple[float, float]]:
    """(value, fraction of values <= it), thinned to about :data:`MAX_CDF_POINTS`, always
    ending at the largest value."""
    if not values:
        return []
    v = sorted(values)
    n = len(v)
    step = max(1, n // MAX_CDF_POINTS)
    pts = [(v[i], (i + 1) / n) for i in range(0, n, step)]
    if pts[-1][0] != v[-1] or pts[-1][1] != 1.0:
        pts.append((v[-1], 1.0))
    return pts


# specs -------------------------------------------------------------------------------------
def _spec(
    title: str,
    rows: list[dict[str, Any]],
    *,
    mark: Spec,
    x: Spec,
    y: Spec,
    series: list[str],
    colors: list[str],
    extra: Spec | None = None,
) -> Spec:
    """One chart: ``rows`` of {series, x, y, ...} drawn as ``mark``, colored by series."""
    if not rows:
        return {
            "title": title,
            "width": WIDTH,
            "height": HEIGHT,
            "data": {"values": [{"text": "no data"}]},
            "mark": {"type": "text", "fontSize": 14, "color": "#777"},
            "encoding": {"text": {"field": "text"}},
        }
    encoding: Spec = {
        "x": {"field": "x", "type": "quantitative", **x},
        "y": {"field": "y", "type": "quantitative", **y},
        "color": {
            "field": "series",
            "type": "nominal",
            "title": None,
            "scale": {"domain": series, "range": colors},
        },
        "opacity": {"condition": {"param": "pick", "value": 1}, "value": 0.15},
        "tooltip": [
            {"field": "series", "title": "series"},
            {"field": "x", "title": x["title"], "format": ",.2f"},
            {"field": "y", "title": y["title"], "format": ",.3~f"},
        ],
        **(extra or {}),
    }
    return {
        "title": title,
        "width": WIDTH,
        "height": HEIGHT,
        "data": {"values": rows},
        "mark": mark,
        "encoding": encoding,
        "params": [
            {"name": "zoom", "select": "interval", "bind": "scales"},
            {"name": "pick", "select": {"type": "point", "fields": ["series"]}, "bind": "legend"},
        ],
    }


def _stage_colors(report: BenchReport) -> tuple[list[str], list[str]]:
    names = [st.name for st in report.stages]
    return names, [PALETTE[i % len(PALETTE)] for i in range(len(names))]


def _cdf(report: BenchReport, metric: str, label: str) -> Spec:
    rows = [
        {"series": st.name, "x": round(x, 3), "y": round(y, 4)}
        for st in report.stages
        for x, y in cdf_points(stage_values_ms(st, metric))
    ]
    names, colors = _stage_colors(report)
    return _spec(
        f"{label} distribution (CDF)",
        rows,
        mark={"type": "line", "interpolate": "step-after", "point": {"size": 10}},
        x={"title": f"{label} (ms)"},
        y={"title": "fraction of gaps" if metric == "itl" else "fraction of requests",
           "scale": {"domain": [0, 1]}},
        series=names,
        colors=colors,
    )


def _sweep(report: BenchReport, label: str, field: str) -> Spec:
    rows = []
    for st in report.stages:
        dist = getattr(st.summary, field)
        if dist is None:
            continue
        for stat, value in (("p50", dist.median), ("p99", dist.p99)):
            rows.append({"series": f"{label} {stat}", "stat": stat, "stage": st.name,
                         "x": round(st.summary.output_tokens_per_s, 3), "y": round(value, 3)})
    return _spec(
        f"{label} latency vs throughput across stages",
        sorted(rows, key=lambda r: (r["series"], r["x"])),
        mark={"type": "line", "point": {"size": 40}},
        x={"title": "output tokens/s"},
        y={"title": f"{label} (ms)"},
        series=[f"{label} p50", f"{label} p99"],
        colors=list(PALETTE[:2]),
        extra={
            "strokeDash": {
                "field": "stat",
                "type": "nominal",
                "title": None,
                "scale": {"domain": ["p50", "p99"], "range": [[1, 0], [5, 4]]},
                "legend": None,
            },
            "tooltip": [
                {"field": "stage", "title": "stage"},
                {"field": "series", "title": "series"},
                {"field": "x", "title": "output tokens/s", "format": ",.1f"},
                {"field": "y", "title": f"{label} (ms)", "format": ",.2f"},
            ],
        },
    )


def _timeline(report: BenchReport) -> Spec:
    total = sum(len(st.records) for st in report.stages)
    step = max(1, total // MAX_SCATTER_POINTS)
    rows: list[dict[str, Any]] = []
    failed = False
    for st in report.stages:
        for r in st.records[::step]:
            ttft = r.ttft_s
            if not r.ok:
                failed = True
                rows.append({"series": "failed", "x": round(r.start_s, 4), "y": 0.0,
                             "error": r.error or ""})
            elif ttft is not None:
                rows.append({"series": st.name, "x": round(r.start_s, 4),
                             "y": round(ttft * 1000, 3), "error": ""})
    names, colors = _stage_colors(report)
    if failed:
        names, colors = [*names, "failed"], [*colors, FAILED_COLOR]
    return _spec(
        "TTFT over time",
        rows,
        mark={"type": "point", "filled": True, "size": 16 if len(rows) > 200 else 36},
        x={"title": "request start (s since the run began)"},
        y={"title": "TTFT (ms)"},
        series=names,
        colors=colors,
        extra={
            "shape": {
                "condition": {"test": "datum.series === 'failed'", "value": "cross"},
                "value": "circle",
            },
            "tooltip": [
                {"field": "series", "title": "stage"},
                {"field": "x", "title": "start (s)", "format": ",.3f"},
                {"field": "y", "title": "TTFT (ms)", "format": ",.2f"},
                {"field": "error", "title": "error"},
            ],
        },
    )
