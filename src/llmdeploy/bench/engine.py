"""Sends one process's share of a stage and keeps the raw timestamps: the load engine's core.

The same code runs in the runner's own process (one worker) and in each worker process of
:mod:`llmdeploy.bench.workers`. It takes the work items a :class:`~llmdeploy.bench.schedule.
StagePlan` deals to this worker: fixed concurrency runs this worker's streams back to back;
rate stages send each item at ``t0 + offset`` (absolute times on ``time.monotonic()``,
which is CLOCK_MONOTONIC on Linux and the same clock in every process), with the request
built before the wait so the build never delays the send. The garbage collector is paused
while the stage runs, so collections cannot land inside a measured interval. A
:class:`~llmdeploy.bench.selfcheck.LoopMonitor` measures the process's CPU and event-loop lag
over the stage window.

Requests are kept as tuples (:data:`Raw`) in the hot path; the runner turns the merged
tuples of every worker into report records once, after the stage.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from llmdeploy.bench.collector import Collector
from llmdeploy.bench.config import WorkloadSpec
from llmdeploy.bench.conversations import TextCollector
from llmdeploy.bench.http import HttpClient, RequestFailure
from llmdeploy.bench.protocols import ApiName, EndpointName, Prompt, build_body
from llmdeploy.bench.schedule import StagePlan, WorkItem
from llmdeploy.bench.selfcheck import LoopMonitor, WorkerSample
from llmdeploy.bench.workload import Workload

__all__ = ["ABORT_AFTER_CONNECT_FAILURES", "Raw", "RequestSettings", "StageEngine", "WorkerResult"]

# Timestamps come from time.monotonic(), never loop.time(): uvloop's clock has 1 ms steps.
_now = time.monotonic
ABORT_AFTER_CONNECT_FAILURES = 50
_P = TypeVar("_P")  # what a paced item prepares before its wait (a request body, or nothing)

# (index, warmup, scheduled, start, end, token_times, prompt_toks, output_toks, source,
#  error, detail, malformed, cached_toks): seconds after the run origin
Raw = tuple[
    int, bool, float | None, float, float, list[float], int | None, int | None, str,
    str | None, str | None, int, int | None,
]


async def _sleep_until(target: float) -> None:
    """Wait until ``time.monotonic() >= target``. uvloop's timers have 1 ms steps and may
    fire up to a step early; a request must never leave before its planned time, so an
    early wake-up waits again (at least one step: never a busy loop)."""
    while True:
        delay = target - _now()
        if delay <= 0:
            return
        await asyncio.sleep(max(delay, 0.001))


@dataclass(frozen=True)
class RequestSettings:
    """What every request of the run sends, settled by the pre-flight (plain data, so a
    worker process can be handed it). ``workload`` has its prompt nonce fixed, so every
    process builds the same prompt for the same request number."""

    base_url: str
    headers: dict[str, str]
    api: ApiName
    endpoint: EndpointName
    path: str
    model: str
    stream: bool
    ignore_eos: bool
    stream_usage: bool
    extra_body: dict[str, Any] | None
    timeout_s: float
    workload: WorkloadSpec

    def new_client(self) -> HttpClient:
        return HttpClient(self.base_url, headers=self.headers)


@dataclass
class WorkerResult:
    """One process's share of a stage: raw requests, its self-check figures, an early stop."""

    raws: list[Raw]
    sample: WorkerSample
    aborted: str | None = None


