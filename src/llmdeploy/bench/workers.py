"""Worker processes: one stage's load split over N processes, one result merged by the runner.

Processes come from the standard library's ``forkserver`` start method where the platform
has it (else ``spawn``): never a fork of the runner itself, which may have threads. The fork
server preloads only this module, so a worker imports the load engine, not the CLI. Workers
start once per run (more when a later stage needs more) and stay for every stage.

Protocol (a ``multiprocessing`` pipe per worker; messages are tuples):

    runner -> worker   ("stage", plan, t0, prompt_base, origin) | ("stop",) | ("exit",)
    worker -> runner   ("ready", pid) | ("progress", done, failed, in_flight)
                       | ("result", WorkerResult) | ("error", message)

Failure path: a worker ignores Ctrl-C (SIGINT) and leaves stopping to the runner, which on
any exit (an error, Ctrl-C) asks every worker to exit, then terminates and finally kills the
ones still alive, and waits for each: no orphan processes. A worker that loses its pipe (the
runner died) stops sending and exits. A worker that dies or fails is a
:class:`~llmdeploy.errors.BenchError` naming the worker, its pid and exit code or message.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from llmdeploy.bench.engine import RequestSettings, StageEngine, WorkerResult
from llmdeploy.bench.loop import run_coroutine
from llmdeploy.bench.schedule import StagePlan
from llmdeploy.errors import BenchError

__all__ = ["PROGRESS_INTERVAL_S", "WorkerPool", "usable_cores", "worker_main"]

PROGRESS_INTERVAL_S = 0.5
READY_TIMEOUT_S = 60.0


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _context() -> Any:
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        return ctx
    return multiprocessing.get_context("spawn")


def _watch(loop: asyncio.AbstractEventLoop, fd: int, callback: Callable[..., None],
           *args: Any) -> None:
    """Call ``callback`` when the pipe ``fd`` is readable. The event loop makes a watched fd
    non-blocking; a pipe message is read and written whole (a worker's result may be many
    megabytes), so the fd is put back in blocking mode: readiness still comes from the
    loop, and a message, once started, is finished."""
    loop.add_reader(fd, callback, *args)
    os.set_blocking(fd, True)


# the worker side ---------------------------------------------------------------------------
def worker_main(
    worker: int, conn: Connection, settings: RequestSettings, event_loop: str, abort_after: int
) -> None:
    """Entry point of worker process ``worker``: serve stages until told to exit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the runner's to handle
    try:
        run_coroutine(_serve(worker, conn, settings, abort_after), event_loop)
    except BaseException as exc:  # report, then exit non-zero
        with contextlib.suppress(OSError, ValueError):
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
        raise


async def _serve(
    worker: int, conn: Connection, settings: RequestSettings, abort_after: int
) -> None:
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
    fd = conn.fileno()

    def readable() -> None:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the runner is gone
            msg = ("exit",)
        if msg[0] == "exit":
            loop.remove_reader(fd)
        inbox.put_nowait(msg)

    _watch(loop, fd, readable)
    client = settings.new_client()
    engine = StageEngine(settings, client, abort_after=abort_after)
    conn.send(("ready", os.getpid()))
    try:
        while True:
            msg = await inbox.get()
            if msg[0] == "exit":
                return
            if msg[0] != "stage":
                continue
            _, plan, t0, prompt_base, origin = msg
            if await _stage(conn, engine, inbox, plan, worker, (t0, prompt_base, origin)):
                return
    finally:
        client.close()


async def _stage(
    conn: Connection,
    engine: StageEngine,
    inbox: asyncio.Queue[tuple[Any, ...]],
    plan: StagePlan,
    worker: int,
    when: tuple[float, int, float],
) -> bool:
    """Run one stage (``when``: t0, prompt base, origin), answering stop and exit messages
    meanwhile; True when told to exit."""
    loop = asyncio.get_running_loop()
    task = loop.create_task(engine.run(plan, worker, *when))
    exiting = False
    progress: asyncio.TimerHandle | None = None

    def tick() -> None:
        nonlocal progress
        with contextlib.suppress(OSError, ValueError):
            conn.send(("progress", engine.done, engine.failed, engine.in_flight))
        progress = loop.call_later(PROGRESS_INTERVAL_S, tick)

    progress = loop.call_later(PROGRESS_INTERVAL_S, tick)
    try:
        while not task.done():
            getter = loop.create_task(inbox.get())
            await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                continue
            msg = getter.result()
            if msg[0] in ("stop", "exit"):
                engine.stop("stopped by the runner")
                if msg[0] == "exit":
                    exiting = True
                    task.cancel()  # the runner is gone or leaving: do not wait for answers
        try:
            result = task.result()
        except asyncio.CancelledError:
            return True
        except Exception:
            conn.send(("error", traceback.format_exc(limit=8)))
            return exiting
        conn.send(("result", result))
        return exiting
    finally:
        if progress is not None:
            progress.cancel()


# the runner side ---------------------------------------------------------------------------
class _Worker:
    def __init__(self, index: int, process: BaseProcess, conn: Connection) -> None:
        self.index = index
        self.process = process
        self.conn = conn
        self.pid: int | None = None
        self.waiter: asyncio.Future[Any] | None = None
        self.progress = (0, 0, 0)
        self.gone = False

    def name(self) -> str:
        pid = self.pid or self.process.pid
        return f"bench worker {self.index} (pid {pid})"


