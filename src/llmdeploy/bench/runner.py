"""The load engine: runs each stage, keeps raw per-request timestamps, builds the report.

One event loop, one process. Before the first stage the API kind is confirmed, the model
picked and one pre-flight request sent (:mod:`llmdeploy.bench.preflight`). Requests are
coroutines over :class:`HttpClient`; fixed concurrency runs N workers back to back; rate modes
dispatch at absolute send times from :func:`arrival_offsets`. The garbage collector is paused
while a stage runs so collections cannot land inside a measured interval. Every loop is
bounded by a request count or a duration (the config always has one) and every request by
its timeout. Requests are numbered across the whole run for their prompts (unique prompts),
or per stage when the workload repeats prompts.

The runner reports; it does not judge: :func:`llmdeploy.bench.outcome.outcome_error` says
how a finished run ends, after the caller has written the report.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from llmdeploy.bench.collector import Collector
from llmdeploy.bench.config import BenchConfig, LoadSpec
from llmdeploy.bench.conversations import TextCollector
from llmdeploy.bench.http import HttpClient, RequestFailure
from llmdeploy.bench.loop import environment, run_coroutine
from llmdeploy.bench.metrics import summarize
from llmdeploy.bench.preflight import Probe, discover, preflight
from llmdeploy.bench.progress import Progress, ProgressCallback, StageTicker
from llmdeploy.bench.protocols import Prompt, build_body, endpoint_path
from llmdeploy.bench.report import (
    BenchReport,
    Downgrade,
    RequestRecord,
    StageResult,
)
from llmdeploy.bench.schedule import arrival_offsets
from llmdeploy.bench.server_metrics import StageScraper
from llmdeploy.bench.workload import Workload
from llmdeploy.errors import EndpointError, UsageError

# Timestamps come from time.monotonic(), never loop.time(): uvloop's clock has 1 ms steps.
_now = time.monotonic
ABORT_AFTER_CONNECT_FAILURES = 50

__all__ = ["BenchRunner", "run_bench"]


# (index, warmup, scheduled, start, end, token_times, prompt_toks, output_toks, source,
#  error, detail, malformed, cached_toks) -- a tuple in the hot path, a RequestRecord after
_Raw = tuple[
    int, bool, float | None, float, float, list[float], int | None, int | None, str,
    str | None, str | None, int, int | None,
]


class BenchRunner:
    def __init__(
        self,
        config: BenchConfig,
        *,
        on_progress: ProgressCallback | None = None,
        progress_interval_s: float = 0.5,
    ) -> None:
        # a copy: the runner settles the API kind and the prompt nonce, and the report
        # records what was run, without changing the caller's config
        config = config.model_copy(deep=True)
        self.config = config
        self._on_progress = on_progress
        self._progress_interval_s = progress_interval_s
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
        # per-stage state
        self._raws: list[_Raw] = []
        self._in_flight = 0
        self._done = 0
        self._failed = 0
        self._connect_streak = 0
        self._stopping: str | None = None
        self._turn_of: dict[int, tuple[int, int]] = {}  # index -> (conversation, turn)

    # setup ---------------------------------------------------------------------
    def _new_client(self) -> HttpClient:
        t = self.config.target
        headers = {"Accept": "text/event-stream" if t.stream and t.api == "openai" else "*/*"}
        if t.api_key:
            headers["Authorization"] = f"Bearer {t.api_key}"
        try:
            return HttpClient(t.base_url, headers=headers)
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

    # running -------------------------------------------------------------------
    async def run(self) -> BenchReport:
        loop = asyncio.get_running_loop()
        cfg = self.config
        t = cfg.target
        self._client = self._new_client()
        scraper: StageScraper | None = None
        try:
            await self._prepare()
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

    async def _stage(
        self, load: LoadSpec, index: int, count: int | None, scraper: StageScraper | None
    ) -> StageResult:
        self._raws = []
        self._in_flight = self._done = self._failed = self._connect_streak = 0
        self._stopping = None
        server = None
        if scraper is not None:
            await scraper.start()
        stop = self.config.stop
        limit = None if stop.requests is None else stop.requests + stop.warmup_requests
        started = _now()
        ticker = StageTicker(
            self._on_progress,
            self._progress_interval_s,
            lambda finished: self._snapshot(load.name, index, count, limit, started, finished),
        )
        ticker.start()
        gc_was_enabled = gc.isenabled()
        gc.disable()
        base = self._prompt_base
        self._turn_of = {}
        try:
            if self.config.workload.turns > 1:
                await self._run_conversations(load, limit)
            elif load.mode == "concurrency":
                await self._run_concurrency(int(load.value), limit)
            else:
                await self._run_rate(load, limit)
        finally:
            if gc_was_enabled:
                gc.enable()
            ticker.cancel()
        ended = _now()
        ticker.finish()
        if (scraper is not None and scraper.available) or (scraper is not None and scraper.error):
            server = await scraper.stop()
        records = [self._record(r) for r in self._raws]
        for rec in records:
            rec.conversation, rec.turn = self._turn_of.get(rec.index, (None, None))
        if self.config.workload.unique_prompts:
            self._prompt_base += len(self._raws)  # later stages get prompts of their own
        self._raws = []
        gc.collect()
        return StageResult(
            name=load.name,
            load=load,
            started_s=started - self._origin,
            ended_s=ended - self._origin,
            aborted=self._stopping,
            records=records,
            summary=summarize(records, self.config.slo or None),
            server=server,
            expected_cached_prompt_tokens=self._workload.expected_cached(
                records, base if self.config.workload.unique_prompts else 0
            ),
        )

    def _record(self, r: _Raw) -> RequestRecord:
        o = self._origin
        return RequestRecord.model_construct(
            index=r[0],
            warmup=r[1],
            scheduled_s=None if r[2] is None else r[2] - o,
            start_s=r[3] - o,
            end_s=r[4] - o,
            token_times_s=[x - o for x in r[5]],
            prompt_tokens=r[6],
            output_tokens=r[7],
            token_source=r[8],
            error=r[9],
            error_detail=r[10],
            malformed_events=r[11],
            cached_tokens=r[12],
        )

    async def _run_concurrency(self, n: int, limit: int | None) -> None:
        warmup = self.config.stop.warmup_requests
        duration = self.config.stop.duration_s
        state: dict[str, Any] = {"next": 0, "deadline": None}

        async def worker() -> None:
            while self._stopping is None:
                i = state["next"]
                if limit is not None and i >= limit:
                    return
                deadline = state["deadline"]
                if deadline is not None and _now() >= deadline:
                    return
                state["next"] = i + 1
                warm = i < warmup
                if not warm and deadline is None and duration is not None:
                    state["deadline"] = _now() + duration
                await self._one(i, warm, None)

        await asyncio.gather(*(worker() for _ in range(max(1, n))))

    async def _run_rate(self, load: LoadSpec, limit: int | None) -> None:
        loop = asyncio.get_running_loop()
        stop = self.config.stop
        warmup = stop.warmup_requests
        cap = load.max_concurrency
        tasks: set[asyncio.Task[str | None]] = set()
        slot = asyncio.Event()
        t0 = _now()
        measured_from: float | None = None
        offsets = self._offsets(load)
        for i, offset in enumerate(offsets):
            if self._stopping is not None or (limit is not None and i >= limit):
                break
            if i == warmup:
                measured_from = offset
            if (
                stop.duration_s is not None
                and measured_from is not None
                and offset - measured_from >= stop.duration_s
            ):
                break
            target = t0 + offset
            delay = target - _now()
            if delay > 0:
                await asyncio.sleep(delay)
            while cap is not None and self._in_flight >= cap and self._stopping is None:
                slot.clear()
                await slot.wait()
            task = loop.create_task(self._one(i, i < warmup, target))
            tasks.add(task)

            def _done(t: asyncio.Task[str | None]) -> None:
                tasks.discard(t)
                slot.set()

            task.add_done_callback(_done)
        if tasks:
            await asyncio.gather(*tasks)

    async def _one(
        self,
        i: int,
        warm: bool,
        scheduled: float | None,
        prompt: Prompt | None = None,
        col: Collector | None = None,
    ) -> str | None:
        """Send request ``i`` (its workload prompt unless ``prompt`` is given, read by
        ``col`` or a fresh Collector) and record it; returns its error cause, if any."""
        cfg = self.config
        t = cfg.target
        client = self._client
        assert client is not None
        if prompt is None:
            prompt = self._workload.get(self._prompt_base + i)
        body = build_body(
            t.api,
            t.endpoint,
            self._model,
            prompt,
            stream=t.stream,
            ignore_eos=self._ignore_eos,
            stream_usage=self._stream_usage,
            extra_body=self._extra_body,
        )
        payload = client.build("POST", self._path, body)
        if col is None:
            col = Collector(t.api, t.stream)
        self._in_flight += 1
        start = _now()
        error: str | None
        detail: str | None
        try:
            await client.send(payload, col, timeout_s=cfg.stop.timeout_s)
            end = col.end_t
            error, detail = col.error, col.error_detail
        except RequestFailure as exc:
            end = _now()
            error, detail = exc.cause, exc.detail
        finally:
            self._in_flight -= 1
        n_out, source = col.token_count()
        self._raws.append(
            (
                i, warm, scheduled, start, end, col.token_times, col.prompt_tokens, n_out,
                source, error, detail, col.malformed, col.cached_tokens,
            )
        )
        self._done += 1
        if error is None:
            self._connect_streak = 0
        else:
            self._failed += 1
            self._connect_streak = self._connect_streak + 1 if error == "connect" else 0
            if self._connect_streak >= ABORT_AFTER_CONNECT_FAILURES:
                self._stopping = (
                    f"server unreachable: {ABORT_AFTER_CONNECT_FAILURES} connection "
                    "failures in a row"
                )
        return error

    # workload hooks (trace replay, conversations) -----------------------------------
    def _offsets(self, load: LoadSpec) -> Iterator[float]:
        """A rate stage's send offsets: the trace's own (``trace``), else the arrival
        schedule."""
        if load.mode == "trace":
            return iter(self._workload.trace_offsets(load.value))
        return arrival_offsets(load.value, load.arrivals, self.config.workload.seed)

    async def _run_conversations(self, load: LoadSpec, limit: int | None) -> None:
        """Multi-turn stage: conversations are the units of work. Fixed concurrency runs N
        conversations at a time back to back; a rate stage starts conversations at the
        schedule's offsets (``max_concurrency`` caps conversations in flight). Conversation
        ``c``'s turn ``t`` is request ``c * turns + t``: it counts against ``--requests``
        and ``--warmup`` like any request, and no turn starts after the limit or the
        duration. Turn ``t + 1`` is sent ``think_time_s`` after turn ``t``'s answer, with
        that answer in its history; a failed turn ends its conversation."""
        wl = self.config.workload
        stop = self.config.stop
        turns, warmup, think = wl.turns, stop.warmup_requests, wl.think_time_s
        api, stream = self.config.target.api, self.config.target.stream
        base = self._prompt_base
        state: dict[str, Any] = {"next": 0, "deadline": None, "span": 0}

        def may_send(i: int) -> bool:
            if self._stopping is not None or (limit is not None and i >= limit):
                return False
            deadline = state["deadline"]
            if deadline is not None and _now() >= deadline:
                return False
            if i >= warmup and deadline is None and stop.duration_s is not None:
                state["deadline"] = _now() + stop.duration_s
            return True

        async def converse(c: int, scheduled: float | None) -> None:
            n = base + c * turns if wl.unique_prompts else c * turns
            conv = self._workload.conversation(n, c)
            state["span"] = max(state["span"], (c + 1) * turns)
            for turn in range(conv.turns):
                i = c * turns + turn
                if turn and think > 0:
                    await asyncio.sleep(think)
                if not may_send(i):
                    return
                col = TextCollector(api, stream)
                self._turn_of[i] = (c, turn)
                error = await self._one(i, i < warmup, scheduled if turn == 0 else None,
                                        conv.prompt(turn), col)
                if error is not None:
                    return
                conv.answer(turn, col.text)

        if load.mode == "concurrency":

            async def worker() -> None:
                while True:
                    c = state["next"]
                    if not may_send(c * turns):
                        return
                    state["next"] = c + 1
                    await converse(c, None)

            await asyncio.gather(*(worker() for _ in range(max(1, int(load.value)))))
        else:
            tasks: set[asyncio.Task[None]] = set()
            slot = asyncio.Event()
            cap = load.max_concurrency
            t0 = _now()
            loop = asyncio.get_running_loop()
            for c, offset in enumerate(self._offsets(load)):
                delay = t0 + offset - _now()
                if delay > 0:
                    await asyncio.sleep(delay)
                while cap is not None and len(tasks) >= cap and self._stopping is None:
                    slot.clear()
                    await slot.wait()
                if not may_send(c * turns):
                    break
                task = loop.create_task(converse(c, t0 + offset))
                tasks.add(task)

                def _done(done: asyncio.Task[None]) -> None:
                    tasks.discard(done)
                    slot.set()

                task.add_done_callback(_done)
            if tasks:
                await asyncio.gather(*tasks)
        if wl.unique_prompts:  # later stages start after every number a conversation held
            self._prompt_base += max(0, state["span"] - len(self._raws))

    # progress ------------------------------------------------------------------
    def _snapshot(
        self, name: str, index: int, count: int | None, limit: int | None, started: float,
        finished: bool,
    ) -> Progress:
        return Progress(
            stage=name,
            stage_index=index,
            stage_count=count,
            done=self._done,
            failed=self._failed,
            in_flight=self._in_flight,
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
    value is a UsageError, ``uvloop`` without uvloop a BenchError."""
    runner = BenchRunner(config, on_progress=on_progress)
    report: BenchReport = run_coroutine(runner.run(), event_loop)
    return report


