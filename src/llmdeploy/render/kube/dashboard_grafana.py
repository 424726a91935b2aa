"""The Grafana dashboard of one deployment, as a ConfigMap the Grafana sidecar loads.

Panels: TTFT, ITL/TPOT, tokens per second, requests running and waiting (with the autoscaling
target), KV-cache usage, error rate and replicas up, each on the metrics the deployment's server
really exports. Where a server exports no metric for a panel (llama.cpp: no TTFT histogram, no
KV-cache usage, no error count) the panel shows the closest real signal and says so in its
title, or is a text panel saying what is missing; a panel is never drawn on a metric that does
not exist.

The dashboard uses a ``datasource`` variable (any Prometheus data source) and fixed rate windows,
so its queries are exactly what Prometheus evaluates.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from llmdeploy.core.launch import RenderedFile
from llmdeploy.render.inputs import ExportInputs
from llmdeploy.render.kube import names
from llmdeploy.render.kube.autoscaling import queue_target
from llmdeploy.render.kube.observability_metrics import (
    LLAMACPP_LONGEST_SEQUENCE,
    LLAMACPP_OUTPUT_SECONDS,
    LLAMACPP_PROMPT_SECONDS,
    ServerMetrics,
    quantile_query,
    rate,
    series,
    slot_context_tokens,
    up_query,
)
from llmdeploy.render.kube.observability_yaml import manifest_file

SIDECAR_LABEL = "grafana_dashboard"  # kube-prometheus-stack's sidecar.dashboards.label
SCHEMA_VERSION = 39
PANEL_HEIGHT = 8
PANEL_WIDTH = 12  # two panels per row (Grafana's grid is 24 wide)
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

__all__ = ["Panel", "dashboard", "dashboard_configmap", "panels"]


@dataclass(frozen=True)
class Panel:
    """A time series panel (``queries``: (PromQL, legend)) or, without queries, a text panel."""

    title: str
    unit: str = "short"
    queries: tuple[tuple[str, str], ...] = ()
    text: str = ""
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def dashboard_configmap(inputs: ExportInputs, metrics: ServerMetrics) -> RenderedFile:
    name = f"{names.base_name(inputs)}-dashboard"
    metadata = names.metadata(inputs, name, **{SIDECAR_LABEL: "1"})
    doc = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "data": {
            f"{names.base_name(inputs)}.json": json.dumps(dashboard(inputs, metrics), indent=2)
            + "\n"
        },
    }
    comments = [
        f"Grafana dashboard: the Grafana sidecar loads ConfigMaps labelled {SIDECAR_LABEL}=1",
        "(kube-prometheus-stack: on by default, from Grafana's own namespace unless",
        "sidecar.dashboards.searchNamespace is ALL). Or import the JSON in Grafana's UI.",
    ]
    return manifest_file("grafana-dashboard.yaml", doc, comments)


def dashboard(inputs: ExportInputs, metrics: ServerMetrics) -> dict[str, Any]:
    """The Grafana dashboard model (JSON-ready)."""
    base = names.base_name(inputs)
    return {
        "uid": _uid(base, names.namespace(inputs)),
        "title": f"llmdeploy: {inputs.plan.deployment} ({metrics.family})",
        "description": f"{inputs.plan.deployment}: {inputs.plan.run.image}, "
        f"model {inputs.plan.launch.served_model}",
        "tags": ["llmdeploy", "llm", metrics.family],
        "timezone": "browser",
        "editable": True,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "annotations": {"list": []},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "refresh": 1,
                }
            ]
        },
        "panels": [_panel_json(i, panel) for i, panel in enumerate(panels(inputs, metrics))],
    }


def panels(inputs: ExportInputs, metrics: ServerMetrics) -> list[Panel]:
    """The panels for this server family, in display order."""
    common_tokens = Panel(
        "Tokens per second",
        "short",
        (
            (f"sum({rate(metrics.output_tokens, inputs)})", "output"),
            (f"sum({rate(metrics.prompt_tokens, inputs)})", "prompt"),
        ),
    )
    target, _source = queue_target(inputs)
    load = Panel(
        "Requests running and waiting",
        "short",
        (
            (f"sum({series(metrics.running, inputs)})", "running"),
            (f"sum({series(metrics.waiting, inputs)})", "waiting"),
            (f"count({up_query(inputs)} == 1) * {target:g}", "scale-out target (all replicas)"),
        ),
        description="Requests being served and waiting for a slot, over every replica; the "
        "autoscaler adds a replica when running + waiting exceeds the target line.",
    )
    replicas = Panel(
        "Replicas scraped (up)", "short", ((f"sum({up_query(inputs)})", "replicas up"),)
    )
    if metrics.family == "vllm":
        return [
            _ttft(inputs, metrics),
            _itl_tpot(inputs, metrics),
            common_tokens,
            load,
            _kv_cache(inputs, metrics),
            _errors(inputs, metrics),
            replicas,
        ]
    return [*_llamacpp_latency(inputs), common_tokens, load, *_llamacpp_cache_errors(inputs),
            replicas]


def _ttft(inputs: ExportInputs, metrics: ServerMetrics) -> Panel:
    assert metrics.ttft_histogram is not None
    return Panel(
        "Time to first token (TTFT)",
        "s",
        tuple(
            (quantile_query(metrics.ttft_histogram, q, inputs), f"p{q * 100:g}")
            for q in (0.5, 0.95, 0.99)
        ),
    )


def _itl_tpot(inputs: ExportInputs, metrics: ServerMetrics) -> Panel:
    assert metrics.itl_histogram is not None and metrics.tpot_histogram is not None
    return Panel(
        "Inter-token latency (ITL) and time per output token (TPOT)",
        "s",
        (
            (quantile_query(metrics.itl_histogram, 0.5, inputs), "ITL p50"),
            (quantile_query(metrics.itl_histogram, 0.95, inputs), "ITL p95"),
            (quantile_query(metrics.tpot_histogram, 0.95, inputs), "TPOT p95 (per request)"),
        ),
    )


def _kv_cache(inputs: ExportInputs, metrics: ServerMetrics) -> Panel:
    assert metrics.kv_cache_usage is not None
    return Panel(
        "KV-cache usage",
        "percentunit",
        ((f"max by (pod) ({series(metrics.kv_cache_usage, inputs)})", "{{pod}}"),),
    )


def _errors(inputs: ExportInputs, metrics: ServerMetrics) -> Panel:
    """5xx answers of the OpenAI API over all its answers: 0 while none failed (``or 0 *``
    keeps the panel at 0 rather than empty), no data while nothing was asked."""
    assert metrics.http_requests is not None
    api = {"handler": "/v1/.+"}
    total = f"sum({rate(metrics.http_requests, inputs, regex=api)})"
    failed = f"sum({rate(metrics.http_requests, inputs, {'status': '5xx'}, api)})"
    return Panel(
        "Error rate (HTTP 5xx of the API)",
        "percentunit",
        ((f"({failed} or 0 * {total}) / {total}", "5xx / all"),),
    )


def _llamacpp_latency(inputs: ExportInputs) -> list[Panel]:
    prompt_tokens = f"sum({rate('llamacpp:prompt_tokens_total', inputs)})"
    prompt_seconds = f"sum({rate(LLAMACPP_PROMPT_SECONDS, inputs)})"
    output_tokens = f"sum({rate('llamacpp:tokens_predicted_total', inputs)})"
    output_seconds = f"sum({rate(LLAMACPP_OUTPUT_SECONDS, inputs)})"
    return [
        Panel(
            "Prompt processing speed (drives TTFT; llama.cpp exports no TTFT)",
            "short",
            ((f"{prompt_tokens} / {prompt_seconds}", "prompt tokens/s per busy slot"),),
            description="llama.cpp exports no time-to-first-token histogram: TTFT is the wait "
            "for a slot (see waiting requests) plus the prompt length / this speed. "
            "llmdeploy bench measures TTFT from the client.",
        ),
        Panel(
            "Time per output token (TPOT, mean)",
            "s",
            ((f"{output_seconds} / {output_tokens}", "TPOT mean"),),
            description="Generation time per output token of one request, averaged; llama.cpp "
            "exports no inter-token histogram, so no percentiles.",
        ),
    ]


def _llamacpp_cache_errors(inputs: ExportInputs) -> list[Panel]:
    slot_ctx = slot_context_tokens(inputs)
    longest = f"max by (pod) ({series(LLAMACPP_LONGEST_SEQUENCE, inputs)})"
    return [
        Panel(
            f"Longest sequence / slot context ({slot_ctx} tokens; llama.cpp exports no "
            "KV-cache usage)",
            "percentunit",
            ((f"{longest} / {slot_ctx}", "{{pod}}"),),
            description="The longest prompt + answer a replica has held since it started, as a "
            "fraction of one slot's context (ctx_size / parallel). Near 100 %, requests hit "
            "the context limit.",
        ),
        Panel(
            "Error rate",
            text="llama.cpp exports no error count. The bench report (`llmdeploy bench`) and "
            "your ingress or gateway count failed requests.",
        ),
    ]


def _panel_json(index: int, panel: Panel) -> dict[str, Any]:
    grid = {
        "h": PANEL_HEIGHT,
        "w": PANEL_WIDTH,
        "x": (index % 2) * PANEL_WIDTH,
        "y": (index // 2) * PANEL_HEIGHT,
    }
    if not panel.queries:
        return {
            "id": index + 1,
            "type": "text",
            "title": panel.title,
            "gridPos": grid,
            "options": {"mode": "markdown", "content": panel.text},
        }
    result: dict[str, Any] = {
        "id": index + 1,
        "type": "timeseries",
        "title": panel.title,
        "gridPos": grid,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom"},
            "tooltip": {"mode": "multi"},
        },
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr,
             "legendFormat": legend}
            for i, (expr, legend) in enumerate(panel.queries)
        ],
    }
    if panel.description:
        result["description"] = panel.description
    return result


def _uid(base: str, namespace: str | None) -> str:
    """A Grafana uid (at most 40 characters), stable per deployment and namespace."""
    uid = base if not namespace else f"{namespace}-{base}"
    if len(uid) <= 40:
        return uid
    digest = hashlib.sha256(uid.encode()).hexdigest()[:10]
    return f"{uid[:29]}-{digest}"
