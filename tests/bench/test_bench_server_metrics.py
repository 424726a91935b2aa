"""Prometheus parsing and the server-side view (vLLM and llama.cpp families)."""

from __future__ import annotations

import pytest

from llmdeploy.bench.server_metrics import derive, parse_prometheus

VLLM = """
# HELP vllm:num_requests_waiting Number of requests waiting.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} 3.0
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{le="0.1",model_name="m"} 4.0
vllm:time_to_first_token_seconds_sum{model_name="m"} 1.5
vllm:time_to_first_token_seconds_count{model_name="m"} 10.0
# TYPE vllm:generation_tokens counter
vllm:generation_tokens_total{model_name="m"} 640.0
python_gc_objects_collected_total{generation="0"} 1.0
"""


def test_parse_keeps_known_families_sums_labels_and_skips_buckets() -> None:
    values, counters = parse_prometheus(VLLM)
    assert values == {
        "vllm:num_requests_waiting": 3.0,
        "vllm:time_to_first_token_seconds_sum": 1.5,
        "vllm:time_to_first_token_seconds_count": 10.0,
        "vllm:generation_tokens_total": 640.0,
    }
    assert "vllm:generation_tokens_total" in counters
    assert "vllm:num_requests_waiting" not in counters


def test_vllm_derived_server_ttft_from_histogram_deltas() -> None:
    d = derive(
        {"vllm:time_to_first_token_seconds_sum": 2.0,
         "vllm:time_to_first_token_seconds_count": 40.0,
         "vllm:generation_tokens_total": 1280.0},
        {"vllm:num_requests_waiting": 5.0},
    )
    assert d["server_ttft_mean_ms"] == pytest.approx(50.0)
    assert d["peak_queue_depth"] == 5.0 and d["output_tokens"] == 1280.0


def test_llamacpp_derived_throughput() -> None:
    text = (
        "# TYPE llamacpp:tokens_predicted_total counter\n"
        "llamacpp:tokens_predicted_total 100\n"
        "llamacpp:tokens_predicted_seconds_total 2.5\n"
        "llamacpp:requests_processing 2\n"
        "llamacpp:kv_cache_usage_ratio 0.25\n"
    )
    values, counters = parse_prometheus(text)
    assert values["llamacpp:requests_processing"] == 2
    d = derive(
        {k: v for k, v in values.items() if k in counters},
        {k: v for k, v in values.items() if k not in counters},
    )
    assert d["server_output_tokens_per_s"] == pytest.approx(40.0)
    assert d["peak_running"] == 2 and d["peak_kv_cache_usage"] == 0.25
