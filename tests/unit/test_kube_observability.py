"""Observability of the Kubernetes export: ServiceMonitor, alert rules, Grafana dashboard."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from kube_obs_inputs import docs, inputs

from llmdeploy.render.kube.observability import observability_files

# what the servers really export (read from their /metrics: vLLM 0.32.0, llama.cpp's server)
VLLM_METRICS = {
    "vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
    "vllm:time_to_first_token_seconds_bucket", "vllm:inter_token_latency_seconds_bucket",
    "vllm:request_time_per_output_token_seconds_bucket", "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total", "http_requests_total", "up",
}
LLAMACPP_METRICS = {
    "llamacpp:requests_processing", "llamacpp:requests_deferred", "llamacpp:prompt_tokens_total",
    "llamacpp:prompt_seconds_total", "llamacpp:tokens_predicted_total",
    "llamacpp:tokens_predicted_seconds_total", "llamacpp:n_tokens_max", "up",
}
METRIC = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{")


def files(builtin: str, **kwargs: Any) -> dict[str, dict[str, Any]]:
    return docs(observability_files(inputs(builtin, **kwargs)))


def dashboard(rendered: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (text,) = rendered["grafana-dashboard.yaml"]["data"].values()
    result: dict[str, Any] = json.loads(text)
    return result


def every_query(rendered: dict[str, dict[str, Any]]) -> list[str]:
    rules = [r["expr"] for g in rendered["prometheusrule.yaml"]["spec"]["groups"]
             for r in g["rules"]]
    targets = [t["expr"] for p in dashboard(rendered)["panels"] for t in p.get("targets", [])]
    return rules + targets


@pytest.mark.parametrize(("name", "exported"), [("prod-vllm", VLLM_METRICS),
                                                ("edge-podman", LLAMACPP_METRICS)])
def test_every_query_uses_only_metrics_the_server_exports(name: str, exported: set[str]) -> None:
    used = {m for q in every_query(files(name)) for m in METRIC.findall(q)}
    assert used <= exported, used - exported
    # the renamed vLLM gauge and llama.cpp's removed KV metric are nowhere
    text = "".join(f.content for f in observability_files(inputs(name)))
    assert "gpu_cache_usage_perc" not in text and "kv_cache_usage_ratio" not in text


def test_every_query_selects_the_deployments_job() -> None:
    for query in every_query(files("prod-vllm", kubernetes={"namespace": "llm"})):
        for selector in re.findall(r"\{[^}]*\}", query):
            assert selector.startswith('{job="llmdeploy-prod-vllm",namespace="llm"'), query


def test_the_service_monitor_scrapes_the_named_port() -> None:
    sm = files("prod-vllm", kubernetes={"namespace": "llm"})["servicemonitor.yaml"]
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["spec"]["selector"] == {"matchLabels": {
        "app.kubernetes.io/name": "llmdeploy", "app.kubernetes.io/instance": "prod-vllm"}}
    assert sm["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "15s"}]
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["llm"]}


def alerts(rendered: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in rendered["prometheusrule.yaml"]["spec"]["groups"]
            for r in g["rules"]}


def test_vllm_gets_all_four_alerts() -> None:
    rules = alerts(files("prod-vllm", scale={"min_replicas": 1, "max_replicas": 4}))
    assert set(rules) == {"LlmdeployServerDown", "LlmdeployQueueGrowing",
                          "LlmdeployTtftP95OverSlo", "LlmdeployKvCacheNearlyFull"}
    assert rules["LlmdeployServerDown"]["expr"] == 'up{job="llmdeploy-prod-vllm"} == 0'
    assert rules["LlmdeployQueueGrowing"]["expr"].endswith(" > 64")  # the scale-out target
    assert rules["LlmdeployKvCacheNearlyFull"]["expr"] == (
        'max by (pod, instance) (vllm:kv_cache_usage_perc{job="llmdeploy-prod-vllm"}) > 0.9')
    assert rules["LlmdeployTtftP95OverSlo"]["expr"].startswith(
        "histogram_quantile(0.95, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket")
    assert rules["LlmdeployTtftP95OverSlo"]["expr"].endswith(" > 2")  # the default, 2000 ms
    for rule in rules.values():
        assert rule["labels"]["deployment"] == "prod-vllm"
        assert rule["labels"]["severity"] in ("critical", "warning")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_the_ttft_alert_and_queue_alert_take_the_measured_figures() -> None:
    rules = alerts(files("prod-vllm", queue_target=12, queue_target_source="run.json",
                         ttft_slo_ms=800))
    assert rules["LlmdeployTtftP95OverSlo"]["expr"].endswith(" > 0.8")
    assert "the SLO of the bench run" in rules["LlmdeployTtftP95OverSlo"]["annotations"][
        "description"]
    assert rules["LlmdeployQueueGrowing"]["expr"].endswith(" > 12")


def test_llamacpp_gets_no_alert_on_metrics_it_lacks_and_the_file_says_so() -> None:
    (_sm, rule_file, _dash) = observability_files(inputs("edge-podman"))
    rules = alerts(docs([rule_file]))
    assert set(rules) == {"LlmdeployServerDown", "LlmdeployQueueGrowing"}
    assert "No TTFT alert: llamacpp exports no time-to-first-token histogram" in rule_file.content
    assert "No KV-cache alert: llamacpp exports no KV-cache usage" in rule_file.content


@pytest.mark.parametrize(("name", "kwargs"), [("local-ollama", {}),
                                              ("edge-podman", {"backend": {"metrics": False}})])
def test_a_server_without_metrics_gets_no_monitoring(name: str, kwargs: dict[str, Any]) -> None:
    assert observability_files(inputs(name, **kwargs)) == []


def test_the_dashboard_is_a_sidecar_configmap() -> None:
    cm = files("prod-vllm")["grafana-dashboard.yaml"]
    assert cm["apiVersion"] == "v1" and cm["kind"] == "ConfigMap"
    assert cm["metadata"]["name"] == "llmdeploy-prod-vllm-dashboard"
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert list(cm["data"]) == ["llmdeploy-prod-vllm.json"]


@pytest.mark.parametrize("name", ["prod-vllm", "edge-podman"])
def test_dashboard_json_structure(name: str) -> None:
    board = dashboard(files(name))
    assert board["uid"] == f"llmdeploy-{name}" and len(board["uid"]) <= 40
    assert board["schemaVersion"] >= 36
    assert board["templating"]["list"][0]["type"] == "datasource"
    panels = board["panels"]
    assert [p["id"] for p in panels] == list(range(1, len(panels) + 1))
    cells = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        cell = (grid["x"], grid["y"])
        assert cell not in cells  # no two panels in one place
        cells.add(cell)
        if panel["type"] == "timeseries":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            refs = [t["refId"] for t in panel["targets"]]
            assert refs == sorted(set(refs)) and refs[0] == "A"
            assert all(t["expr"] and t["legendFormat"] for t in panel["targets"])
        else:
            assert panel["type"] == "text" and panel["options"]["content"]


def test_vllm_dashboard_has_each_promised_panel() -> None:
    titles = [p["title"] for p in dashboard(files("prod-vllm"))["panels"]]
    assert titles == [
        "Time to first token (TTFT)",
        "Inter-token latency (ITL) and time per output token (TPOT)",
        "Tokens per second",
        "Requests running and waiting",
        "KV-cache usage",
        "Error rate (HTTP 5xx of the API)",
        "Replicas scraped (up)",
    ]


def test_llamacpp_dashboard_says_what_it_cannot_show() -> None:
    panels = {p["title"]: p for p in dashboard(files("edge-podman"))["panels"]}
    assert "Prompt processing speed (drives TTFT; llama.cpp exports no TTFT)" in panels
    kv = panels["Longest sequence / slot context (1024 tokens; llama.cpp exports no KV-cache usage)"]
    assert kv["targets"][0]["expr"].endswith(" / 1024")  # ctx_size 2048 over 2 slots
    assert panels["Error rate"]["type"] == "text"
    assert "exports no error count" in panels["Error rate"]["options"]["content"]


def test_the_vllm_error_rate_counts_5xx_of_the_api_and_reads_0_without_errors() -> None:
    panel = next(p for p in dashboard(files("prod-vllm"))["panels"]
                 if p["title"].startswith("Error rate"))
    expr = panel["targets"][0]["expr"]
    total = 'sum(rate(http_requests_total{job="llmdeploy-prod-vllm",handler=~"/v1/.+"}[5m]))'
    failed = ('sum(rate(http_requests_total{job="llmdeploy-prod-vllm",status="5xx",'
              'handler=~"/v1/.+"}[5m]))')
    assert expr == f"({failed} or 0 * {total}) / {total}"


def test_a_long_name_gets_a_short_stable_uid() -> None:
    long = "a-very-long-deployment-name-for-the-dashboard"
    board = dashboard(files("prod-vllm", name=long, kubernetes={"namespace": "team-x"}))
    assert len(board["uid"]) == 40
    assert board["uid"] == dashboard(files("prod-vllm", name=long,
                                           kubernetes={"namespace": "team-x"}))["uid"]
