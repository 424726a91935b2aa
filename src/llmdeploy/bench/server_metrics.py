"""The server's own view: Prometheus ``/metrics`` scraped before, during and after a stage.

Only families with a known prefix are kept (``vllm:``, ``llamacpp:``, and ``mock:`` from the
bench mock server); samples are summed over label sets per metric name. Counters (``_total``,
histogram ``_sum`` / ``_count``) are reported as deltas over the stage, gauges as their peak
while it ran. A few headline numbers are derived per server family (see :func:`derive`).
"""

from __future__ import annotations

import asyncio
import contextlib

from llmdeploy.bench.http import HttpClient, RequestFailure, fetch
from llmdeploy.bench.report import ServerView

DEFAULT_PREFIXES = ("vllm:", "llamacpp:", "mock:")

__all__ = ["DEFAULT_PREFIXES", "StageScraper", "derive", "parse_prometheus"]


def parse_prometheus(
    text: str, prefixes: tuple[str, ...] = DEFAULT_PREFIXES
) -> tuple[dict[str, float], set[str]]:
    """Parse exposition text -> ({metric name: value summed over labels}, counter names)."""
    values: dict[str, float] = {}
    counters: set[str] = set()
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split()
            if len(parts) >= 4 and parts[1] == "TYPE" and parts[2].startswith(prefixes):
                if parts[3] in ("counter",):
                    counters.add(parts[2])
                    counters.add(parts[2] + "_total")
                elif parts[3] in ("histogram", "summary"):
                    counters.add(parts[2] + "_sum")
                    counters.add(parts[2] + "_count")
            continue
        if not line.startswith(prefixes):
            continue
        brace = line.find("{")
        space = line.find(" ")
        if brace != -1 and (space == -1 or brace < space):
            close = line.rfind("}")
            if close == -1:
                continue
            name = line[:brace]
            rest = line[close + 1 :].split()
        else:
            name = line[:space] if space != -1 else line
            rest = line[space + 1 :].split() if space != -1 else []
        if not rest or name.endswith("_bucket"):
            continue
        try:
            value = float(rest[0])
        except ValueError:
            continue
        if value != value:  # NaN
            continue
        values[name] = values.get(name, 0.0) + value
        if name.endswith(("_total", "_sum", "_count")):
            counters.add(name)
    return values, counters


def _ratio(num: float | None, den: float | None, scale: float = 1.0) -> float | None:
    if num is None or den is None or den <= 0:
        return None
    return num / den * scale


def _prefix_cache(d: dict[str, float | None], delta: dict[str, float], family: str) -> None:
    """Prefix-cache hits over the stage from ``<family>:prefix_cache_{hits,queries}_total``
    (counted in prompt tokens; vLLM before 0.10 named them ``gpu_prefix_cache_*``)."""
    for stem in ("prefix_cache", "gpu_prefix_cache"):
        hits = delta.get(f"{family}:{stem}_hits_total")
        queries = delta.get(f"{family}:{stem}_queries_total")
        if hits is not None and queries:  # no lookups in this stage: nothing to report
            d["prefix_cache_hit_tokens"] = hits
            d["prefix_cache_hit_rate"] = _ratio(hits, queries)
            return


