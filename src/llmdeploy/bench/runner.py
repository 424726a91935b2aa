"""The load engine's conductor: runs each stage, merges what its processes sent, builds
the report.

Before the first stage the API kind is confirmed, the model picked and one pre-flight request
sent (:mod:`llmdeploy.bench.preflight`). Each stage is a :class:`~llmdeploy.bench.schedule.
StagePlan`: work items (request numbers with a planned send time, or none for fixed
concurrency) dealt to ``workers`` processes. One worker runs in this process
(:class:`~llmdeploy.bench.engine.StageEngine`); more run in worker processes
(:mod:`llmdeploy.bench.workers`) that start together at one absolute ``t0``. Their raw
requests are merged into one list, ordered by request number, and every statistic is
computed once over all of them; the client's own figures (CPU, event-loop lag, send lag,
delivered rate) become the stage's self-check (:mod:`llmdeploy.bench.selfcheck`).

Requests are numbered across the whole run for their prompts (unique prompts), or per stage
when the workload repeats prompts. Every stage is bounded by a request count or a duration
(the config always has one) and every request by its timeout.

The runner reports; it does not judge: :func:`llmdeploy.bench.outcome.outcome_error` says
how a finished run ends, after the caller has written the report.
"""

from __future__ import annotations

import asyncio
import gc
import math
import random
import time
from datetime import datetime, timezone

from llmdeploy.bench.config import BenchConfig, LoadSpec
from llmdeploy.bench.engine import (
    ABORT_AFTER_CONNECT_FAILURES,
    Raw,
    RequestSettings,
    StageEngine,
    WorkerResult,
)
from llmdeploy.bench.http import HttpClient
from llmdeploy.bench.loop import environment, run_coroutine
from llmdeploy.bench.metrics import summarize
from llmdeploy.bench.preflight import Probe, discover, preflight
from llmdeploy.bench.progress import Progress, ProgressCallback, StageTicker
from llmdeploy.bench.protocols import endpoint_path
from llmdeploy.bench.records import build_records
from llmdeploy.bench.report import BenchReport, Downgrade, StageResult
from llmdeploy.bench.schedule import StagePlan
from llmdeploy.bench.selfcheck import client_check
from llmdeploy.bench.server_metrics import StageScraper
from llmdeploy.bench.workers import WorkerPool, usable_cores
from llmdeploy.bench.workload import Workload
from llmdeploy.errors import EndpointError, UsageError

_now = time.monotonic
START_MARGIN_S = 0.05  # worker processes get their stage this long before its t0
# the automatic --workers rule (docs/bench.md): streamed events per second one process is
# given (about a third of its ceiling), and streams per process in fixed-concurrency stages
EVENTS_PER_WORKER = 100_000
STREAMS_PER_WORKER = 256

__all__ = ["BenchRunner", "auto_workers", "run_bench"]


def auto_workers(
    load: LoadSpec, output_tokens_mean: float, cores: int, rate: float | None = None
) -> int:
    """The worker processes a stage gets without ``--workers``.

    Rate stages (and trace replay, at the trace's mean ``rate``):
    ``ceil(rate * (output tokens + 1) / EVENTS_PER_WORKER)`` (a request costs about one event
    per streamed token plus its own); fixed concurrency: ``ceil(streams /
    STREAMS_PER_WORKER)``. Never more than ``cores``, never more than the stage's streams."""
    if load.mode != "concurrency":
        per_s = load.value if rate is None else rate
        n = math.ceil(per_s * (output_tokens_mean + 1) / EVENTS_PER_WORKER)
    else:
        n = math.ceil(load.value / STREAMS_PER_WORKER)
    n = max(1, min(n, cores))
    if load.mode == "concurrency":
        n = min(n, int(load.value))
    return n


