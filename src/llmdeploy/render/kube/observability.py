"""Observability of the Kubernetes export: what Prometheus scrapes, alerts on, and Grafana shows.

- ``servicemonitor.yaml``: a Prometheus Operator ServiceMonitor scraping the Service's
  ``/metrics`` (port :data:`~llmdeploy.render.kube.names.PORT_NAME`);
- ``prometheusrule.yaml``: alerts, each on metrics the server really exports
  (:mod:`~llmdeploy.render.kube.observability_metrics`): server down, queue growing (requests in
  flight per replica above the autoscaling target), TTFT p95 over the SLO and KV cache nearly
  full where the server exports a TTFT histogram and a KV-cache gauge (vLLM; llama.cpp exports
  neither);
- ``grafana-dashboard.yaml``: the Grafana dashboard as a ConfigMap the Grafana sidecar loads.

A server without Prometheus metrics (Ollama, llama.cpp with ``backend.metrics: false``) gets
none of them: a ServiceMonitor would only report it down.

Every alert expression has the shape ``SIGNAL OP NUMBER``: the signal is a query that returns
data whenever the server is scraped (the end-to-end test checks each one against a real
Prometheus scraping a real server).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmdeploy.core.launch import RenderedFile
from llmdeploy.render.inputs import ExportInputs
from llmdeploy.render.kube import names
from llmdeploy.render.kube.autoscaling import queue_target
from llmdeploy.render.kube.dashboard_grafana import dashboard_configmap
from llmdeploy.render.kube.observability_metrics import (
    ServerMetrics,
    in_flight_query,
    quantile_query,
    series,
    server_metrics,
    up_query,
)
from llmdeploy.render.kube.observability_yaml import manifest_file

SCRAPE_INTERVAL = "15s"
DEFAULT_TTFT_SLO_MS = 2000.0  # TTFT p95 bound of the alert without a measured SLO
KV_CACHE_FULL = 0.9  # fraction of the KV cache in use that raises the alert
QUEUE_ALERT_FOR = "15m"

__all__ = ["DEFAULT_TTFT_SLO_MS", "AlertRule", "alert_rules", "observability_files"]


@dataclass(frozen=True)
class AlertRule:
    """One alert: fires when ``signal op threshold`` held for ``for_``."""

    name: str
    signal: str
    op: str
    threshold: float
    for_: str
    severity: str
    summary: str
    description: str

    @property
    def expr(self) -> str:
        return f"{self.signal} {self.op} {self.threshold:g}"


def observability_files(inputs: ExportInputs) -> list[RenderedFile]:
    """The ServiceMonitor, PrometheusRule and dashboard ConfigMap; [] for a server without
    Prometheus metrics."""
    metrics = server_metrics(inputs)
    if metrics is None:
        return []
    return [
        _service_monitor(inputs),
        _prometheus_rule(inputs, metrics),
        dashboard_configmap(inputs, metrics),
    ]


def _service_monitor(inputs: ExportInputs) -> RenderedFile:
    name = names.base_name(inputs)
    spec: dict[str, Any] = {
        "selector": {"matchLabels": names.selector_labels(inputs)},
        "endpoints": [
            {
                "port": names.PORT_NAME,
                "path": inputs.plan.launch.metrics_path,
                "interval": SCRAPE_INTERVAL,
            }
        ],
    }
    namespace = names.namespace(inputs)
    if namespace:
        spec["namespaceSelector"] = {"matchNames": [namespace]}
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": names.metadata(inputs, name),
        "spec": spec,
    }
    comments = [
        "ServiceMonitor: needs the Prometheus Operator (monitoring.coreos.com CRDs).",
        "Its Prometheus picks ServiceMonitors by label: kube-prometheus-stack wants",
        "release=<its release name> (add it with the profile's kubernetes.labels) unless",
        "prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValues is false.",
        f"The scrape job is named after the Service ({name}); every query selects it.",
    ]
    return manifest_file("servicemonitor.yaml", doc, comments)


def alert_rules(inputs: ExportInputs, metrics: ServerMetrics) -> list[AlertRule]:
    """The alerts for this deployment's server, on the metrics it really exports."""
    deployment = inputs.plan.deployment
    target, _source = queue_target(inputs)
    rules = [
        AlertRule(
            name="LlmdeployServerDown",
            signal=up_query(inputs),
            op="==",
            threshold=0,
            for_="2m",
            severity="critical",
            summary=f"{deployment}: a replica does not answer /metrics",
            description="Prometheus cannot scrape {{ $labels.instance }} of " + deployment
            + " for 2 minutes: the server is down, restarting or hung.",
        ),
        AlertRule(
            name="LlmdeployQueueGrowing",
            signal=f"{in_flight_query(metrics, inputs)} / count({up_query(inputs)} == 1)",
            op=">",
            threshold=target,
            for_=QUEUE_ALERT_FOR,
            severity="warning",
            summary=f"{deployment}: more requests in flight per replica than it serves",
            description=f"Requests in flight (running + waiting) per replica stayed above "
            f"{target:g}, the autoscaling target, for {QUEUE_ALERT_FOR}: requests queue and wait "
            "longer. The autoscaler is at its maximum, or new replicas cannot start.",
        ),
    ]
    if metrics.ttft_histogram is not None:
        slo_ms = inputs.ttft_slo_ms or DEFAULT_TTFT_SLO_MS
        rules.append(
            AlertRule(
                name="LlmdeployTtftP95OverSlo",
                signal=quantile_query(metrics.ttft_histogram, 0.95, inputs),
                op=">",
                threshold=slo_ms / 1000.0,
                for_="5m",
                severity="warning",
                summary=f"{deployment}: time to first token p95 above {slo_ms:g} ms",
                description=f"The 95th percentile of the time to first token over 5 minutes is "
                f"above {slo_ms:g} ms ("
                + ("the SLO of the bench run" if inputs.ttft_slo_ms else "llmdeploy's default")
                + ").",
            )
        )
    if metrics.kv_cache_usage is not None:
        rules.append(
            AlertRule(
                name="LlmdeployKvCacheNearlyFull",
                signal=f"max by (pod, instance) ({series(metrics.kv_cache_usage, inputs)})",
                op=">",
                threshold=KV_CACHE_FULL,
                for_="5m",
                severity="warning",
                summary=f"{deployment}: KV cache over {KV_CACHE_FULL:.0%} full",
                description="The KV cache of {{ $labels.pod }} stayed over "
                f"{KV_CACHE_FULL:.0%} full for 5 minutes: the server preempts requests and "
                "batches fewer of them.",
            )
        )
    return rules