def derive(delta: dict[str, float], peak: dict[str, float]) -> dict[str, float]:
    """Headline server-side numbers from counter deltas and gauge peaks."""
    d: dict[str, float | None] = {}
    if any(k.startswith("vllm:") for k in (*delta, *peak)):

        def hist_mean_ms(base: str) -> float | None:
            return _ratio(delta.get(f"{base}_sum"), delta.get(f"{base}_count"), 1000.0)

        d["server_ttft_mean_ms"] = hist_mean_ms("vllm:time_to_first_token_seconds")
        d["server_tpot_mean_ms"] = hist_mean_ms(
            "vllm:time_per_output_token_seconds"
        ) or hist_mean_ms("vllm:inter_token_latency_seconds")
        d["server_e2e_mean_ms"] = hist_mean_ms("vllm:e2e_request_latency_seconds")
        d["server_queue_time_mean_ms"] = hist_mean_ms("vllm:request_queue_time_seconds")
        d["peak_queue_depth"] = peak.get("vllm:num_requests_waiting")
        d["peak_running"] = peak.get("vllm:num_requests_running")
        kv = peak.get("vllm:kv_cache_usage_perc", peak.get("vllm:gpu_cache_usage_perc"))
        d["peak_kv_cache_usage"] = kv
        d["prompt_tokens"] = delta.get("vllm:prompt_tokens_total")
        d["output_tokens"] = delta.get("vllm:generation_tokens_total")
        _prefix_cache(d, delta, "vllm")
    if any(k.startswith("llamacpp:") for k in (*delta, *peak)):
        d["prompt_tokens"] = delta.get("llamacpp:prompt_tokens_total")
        d["output_tokens"] = delta.get("llamacpp:tokens_predicted_total")
        d["server_prompt_tokens_per_s"] = _ratio(
            delta.get("llamacpp:prompt_tokens_total"), delta.get("llamacpp:prompt_seconds_total")
        )
        d["server_output_tokens_per_s"] = _ratio(
            delta.get("llamacpp:tokens_predicted_total"),
            delta.get("llamacpp:tokens_predicted_seconds_total"),
        )
        d["peak_queue_depth"] = peak.get("llamacpp:requests_deferred")
        d["peak_running"] = peak.get("llamacpp:requests_processing")
        # only llama.cpp servers from before PR #13660 export it; current ones have no KV gauge
        d["peak_kv_cache_usage"] = peak.get("llamacpp:kv_cache_usage_ratio")
    if any(k.startswith("mock:") for k in (*delta, *peak)):
        d["output_tokens"] = delta.get("mock:tokens_predicted_total")
        d["peak_running"] = peak.get("mock:requests_processing")
        _prefix_cache(d, delta, "mock")
    return {k: v for k, v in d.items() if v is not None}


class StageScraper:
    """Scrapes one metrics URL before a stage, every ``interval_s`` while it runs, and after."""

    def __init__(self, base_url: str, path: str, interval_s: float = 2.0) -> None:
        self.url = base_url.rstrip("/") + path
        self._path = path
        self._client = HttpClient(base_url)
        self._interval_s = interval_s
        self._before: dict[str, float] | None = None
        self._counters: set[str] = set()
        self._peak: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self.error: str | None = None
        self.available = True

    async def _scrape(self) -> dict[str, float] | None:
        try:
            status, body = await fetch(self._client, "GET", self._path, timeout_s=5.0)
        except RequestFailure as exc:
            self.error = f"{exc.cause}: {exc.detail}"
            return None
        if status != 200:
            self.error = f"HTTP {status}"
            return None
        values, counters = parse_prometheus(body.decode("utf-8", "replace"))
        self._counters |= counters
        for name, v in values.items():
            if name not in self._counters and v > self._peak.get(name, float("-inf")):
                self._peak[name] = v
        return values

    async def start(self) -> None:
        self._peak = {}
        self.error = None
        self._before = await self._scrape()
        if self._before is None or not self._before:
            if self._before is not None:
                self.error = "no vllm:/llamacpp: metrics in the response"
            self.available = False
            return
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self._scrape()

    async def stop(self) -> ServerView | None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if not self.available or self._before is None:
            return ServerView(url=self.url, error=self.error) if self.error else None
        after = await self._scrape() or {}
        before = self._before
        delta = {k: after[k] - before.get(k, 0.0) for k in after if k in self._counters}
        peak = {k: v for k, v in self._peak.items() if k not in self._counters}
        families = sorted({k.split(":", 1)[0] for k in after})
        return ServerView(
            url=self.url,
            families=families,
            before=before,
            after=after,
            delta=delta,
            peak=peak,
            derived=derive(delta, peak),
            error=self.error,
        )

    def close(self) -> None:
        self._client.close()
