"""--fail-on gates, target resolution (URL, deployment lookup, backend defaults)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from llmdeploy.bench.config import BenchConfig, LoadSpec, TargetSpec
from llmdeploy.bench.gates import check_gates, metric_value, parse_gates
from llmdeploy.bench.metrics import summarize
from llmdeploy.bench.options import BenchOptions
from llmdeploy.bench.report import BenchReport, EnvironmentInfo, RequestRecord, StageResult
from llmdeploy.bench.target import RunningEndpoint, resolve_target, split_url
from llmdeploy.errors import DeploymentNotFoundError, UsageError


def _report(ttft_s: float, error: str | None = None) -> BenchReport:
    recs = [RequestRecord(index=0, start_s=0.0, end_s=ttft_s + 0.1,
                          token_times_s=[] if error else [ttft_s, ttft_s + 0.1],
                          output_tokens=2, token_source="usage", error=error)]
    stage = StageResult(name="concurrency=1", load=LoadSpec(mode="concurrency", value=1),
                        started_s=0, ended_s=1, records=recs, summary=summarize(recs))
    env = EnvironmentInfo(hostname="h", platform="p", python="3", cpu_count=2,
                          llmdeploy_version="0", event_loop="x")
    return BenchReport(created_at="now", config=BenchConfig(target=TargetSpec(base_url="http://x")),
                       environment=env, model="m", stages=[stage])


def test_gate_fails_only_when_crossed() -> None:
    gates = parse_gates(["ttft_p99_ms>800", "error_rate>0.01,requests_per_s<0.1"])
    assert [str(g) for g in gates] == ["ttft_p99_ms>800", "error_rate>0.01", "requests_per_s<0.1"]
    assert check_gates(_report(0.5), gates) == []
    failures = check_gates(_report(0.9), gates)
    assert failures == ["concurrency=1: ttft_p99_ms = 900 > 800"]


def test_unmeasured_metric_fails_the_gate() -> None:
    failures = check_gates(_report(0.1, error="connect"), parse_gates(["ttft_p50_ms>800"]))
    assert len(failures) == 1 and "not measured" in failures[0]


@pytest.mark.parametrize("bad", ["ttft>5", "ttft_p99_ms >> 5", "bogus_ms>1", "ttft_p99_ms>abc"])
def test_bad_gate_expressions(bad: str) -> None:
    with pytest.raises(UsageError):
        parse_gates([bad])


def test_metric_value_names() -> None:
    s = _report(0.2).stages[0].summary
    assert metric_value(s, "ttft_p50_ms") == pytest.approx(200)
    assert metric_value(s, "ttft_median_ms") == pytest.approx(200)
    assert metric_value(s, "errors") == 0
    assert metric_value(s, "goodput_ratio") is None


def test_split_url() -> None:
    assert split_url("http://127.0.0.1:8000/v1", "openai") == ("http://127.0.0.1:8000", "/v1")
    assert split_url("http://127.0.0.1:8000", "openai") == ("http://127.0.0.1:8000", "/v1")
    assert split_url("http://h:1/v1/chat/completions", "openai") == ("http://h:1", "/v1")
    assert split_url("http://127.0.0.1:11434/", "ollama") == ("http://127.0.0.1:11434", "")
    with pytest.raises(UsageError):
        split_url("127.0.0.1:8000", "openai")
    with pytest.raises(UsageError):
        split_url("http://127.0.0.1:99999/v1", "openai")


def test_ollama_port_picks_ollama_api_only_as_a_marked_guess() -> None:
    t = resolve_target(url="http://127.0.0.1:11434")
    assert (t.api, t.api_prefix, t.api_source) == ("ollama", "", "port")


@pytest.mark.parametrize(
    ("url", "api", "prefix", "source"),
    [
        # the URL path beats the port (case bench-ollama-openai-v1)
        ("http://127.0.0.1:11434/v1", "openai", "/v1", "url"),
        ("http://127.0.0.1:11434/v1/chat/completions", "openai", "/v1", "url"),
        ("http://127.0.0.1:8000/api", "ollama", "", "url"),
        ("http://127.0.0.1:8000/proxy/api/chat", "ollama", "/proxy", "url"),
        ("http://127.0.0.1:8000/openai/v1/", "openai", "/openai/v1", "url"),
        ("http://127.0.0.1:8000", "openai", "/v1", "default"),
    ],
)
def test_api_kind_precedence_url_path_over_port(
    url: str, api: str, prefix: str, source: str
) -> None:
    t = resolve_target(url=url)
    assert (t.api, t.api_prefix, t.api_source) == (api, prefix, source)


def test_explicit_api_flag_wins_and_contradictions_are_usage_errors() -> None:
    t = resolve_target(url="http://127.0.0.1:11434", api="openai")
    assert (t.api, t.api_prefix, t.api_source) == ("openai", "/v1", "flag")
    with pytest.raises(UsageError, match="contradicts the URL path"):
        resolve_target(url="http://127.0.0.1:11434/v1", api="ollama")
    with pytest.raises(UsageError, match="contradicts the URL path"):
        resolve_target(url="http://127.0.0.1:8000/api/chat", api="openai")


def _fake_discovery(monkeypatch: pytest.MonkeyPatch, result: Any) -> list[dict[str, Any]]:
    import llmdeploy.deploy.discovery as discovery

    calls: list[dict[str, Any]] = []

    def find_deployment(**kw: Any) -> Any:
        calls.append(kw)
        if isinstance(result, Exception):
            raise result
        return result

    monkeypatch.setattr(discovery, "find_deployment", find_deployment)
    return calls


def _resolve(**kw: Any) -> TargetSpec:
    """What `llmdeploy bench` does: the CLI looks the deployment up (the bench does not
    import deploy/), then the bench resolves the target from what was found."""
    from llmdeploy.cli.bench import _running_deployment

    options = BenchOptions(**kw)
    found = _running_deployment(options) if options.names_a_deployment else None
    return resolve_target(url=options.url, profile=options.profile, backend=options.backend,
                          name=options.deployment, deployment=found)


def _dep(**kw: Any) -> SimpleNamespace:
    return SimpleNamespace(**{"served_model": "", "metrics_path": "/metrics", **kw})


def test_profile_uses_the_running_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    dep = _dep(base_url="http://127.0.0.1:8080", api="openai",
               served_model="smollm2", metrics_path="/metrics", backend="llamacpp")
    calls = _fake_discovery(monkeypatch, dep)
    t = _resolve(profile="edge-podman")
    assert calls == [{"profile": "edge-podman", "backend": None, "name": None}]
    assert (t.base_url, t.model, t.api, t.backend) == (
        "http://127.0.0.1:8080", "smollm2", "openai", "llamacpp")


def test_ollama_deployment_has_no_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    dep = _dep(base_url="http://127.0.0.1:11434", api="ollama",
               served_model="qwen", metrics_path=None, backend="ollama")
    _fake_discovery(monkeypatch, dep)
    t = _resolve(backend="ollama")
    assert t.api == "ollama" and t.metrics_path is None


def test_backend_without_deployment_falls_back_to_default_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_discovery(monkeypatch, DeploymentNotFoundError("none"))
    t = _resolve(backend="vllm")
    assert t.base_url == "http://127.0.0.1:8000" and t.api == "openai"


def test_missing_profile_deployment_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_discovery(monkeypatch, DeploymentNotFoundError("no running deployment"))
    with pytest.raises(DeploymentNotFoundError):
        _resolve(profile="nope")


def test_url_wins_and_no_deployment_is_looked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_discovery(monkeypatch, DeploymentNotFoundError("none"))
    t = _resolve(url="http://127.0.0.1:9000/v1", profile="edge-podman")
    assert calls == [] and t.base_url == "http://127.0.0.1:9000"


def test_found_deployment_keeps_the_precedence_rules() -> None:
    """The domain side alone: explicit flag > deployment > URL path > port."""
    found = RunningEndpoint(base_url="http://127.0.0.1:11434", api="ollama",
                            served_model="qwen", metrics_path=None, backend="ollama")
    t = resolve_target(profile="p", deployment=found)
    assert (t.api, t.api_source, t.model, t.api_prefix) == ("ollama", "deployment", "qwen", "")
    t = resolve_target(profile="p", deployment=found, api="openai", model="other")
    assert (t.api, t.api_source, t.model, t.api_prefix) == ("openai", "flag", "other", "/v1")
    with pytest.raises(DeploymentNotFoundError):
        resolve_target(profile="p")  # a profile without the caller's lookup result


def test_nothing_to_benchmark() -> None:
    with pytest.raises(UsageError, match="nothing to benchmark"):
        resolve_target()