def _prometheus_rule(inputs: ExportInputs, metrics: ServerMetrics) -> RenderedFile:
    name = names.base_name(inputs)
    rules = [
        {
            "alert": rule.name,
            "expr": rule.expr,
            "for": rule.for_,
            "labels": {"severity": rule.severity, "deployment": inputs.plan.deployment},
            "annotations": {"summary": rule.summary, "description": rule.description},
        }
        for rule in alert_rules(inputs, metrics)
    ]
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": names.metadata(inputs, name),
        "spec": {"groups": [{"name": name, "rules": rules}]},
    }
    comments = [
        "PrometheusRule: needs the Prometheus Operator; its Prometheus picks rules by label",
        "(kube-prometheus-stack: release=<its release name>, see servicemonitor.yaml).",
        *_missing_alerts(metrics),
    ]
    return manifest_file("prometheusrule.yaml", doc, comments)


def _missing_alerts(metrics: ServerMetrics) -> list[str]:
    lines = []
    if metrics.ttft_histogram is None:
        lines.append(
            f"No TTFT alert: {metrics.family} exports no time-to-first-token histogram "
            "(llmdeploy bench measures TTFT)."
        )
    if metrics.kv_cache_usage is None:
        lines.append(f"No KV-cache alert: {metrics.family} exports no KV-cache usage.")
    return lines
