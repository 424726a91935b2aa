"""The Prometheus metrics each inference server really exports, and the PromQL built on them.

Checked against the servers themselves (their ``/metrics`` under load), not their docs:

- vLLM 0.32.0 (the version llmdeploy pins): gauges ``vllm:num_requests_running``,
  ``vllm:num_requests_waiting``, ``vllm:kv_cache_usage_perc`` (a fraction, 1 = full; the
  ``vllm:gpu_cache_usage_perc`` of older releases, deprecated by vLLM PR #18354 and removed by
  PR #29330); histograms
  ``vllm:time_to_first_token_seconds``, ``vllm:inter_token_latency_seconds``,
  ``vllm:request_time_per_output_token_seconds``; counters ``vllm:prompt_tokens_total``,
  ``vllm:generation_tokens_total``; the HTTP layer's ``http_requests_total`` with ``status``
  grouped as ``2xx`` / ``4xx`` / ``5xx``.
- llama.cpp's ``llama-server --metrics``: gauges ``llamacpp:requests_processing``,
  ``llamacpp:requests_deferred`` (waiting for a free slot); counters
  ``llamacpp:prompt_tokens_total``, ``llamacpp:prompt_seconds_total``,
  ``llamacpp:tokens_predicted_total``, ``llamacpp:tokens_predicted_seconds_total`` and the
  high-water mark ``llamacpp:n_tokens_max``. It exports no latency histogram, no error count
  and (since upstream PR #13660) no KV-cache usage.
- Ollama: no Prometheus endpoint at all.

Every query selects the deployment's scrape job: the Prometheus Operator names the job of a
ServiceMonitor's targets after the Service (``llmdeploy-<deployment>``), plus the namespace when
the profile sets one.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmdeploy.profiles.schema import LlamaCppBackend, VllmBackend
from llmdeploy.render.inputs import ExportInputs
from llmdeploy.render.kube import names

RATE_WINDOW = "5m"  # rate() and histogram windows of every rendered query


@dataclass(frozen=True)
class ServerMetrics:
    """The metric names one server family exports (None: it exports no such metric)."""

    family: str  # "vllm", "llamacpp"
    running: str
    waiting: str
    prompt_tokens: str
    output_tokens: str
    ttft_histogram: str | None = None
    itl_histogram: str | None = None
    tpot_histogram: str | None = None
    kv_cache_usage: str | None = None  # a fraction, 1 = full
    http_requests: str | None = None  # counter with a grouped status label ("5xx")


VLLM = ServerMetrics(
    family="vllm",
    running="vllm:num_requests_running",
    waiting="vllm:num_requests_waiting",
    prompt_tokens="vllm:prompt_tokens_total",
    output_tokens="vllm:generation_tokens_total",
    ttft_histogram="vllm:time_to_first_token_seconds",
    itl_histogram="vllm:inter_token_latency_seconds",
    tpot_histogram="vllm:request_time_per_output_token_seconds",
    kv_cache_usage="vllm:kv_cache_usage_perc",
    http_requests="http_requests_total",
)

LLAMACPP = ServerMetrics(
    family="llamacpp",
    running="llamacpp:requests_processing",
    waiting="llamacpp:requests_deferred",
    prompt_tokens="llamacpp:prompt_tokens_total",
    output_tokens="llamacpp:tokens_predicted_total",
)
LLAMACPP_PROMPT_SECONDS = "llamacpp:prompt_seconds_total"
LLAMACPP_OUTPUT_SECONDS = "llamacpp:tokens_predicted_seconds_total"
LLAMACPP_LONGEST_SEQUENCE = "llamacpp:n_tokens_max"


def server_metrics(inputs: ExportInputs) -> ServerMetrics | None:
    """The deployment's metric family; None when its server exports no Prometheus metrics
    (Ollama, or llama.cpp with ``backend.metrics: false``)."""
    if inputs.plan.launch.metrics_path is None:
        return None
    backend = inputs.profile.backend
    if isinstance(backend, VllmBackend):
        return VLLM
    if isinstance(backend, LlamaCppBackend):
        return LLAMACPP
    return None


def batch_slots(inputs: ExportInputs) -> int | None:
    """Requests one replica serves at once when the profile says so: llama.cpp's ``parallel``
    slots, vLLM's ``max_num_seqs`` (None: vLLM's own default, which depends on the GPU)."""
    backend = inputs.profile.backend
    if isinstance(backend, LlamaCppBackend):
        return backend.parallel
    if isinstance(backend, VllmBackend):
        return backend.max_num_seqs
    return None


def slot_context_tokens(inputs: ExportInputs) -> int | None:
    """llama.cpp: the context one slot holds (``ctx_size / parallel``); None otherwise."""
    backend = inputs.profile.backend
    if isinstance(backend, LlamaCppBackend) and backend.ctx_size > 0:
        return max(1, backend.ctx_size // backend.parallel)
    return None


def selector(
    inputs: ExportInputs,
    equal: dict[str, str] | None = None,
    regex: dict[str, str] | None = None,
) -> str:
    """``{job="llmdeploy-x",namespace="ns",...}``: the deployment's series only, narrowed by
    ``equal`` (``label="value"``) and ``regex`` (``label=~"pattern"``) matchers."""
    matchers = [f'job="{names.base_name(inputs)}"']
    namespace = names.namespace(inputs)
    if namespace:
        matchers.append(f'namespace="{namespace}"')
    matchers += [f'{key}="{value}"' for key, value in (equal or {}).items()]
    matchers += [f'{key}=~"{value}"' for key, value in (regex or {}).items()]
    return "{" + ",".join(matchers) + "}"


def series(
    metric: str,
    inputs: ExportInputs,
    equal: dict[str, str] | None = None,
    regex: dict[str, str] | None = None,
) -> str:
    return metric + selector(inputs, equal, regex)


def in_flight_query(metrics: ServerMetrics, inputs: ExportInputs) -> str:
    """Requests in flight (running + waiting) summed over every replica: what the autoscaler
    divides by its per-replica target, and the load the queue alert watches."""
    running = series(metrics.running, inputs)
    waiting = series(metrics.waiting, inputs)
    return f"sum({running} + {waiting})"


def rate(
    metric: str,
    inputs: ExportInputs,
    equal: dict[str, str] | None = None,
    regex: dict[str, str] | None = None,
) -> str:
    return f"rate({series(metric, inputs, equal, regex)}[{RATE_WINDOW}])"


def quantile_query(histogram: str, q: float, inputs: ExportInputs) -> str:
    """The q-quantile (0..1) of a histogram over every replica, in the histogram's unit."""
    buckets = rate(f"{histogram}_bucket", inputs)
    return f"histogram_quantile({q:g}, sum by (le) ({buckets}))"


def up_query(inputs: ExportInputs) -> str:
    return series("up", inputs)