class StageEngine:
    """Runs the items a plan deals to one worker; counters are readable for progress."""

    def __init__(
        self,
        settings: RequestSettings,
        client: HttpClient,
        workload: Workload | None = None,
        *,
        abort_after: int = ABORT_AFTER_CONNECT_FAILURES,
    ) -> None:
        self.settings = settings
        self.client = client
        self.workload = workload or Workload(settings.workload)
        self.abort_after = abort_after
        self._raws: list[Raw] = []
        self.in_flight = self.done = self.failed = 0
        self._connect_streak = 0
        self._cap_waits = 0
        self._origin = 0.0
        self.stopping: str | None = None

    def stop(self, reason: str) -> None:
        """Send nothing more (requests in flight finish)."""
        if self.stopping is None:
            self.stopping = reason

    async def run(
        self, plan: StagePlan, worker: int, t0: float, prompt_base: int = 0,
        origin: float = 0.0,
    ) -> WorkerResult:
        """Send ``worker``'s items of ``plan`` from ``t0`` (a ``time.monotonic()`` time; the
        engine waits for it) and return what came back, times relative to ``origin`` (the
        run's, on the same clock). Request ``i`` of the stage gets prompt ``prompt_base + i``."""
        self._raws = []
        self._origin = origin
        self.in_flight = self.done = self.failed = self._connect_streak = self._cap_waits = 0
        self.stopping = None
        wait = t0 - _now()
        if wait > 0:
            await asyncio.sleep(wait)
        monitor = LoopMonitor()
        gc_was_enabled = gc.isenabled()
        gc.disable()
        monitor.start()
        try:
            items = plan.items(worker)
            if plan.turns > 1:
                await self._run_conversations(items, plan, worker, t0, prompt_base)
            elif plan.mode == "concurrency":
                await self._run_concurrency(items, plan, worker, prompt_base)
            else:
                await self._run_rate(items, plan, worker, t0, prompt_base)
        finally:
            sample = monitor.stop(worker, len(self._raws), self._cap_waits)
            if gc_was_enabled:
                gc.enable()
        raws, self._raws = self._raws, []
        return WorkerResult(raws, sample, self.stopping)

    # load modes -------------------------------------------------------------------
    async def _run_concurrency(
        self, items: Iterator[WorkItem], plan: StagePlan, worker: int, prompt_base: int
    ) -> None:
        warmup, duration = plan.warmup, plan.duration_s
        deadline: list[float] = []  # set when the first measured item starts

        async def stream() -> None:
            while self.stopping is None:
                if deadline and _now() >= deadline[0]:
                    return
                item = next(items, None)
                if item is None:
                    return
                i = item[0]
                warm = i < warmup
                if not warm and not deadline and duration is not None:
                    deadline.append(_now() + duration)
                await self._send(i, warm, None, self._payload(prompt_base + i))

        await asyncio.gather(*(stream() for _ in range(plan.streams(worker))))

    async def _run_rate(
        self, items: Iterator[WorkItem], plan: StagePlan, worker: int, t0: float,
        prompt_base: int,
    ) -> None:
        warmup = plan.warmup
        await self._paced(
            items,
            t0,
            plan.cap(worker),
            lambda tasks: self.in_flight,  # the cap counts requests in flight
            lambda i: self._payload(prompt_base + i),
            lambda i, target, payload: self._send(i, i < warmup, target, payload),
        )

    async def _paced(
        self,
        items: Iterator[WorkItem],
        t0: float,
        cap: int | None,
        busy: Callable[[set[asyncio.Task[Any]]], int],
        prepare: Callable[[int], _P],
        launch: Callable[[int, float, _P], Coroutine[Any, Any, object] | None],
    ) -> None:
        """Start item ``i`` at ``t0 + offset`` (the one paced dispatch of rate stages,
        single- and multi-turn): ``prepare(i)`` runs before the wait (building the request
        never delays its send); once the time has come and ``busy(tasks) < cap``,
        ``launch(i, target, prepared)`` gives the coroutine to run as a task, or None to
        stop sending. A wait for the cap is counted (``cap_waits``, a self-check figure)."""
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[Any]] = set()
        slot = asyncio.Event()

        def done(t: asyncio.Task[Any]) -> None:
            tasks.discard(t)
            slot.set()

        for i, offset in items:
            if self.stopping is not None:
                break
            assert offset is not None
            prepared = prepare(i)
            target = t0 + offset
            await _sleep_until(target)
            if cap is not None and busy(tasks) >= cap:
                self._cap_waits += 1
                while busy(tasks) >= cap and self.stopping is None:
                    slot.clear()
                    await slot.wait()
            coro = launch(i, target, prepared)
            if coro is None:
                break
            task = loop.create_task(coro)
            tasks.add(task)
            task.add_done_callback(done)
        if tasks:
            await asyncio.gather(*tasks)

    async def _run_conversations(
        self, items: Iterator[WorkItem], plan: StagePlan, worker: int, t0: float,
        prompt_base: int,
    ) -> None:
        """Multi-turn stage: each item is a conversation, run whole by this worker. Fixed
        concurrency runs this worker's streams of conversations back to back; a rate stage
        starts conversations at their planned offsets (the worker's share of
        ``max_concurrency`` caps conversations in flight). Conversation ``c``'s turn ``t`` is
        request ``c * turns + t``: it counts against the limit and the warm-up like any
        request, and no turn starts after the limit or the measured duration (from this
        worker's first measured request). Turn ``t + 1`` is sent ``think_time_s`` after turn
        ``t``'s answer, with that answer in its history; a failed turn ends its
        conversation."""
        s = self.settings
        wl = s.workload
        turns, think = plan.turns, wl.think_time_s
        limit, warmup, duration = plan.limit, plan.warmup, plan.duration_s
        deadline: list[float] = []

        def may_send(i: int) -> bool:
            if self.stopping is not None or (limit is not None and i >= limit):
                return False
            if deadline and _now() >= deadline[0]:
                return False
            if i >= warmup and not deadline and duration is not None:
                deadline.append(_now() + duration)
            return True

        async def converse(c: int, scheduled: float | None) -> None:
            n = prompt_base + c * turns if wl.unique_prompts else c * turns
            conv = self.workload.conversation(n, c)
            for turn in range(conv.turns):
                i = c * turns + turn
                if turn and think > 0:
                    await asyncio.sleep(think)
                if not may_send(i):
                    return
                col = TextCollector(s.api, s.stream, self._origin)
                payload = self._payload(n + turn, conv.prompt(turn))
                error = await self._send(
                    i, i < warmup, scheduled if turn == 0 else None, payload, col
                )
                if error is not None:
                    return
                conv.answer(turn, col.text)

        if plan.mode == "concurrency":

            async def stream() -> None:
                while self.stopping is None:
                    item = next(items, None)
                    if item is None or not may_send(item[0] * turns):
                        return
                    await converse(item[0], None)

            await asyncio.gather(*(stream() for _ in range(plan.streams(worker))))
            return
        await self._paced(
            items,
            t0,
            plan.cap(worker),
            len,  # the cap counts conversations in flight
            lambda c: None,
            lambda c, target, _: converse(c, target) if may_send(c * turns) else None,
        )

    # one request ------------------------------------------------------------------
    def _payload(self, n: int, prompt: Prompt | None = None) -> bytes:
        """Request body bytes for prompt number ``n`` of the workload (or ``prompt``)."""
        s = self.settings
        body = build_body(
            s.api,
            s.endpoint,
            s.model,
            self.workload.get(n) if prompt is None else prompt,
            stream=s.stream,
            ignore_eos=s.ignore_eos,
            stream_usage=s.stream_usage,
            extra_body=s.extra_body,
        )
        return self.client.build("POST", s.path, body)

    async def _send(
        self, i: int, warm: bool, scheduled: float | None, payload: bytes,
        col: Collector | None = None,
    ) -> str | None:
        """Send request ``i`` (read by ``col``, else a fresh Collector), keep its raw tuple;
        returns its error cause, if any."""
        s = self.settings
        o = self._origin
        if col is None:
            col = Collector(s.api, s.stream, o)
        self.in_flight += 1
        start = _now()
        error: str | None
        detail: str | None
        try:
            await self.client.send(payload, col, timeout_s=s.timeout_s)
            end = col.end_t
            error, detail = col.error, col.error_detail
        except RequestFailure as exc:
            end = _now()
            error, detail = exc.cause, exc.detail
        finally:
            self.in_flight -= 1
        n_out, source = col.token_count()
        self._raws.append(
            (
                i, warm, None if scheduled is None else scheduled - o, start - o, end - o,
                col.token_times, col.prompt_tokens, n_out,
                source, error, detail, col.malformed, col.cached_tokens,
            )
        )
        self.done += 1
        if error is None:
            self._connect_streak = 0
        else:
            self.failed += 1
            self._connect_streak = self._connect_streak + 1 if error == "connect" else 0
            if self._connect_streak >= self.abort_after:
                self.stop(f"server unreachable: {self.abort_after} connection failures in a row")
        return error