class BenchRunner:
    def __init__(
        self,
        config: BenchConfig,
        *,
        on_progress: ProgressCallback | None = None,
        progress_interval_s: float = 0.5,
        event_loop: str = "auto",
    ) -> None:
        # a copy: the runner settles the API kind and the prompt nonce, and the report
        # records what was run, without changing the caller's config
        config = config.model_copy(deep=True)
        self.config = config
        self._on_progress = on_progress
        self._progress_interval_s = progress_interval_s
        self._event_loop = event_loop
        t = config.target
        self._client: HttpClient | None = None
        wl = config.workload
        if wl.unique_prompts and wl.prompt_nonce is None:
            # a fresh nonce per run (recorded in the report): no run starts its prompts the
            # way an earlier run did, so none is served from that run's prefix cache
            wl.prompt_nonce = random.SystemRandom().randrange(2**32)
        self._workload = Workload(wl)
        self._path = endpoint_path(t.api, t.endpoint, t.api_prefix)
        self._model = t.model or ""
        self._origin = 0.0
        # what every request sends, settled by the pre-flight
        self._ignore_eos = config.workload.ignore_eos and t.api == "openai"
        self._stream_usage = t.stream and t.stream_usage and t.api == "openai"
        self._extra_body = config.workload.extra_body or None
        self._downgrades: list[Downgrade] = []
        self._prompt_base = 0  # requests sent in earlier stages (unique prompts)
        self._engine: StageEngine | None = None
        self._pool: WorkerPool | None = None
        self._stage_workers = 1

    # setup ---------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        t = self.config.target
        headers = {"Accept": "text/event-stream" if t.stream and t.api == "openai" else "*/*"}
        if t.api_key:
            headers["Authorization"] = f"Bearer {t.api_key}"
        return headers

    def _new_client(self) -> HttpClient:
        t = self.config.target
        try:
            return HttpClient(t.base_url, headers=self._headers())
        except ValueError as exc:
            raise UsageError(str(exc), hint="use e.g. --url http://127.0.0.1:8000/v1") from exc

    async def _prepare(self) -> None:
        """Confirm the API, pick the model, send the pre-flight (EndpointError on failure)."""
        t = self.config.target
        client = self._client
        assert client is not None
        api_before = t.api
        served = await discover(client, t)
        if t.api != api_before:  # a guessed API kind corrected by the model listing
            client.close()
            self._client = client = self._new_client()
            self._path = endpoint_path(t.api, t.endpoint, t.api_prefix)
            self._ignore_eos = self.config.workload.ignore_eos and t.api == "openai"
            self._stream_usage = t.stream and t.stream_usage and t.api == "openai"
        if not self._model:
            if not served:
                raise EndpointError(
                    f"{t.base_url} lists no model ({t.api} API)", hint="pass --model NAME"
                )
            self._model = served[0]
        fields = [
            name
            for name, on in (("stream_options", self._stream_usage),
                             ("ignore_eos", self._ignore_eos))
            if on
        ]
        probe = Probe(client, t, self._model, self._workload.preflight_prompt(),
                      self._extra_body, self.config.stop.timeout_s)
        kept, self._downgrades = await preflight(probe, fields, served)
        self._stream_usage = "stream_options" in kept
        self._ignore_eos = "ignore_eos" in kept

    def _settings(self) -> RequestSettings:
        t = self.config.target
        return RequestSettings(
            base_url=t.base_url,
            headers=self._headers(),
            api=t.api,
            endpoint=t.endpoint,
            path=self._path,
            model=self._model,
            stream=t.stream,
            ignore_eos=self._ignore_eos,
            stream_usage=self._stream_usage,
            extra_body=self._extra_body,
            timeout_s=self.config.stop.timeout_s,
            workload=self.config.workload,
        )

    # running -------------------------------------------------------------------
    async def run(self) -> BenchReport:
        loop = asyncio.get_running_loop()
        cfg = self.config
        t = cfg.target
        self._client = self._new_client()
        scraper: StageScraper | None = None
        try:
            await self._prepare()
            self._engine = StageEngine(self._settings(), self._client, self._workload)
            if cfg.scrape_metrics and t.metrics_path:
                scraper = StageScraper(t.base_url, t.metrics_path, cfg.metrics_interval_s)
            self._origin = _now()
            stages: list[StageResult] = []
            if cfg.sweep is None:
                for i, load in enumerate(cfg.stages):
                    stages.append(await self._stage(load, i, len(cfg.stages), scraper))
            else:
                stages = await self._sweep(scraper)
        finally:
            gc.unfreeze()
            if self._pool is not None:
                self._pool.close()
                self._pool = None
            if self._client is not None:
                self._client.close()
            if scraper is not None:
                scraper.close()
        return BenchReport(
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            config=cfg,
            environment=environment(loop),
            model=self._model,
            stages=stages,
            downgrades=self._downgrades,
        )

    async def _sweep(self, scraper: StageScraper | None) -> list[StageResult]:
        sweep = self.config.sweep
        assert sweep is not None
        total = 2 + sweep.steps
        first = await self._stage(LoadSpec(mode="concurrency", value=1), 0, total, scraper)
        top = await self._stage(
            LoadSpec(mode="concurrency", value=sweep.max_concurrency), 1, total, scraper
        )
        stages = [first, top]
        lo, hi = first.summary.requests_per_s, top.summary.requests_per_s
        if lo <= 0 or hi <= lo:
            return stages
        for k in range(1, sweep.steps + 1):
            rate = lo + (hi - lo) * k / (sweep.steps + 1)
            load = LoadSpec(
                mode="rate",
                value=round(rate, 3),
                arrivals=sweep.arrivals,
                max_concurrency=sweep.max_concurrency * 4,
            )
            stages.append(await self._stage(load, k + 1, total, scraper))
        return stages

    def plan(self, load: LoadSpec) -> StagePlan:
        """The stage plan of ``load`` under this run's stop rules and workers. A ``trace``
        stage is a rate stage on the trace's own offsets (``value`` is the speed factor);
        with ``turns`` > 1 the plan's items are conversations."""
        cfg, stop = self.config, self.config.stop
        out = cfg.workload.output_tokens
        offsets: tuple[float, ...] | None = None
        mean_rate: float | None = None
        if load.mode == "trace":
            offsets = tuple(self._workload.trace_offsets(load.value))
            span = offsets[-1] - offsets[0] if len(offsets) > 1 else 0.0
            mean_rate = len(offsets) / span if span > 0 else float(len(offsets))
        workers = cfg.workers or auto_workers(
            load, out.mean if out else 128, usable_cores(), mean_rate
        )
        if load.mode == "concurrency":
            workers = min(workers, int(load.value))
        return StagePlan(
            mode="concurrency" if load.mode == "concurrency" else "rate",
            workers=workers,
            concurrency=max(1, int(load.value)) if load.mode == "concurrency" else 1,
            rate=load.value if load.mode != "concurrency" else 0.0,
            offsets=offsets,
            turns=cfg.workload.turns,
            arrivals=load.arrivals,
            seed=cfg.workload.seed,
            max_concurrency=load.max_concurrency,
            limit=None if stop.requests is None else stop.requests + stop.warmup_requests,
            warmup=stop.warmup_requests,
            duration_s=stop.duration_s,
        )

    async def _stage(
        self, load: LoadSpec, index: int, count: int | None, scraper: StageScraper | None
    ) -> StageResult:
        plan = self.plan(load)
        server = None
        if scraper is not None:
            await scraper.start()
        if plan.workers > 1:
            if self._pool is None:
                self._pool = WorkerPool(
                    self._settings(), self._event_loop,
                    max(1, math.ceil(ABORT_AFTER_CONNECT_FAILURES / plan.workers)),
                )
            await self._pool.ensure(plan.workers)
        started = _now()
        ticker = StageTicker(
            self._on_progress,
            self._progress_interval_s,
            lambda finished: self._snapshot(load.name, index, count, plan.limit, started,
                                            finished),
        )
        ticker.start()
        # No garbage collection from here until the records are built: a stage keeps every
        # request, so collections would only rescan them (and unpickling the workers'
        # results, millions of objects, ran ~3x slower with the collector on).
        gc_was_enabled = gc.isenabled()
        gc.disable()
        base = self._prompt_base
        try:
            try:
                results = await self._run_plan(plan)
            finally:
                ticker.cancel()
            ended = _now()
            # the results' trip from the worker processes is part of building the report
            transfer_s = max(0.0, ended - max(r.sample.ended_at for r in results))
            ticker.finish()
            if scraper is not None and (scraper.available or scraper.error):
                server = await scraper.stop()
            build_started = _now()
            raws: list[Raw] = []
            for r in results:
                raws.extend(r.raws)
            raws.sort(key=lambda r: r[0])
            if self.config.workload.unique_prompts and raws:
                # later stages get prompts of their own (items dealt to workers may leave
                # gaps)
                self._prompt_base += raws[-1][0] + 1
            records = build_records(raws, self.config.workload.turns)
            del raws
            summary = summarize(records, self.config.slo or None)
        finally:
            # the records live as long as the report: moved out of the collector's reach,
            # so no full collection rescans millions of them now or during a later stage
            # (run() hands them back at the end)
            gc.freeze()
            if gc_was_enabled:
                gc.enable()
        summary.client = client_check(
            [r.sample for r in results],
            [(r.scheduled_s, r.start_s) for r in records
             if not r.warmup and r.scheduled_s is not None],
            load.value if load.mode == "rate" else None,
        )
        summary.client.report_build_s = transfer_s + (_now() - build_started)
        aborted = next((r.aborted for r in results if r.aborted), None)
        return StageResult(
            name=load.name,
            load=load,
            started_s=started - self._origin,
            ended_s=ended - self._origin,
            aborted=aborted,
            records=records,
            summary=summary,
            server=server,
            expected_cached_prompt_tokens=self._workload.expected_cached(
                records, base if self.config.workload.unique_prompts else 0
            ),
        )

    async def _run_plan(self, plan: StagePlan) -> list[WorkerResult]:
        prompt_base = self._prompt_base
        self._stage_workers = plan.workers
        if plan.workers == 1:
            assert self._engine is not None
            return [await self._engine.run(plan, 0, _now(), prompt_base, self._origin)]
        assert self._pool is not None
        return await self._pool.run_stage(
            plan, _now() + START_MARGIN_S, prompt_base, self._origin
        )

    # progress ------------------------------------------------------------------
    def _snapshot(
        self, name: str, index: int, count: int | None, limit: int | None, started: float,
        finished: bool,
    ) -> Progress:
        if self._pool is not None and self._stage_workers > 1:
            done, failed, in_flight = self._pool.progress()
        else:
            assert self._engine is not None
            done, failed, in_flight = (
                self._engine.done, self._engine.failed, self._engine.in_flight
            )
        return Progress(
            stage=name,
            stage_index=index,
            stage_count=count,
            done=done,
            failed=failed,
            in_flight=in_flight,
            total=limit,
            elapsed_s=_now() - started,
            duration_s=self.config.stop.duration_s,
            finished=finished,
        )


def run_bench(
    config: BenchConfig,
    *,
    on_progress: ProgressCallback | None = None,
    event_loop: str = "auto",
) -> BenchReport:
    """Run every stage of ``config`` and return the report (gates are checked by the caller).

    ``event_loop``: ``auto`` (uvloop when installed), ``asyncio`` or ``uvloop``; another
    value is a UsageError, ``uvloop`` without uvloop a BenchError. Worker processes use the
    same kind of loop."""
    runner = BenchRunner(config, on_progress=on_progress, event_loop=event_loop)
    report: BenchReport = run_coroutine(runner.run(), event_loop)
    return report
