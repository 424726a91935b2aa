"""What the mock server does: timing, model, faults and the server behaviours it recreates
(the fields are described in :mod:`llmdeploy.bench.mock_server`), and its counters."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MockConfig", "Stats"]


@dataclass
class MockConfig:
    ttft_ms: float = 50.0
    itl_ms: float = 10.0
    output_tokens: int = 32  # when the request sets no max_tokens / num_predict
    model: str = "mock-model"
    error_rate: float = 0.0
    disconnect_after: int | None = None
    usage: bool = True
    api_key: str | None = None
    seed: int = 0
    precise_timers: bool = True
    apis: tuple[str, ...] = ("openai", "ollama")
    strict_model: bool = False
    refuse_fields: tuple[str, ...] = ()
    name_refused: bool = True
    fault: str | None = None  # "empty" | "html"
    fail_after: int | None = None
    sse_line_ending: str = "\n"
    prefix_cache: bool = False
    record_requests: bool = False


class Stats:
    """The counters ``/metrics`` reports; ``POST /mock/reset`` starts them again."""

    MAX_SAMPLES = 500_000

    def __init__(self) -> None:
        self.requests_total = 0
        self.prefix_cache_hits = 0  # prompt words served from the mock's "cache"
        self.prefix_cache_queries = 0  # prompt words looked up
        self.requests_processing = 0
        self.tokens_total = 0
        self.errors_total = 0
        self.lateness_s: list[float] = []  # how late each timed chunk left, by the server clock

    def late(self, seconds: float) -> None:
        if len(self.lateness_s) < self.MAX_SAMPLES:
            self.lateness_s.append(seconds)
