"""Autoscaling of the Kubernetes export (render/kube/autoscaling.py)."""

from __future__ import annotations

import pytest
from kube_obs_inputs import GIB, docs, inputs

from llmdeploy.errors import ProfileError
from llmdeploy.render.kube.autoscaling import PROMETHEUS_URL, autoscaling_files

SCALE = {"scale": {"min_replicas": 1, "max_replicas": 4}}


def scaled_object(**kwargs: object) -> dict:
    files = docs(autoscaling_files(inputs(**kwargs)))  # type: ignore[arg-type]
    assert list(files) == ["scaledobject.yaml"]
    return files["scaledobject.yaml"]


def test_keda_scales_vllm_on_its_requests_running_plus_waiting() -> None:
    so = scaled_object(builtin="prod-vllm", **SCALE)
    assert so["apiVersion"] == "keda.sh/v1alpha1" and so["kind"] == "ScaledObject"
    assert so["metadata"]["name"] == "llmdeploy-prod-vllm"
    assert so["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "llmdeploy-prod-vllm"}
    (trigger,) = so["spec"]["triggers"]
    assert trigger["type"] == "prometheus" and trigger["metricType"] == "AverageValue"
    assert trigger["metadata"]["serverAddress"] == PROMETHEUS_URL
    assert trigger["metadata"]["query"] == (
        'sum(vllm:num_requests_running{job="llmdeploy-prod-vllm"}'
        ' + vllm:num_requests_waiting{job="llmdeploy-prod-vllm"})')


def test_keda_scales_llamacpp_on_processing_plus_deferred() -> None:
    so = scaled_object(builtin="edge-podman", **SCALE)
    query = so["spec"]["triggers"][0]["metadata"]["query"]
    assert query == ('sum(llamacpp:requests_processing{job="llmdeploy-edge-podman"}'
                     ' + llamacpp:requests_deferred{job="llmdeploy-edge-podman"})')


def test_the_namespace_narrows_every_query() -> None:
    so = scaled_object(builtin="edge-podman", kubernetes={"namespace": "llm"}, **SCALE)
    assert so["metadata"]["namespace"] == "llm"
    query = so["spec"]["triggers"][0]["metadata"]["query"]
    assert query.count('{job="llmdeploy-edge-podman",namespace="llm"}') == 2


@pytest.mark.parametrize(
    ("kwargs", "threshold", "source"),
    [
        # --from-bench wins over everything
        ({"queue_target": 6.5, "queue_target_source": "run.json: concurrency=6 ...",
          "scale": {"min_replicas": 1, "max_replicas": 4, "target": 3}}, "6.5", "run.json"),
        # then the profile's target
        ({"scale": {"min_replicas": 1, "max_replicas": 4, "target": 3}}, "3", "scale.target"),
        # then the server's batch slots: llama.cpp's parallel (2 in edge-podman) ...
        (SCALE, "2", "backend.parallel"),
    ],
)
def test_the_threshold_comes_from_bench_then_profile_then_slots(
    kwargs: dict, threshold: str, source: str
) -> None:
    so = scaled_object(builtin="edge-podman", **kwargs)
    assert so["spec"]["triggers"][0]["metadata"]["threshold"] == threshold
    assert source in so["metadata"]["annotations"]["io.llmdeploy.scale-target"]


def test_vllm_slots_are_max_num_seqs_else_the_default() -> None:
    so = scaled_object(builtin="prod-vllm", **SCALE)  # max_num_seqs: 64
    assert so["spec"]["triggers"][0]["metadata"]["threshold"] == "64"
    so = scaled_object(builtin="prod-vllm", backend={"max_num_seqs": None}, **SCALE)
    assert so["spec"]["triggers"][0]["metadata"]["threshold"] == "5"
    assert "default" in so["metadata"]["annotations"]["io.llmdeploy.scale-target"]


def test_bounds_and_timing_come_from_the_profile() -> None:
    so = scaled_object(builtin="prod-vllm", scale={
        "min_replicas": 2, "max_replicas": 8, "scale_out_after_s": 45, "scale_in_idle_s": 600,
        "cooldown_s": 120})
    spec = so["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 8)
    assert spec["cooldownPeriod"] == 600
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleUp"] == {"stabilizationWindowSeconds": 45}
    assert behavior["scaleDown"] == {
        "stabilizationWindowSeconds": 600,
        "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}]}


def test_no_cooldown_means_no_scale_down_policy() -> None:
    so = scaled_object(builtin="prod-vllm", scale={"min_replicas": 1, "max_replicas": 3,
                                                "cooldown_s": 0})
    behavior = so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert "policies" not in behavior["scaleDown"]


@pytest.mark.parametrize("scale", [{"min_replicas": 3, "max_replicas": 3},
                                   {"min_replicas": 1, "max_replicas": 4, "autoscaler": "none"}])
def test_nothing_to_scale_renders_no_autoscaler(scale: dict) -> None:
    assert autoscaling_files(inputs("prod-vllm", scale=scale)) == []
    assert autoscaling_files(inputs("prod-vllm")) == []  # the built-in: 1 replica


def test_scale_to_zero_says_what_the_cold_start_costs() -> None:
    files = autoscaling_files(inputs(
        "edge-podman", weights_bytes=2 * GIB, scale={"min_replicas": 0, "max_replicas": 3},
        kubernetes={"weights_volume": "per-pod"}))
    so = docs(files)["scaledobject.yaml"]
    assert so["spec"]["minReplicaCount"] == 0
    cold = so["metadata"]["annotations"]["io.llmdeploy.cold-start"]
    assert "image pull" in cold and "the weights download (per-pod volume)" in cold
    assert "loading 2.00 GiB of weights (about 10 s at 200 MiB/s" in cold
    text = files[0].content
    assert "Scale to zero" in text and "cannot see new" in text  # the wake-up caveat


@pytest.mark.parametrize(
    ("field", "value", "limit"),
    [("scale_out_after_s", 3601, 3600), ("scale_in_idle_s", 7200, 3600),
     ("cooldown_s", 1801, 1800)],
)
def test_timings_the_hpa_cannot_take_are_refused_naming_the_field(
    field: str, value: int, limit: int
) -> None:
    with pytest.raises(ProfileError, match=rf"scale\.{field} is {value} s; .* at most {limit} s"):
        autoscaling_files(inputs("prod-vllm", scale={"min_replicas": 1, "max_replicas": 2,
                                                     field: value}))


def test_hpa_is_the_fallback_on_cpu() -> None:
    files = docs(autoscaling_files(inputs("prod-vllm", scale={
        "min_replicas": 1, "max_replicas": 4, "autoscaler": "hpa"})))
    hpa = files["hpa.yaml"]
    assert hpa["apiVersion"] == "autoscaling/v2" and hpa["kind"] == "HorizontalPodAutoscaler"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 4)
    assert hpa["spec"]["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]
    assert hpa["spec"]["behavior"]["scaleUp"] == {"stabilizationWindowSeconds": 30}


def test_a_cpu_target_of_the_profile_is_used_by_the_hpa() -> None:
    files = docs(autoscaling_files(inputs("prod-vllm", scale={
        "min_replicas": 1, "max_replicas": 4, "autoscaler": "hpa", "metric": "cpu",
        "target": 55})))
    target = files["hpa.yaml"]["spec"]["metrics"][0]["resource"]["target"]
    assert target["averageUtilization"] == 55


def test_keda_with_metric_cpu_uses_the_cpu_trigger() -> None:
    so = scaled_object(builtin="edge-podman", scale={"min_replicas": 1, "max_replicas": 4,
                                                  "metric": "cpu"})
    assert so["spec"]["triggers"] == [{"type": "cpu", "name": "cpu-utilisation",
                                       "metricType": "Utilization", "metadata": {"value": "70"}}]


def test_ollama_has_no_metrics_so_it_scales_on_cpu_and_says_why() -> None:
    (file,) = autoscaling_files(inputs("local-ollama", **SCALE))
    assert file.path == "hpa.yaml"
    assert "Ollama exports no Prometheus metrics" in file.content


def test_llamacpp_without_metrics_scales_on_cpu_and_says_why() -> None:
    (file,) = autoscaling_files(inputs("edge-podman", backend={"metrics": False}, **SCALE))
    assert file.path == "hpa.yaml"
    assert "backend.metrics: false" in file.content


def test_scale_to_zero_without_a_queue_metric_is_refused() -> None:
    with pytest.raises(ProfileError, match="scale.min_replicas is 0 .* Ollama exports no"):
        autoscaling_files(inputs("local-ollama", scale={"min_replicas": 0, "max_replicas": 2}))