ProgressSink = Callable[[int, int, int], None]  # done, failed, in flight (summed)


class WorkerPool:
    """Up to N worker processes serving stages for one run; always :meth:`close` it."""

    def __init__(self, settings: RequestSettings, event_loop: str, abort_after: int) -> None:
        self._settings = settings
        self._event_loop = event_loop
        self._abort_after = abort_after
        self._workers: list[_Worker] = []
        self._ctx = _context()

    @property
    def size(self) -> int:
        return len(self._workers)

    async def ensure(self, n: int) -> None:
        """At least ``n`` workers started and ready (BenchError naming one that fails)."""
        loop = asyncio.get_running_loop()
        new: list[_Worker] = []
        for index in range(len(self._workers), n):
            parent, child = self._ctx.Pipe(duplex=True)
            process = self._ctx.Process(
                target=worker_main,
                args=(index, child, self._settings, self._event_loop, self._abort_after),
                name=f"llmdeploy-bench-worker-{index}",
                daemon=True,
            )
            process.start()
            child.close()
            w = _Worker(index, process, parent)
            w.waiter = loop.create_future()
            _watch(loop, parent.fileno(), self._readable, w)
            self._workers.append(w)
            new.append(w)
        waiters = [w.waiter for w in new if w.waiter is not None]
        if not waiters:
            return
        done, _ = await asyncio.wait(waiters, timeout=READY_TIMEOUT_S)
        for w in new:  # every outcome is read, the first failure raised
            assert w.waiter is not None
            if w.waiter not in done:
                w.waiter.cancel()
                raise BenchError(f"{w.name()} did not start within {READY_TIMEOUT_S:.0f} s")
        errors = [w.waiter.exception() for w in new if w.waiter is not None]
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first
        for w in new:
            assert w.waiter is not None
            w.pid = w.waiter.result()
            w.waiter = None

    def _readable(self, w: _Worker) -> None:
        try:
            msg = w.conn.recv()
        except (EOFError, OSError):
            self._lost(w)
            return
        kind = msg[0]
        if kind == "progress":
            w.progress = msg[1:]
        elif kind in ("ready", "result"):
            if w.waiter is not None and not w.waiter.done():
                w.waiter.set_result(msg[1])
        elif kind == "error" and w.waiter is not None and not w.waiter.done():
            w.waiter.set_exception(BenchError(f"{w.name()} failed: {msg[1]}"))

    def _lost(self, w: _Worker) -> None:
        asyncio.get_running_loop().remove_reader(w.conn.fileno())
        w.gone = True
        w.process.join(1.0)
        code = w.process.exitcode
        why = "is still running" if code is None else (
            f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        )
        if w.waiter is not None and not w.waiter.done():
            w.waiter.set_exception(BenchError(f"{w.name()} {why} before it answered"))

    async def run_stage(
        self, plan: StagePlan, t0: float, prompt_base: int, origin: float
    ) -> list[WorkerResult]:
        """Every worker's share of ``plan``, started at ``t0``; results in worker order.
        BenchError naming the first worker that failed (the others are told to stop)."""
        loop = asyncio.get_running_loop()
        active = self._workers[: plan.workers]
        for w in active:
            if w.gone:
                raise BenchError(f"{w.name()} is no longer running")
            w.progress = (0, 0, 0)
            w.waiter = loop.create_future()
            w.conn.send(("stage", plan, t0, prompt_base, origin))
        waiters = [w.waiter for w in active if w.waiter is not None]
        try:
            results: list[WorkerResult] = list(await asyncio.gather(*waiters))
        except BaseException:
            self.stop_stage()
            raise
        finally:
            for w in active:
                w.waiter = None
        return results

    def progress(self) -> tuple[int, int, int]:
        """(done, failed, in flight) over every worker, from their latest reports."""
        done = failed = in_flight = 0
        for w in self._workers:
            d, f, i = w.progress
            done, failed, in_flight = done + d, failed + f, in_flight + i
        return done, failed, in_flight

    def stop_stage(self) -> None:
        for w in self._workers:
            if not w.gone:
                with contextlib.suppress(OSError, ValueError):
                    w.conn.send(("stop",))

    def close(self, timeout_s: float = 3.0) -> None:
        """Ask every worker to exit, then terminate and kill stragglers; waits for each."""
        with contextlib.suppress(RuntimeError):
            loop = asyncio.get_running_loop()
            for w in self._workers:
                if not w.gone:
                    loop.remove_reader(w.conn.fileno())
        for w in self._workers:
            with contextlib.suppress(OSError, ValueError):
                w.conn.send(("exit",))
        deadline = time.monotonic() + timeout_s
        for w in self._workers:
            w.process.join(max(0.0, deadline - time.monotonic()))
        for w in self._workers:
            if w.process.is_alive():
                w.process.terminate()
                w.process.join(1.0)
            if w.process.is_alive():
                w.process.kill()
                w.process.join(1.0)
            w.conn.close()
        self._workers = []
