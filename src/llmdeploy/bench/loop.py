"""The event loop a run uses, and what the report records about the client's environment.

One process, one event loop: uvloop when installed (``auto``), else asyncio; ``--loop``
chooses. An unknown choice is a UsageError (exit 2); ``uvloop`` without uvloop a BenchError.
"""

from __future__ import annotations

import asyncio
import os
import platform
import socket
import sys
from collections.abc import Callable, Coroutine
from typing import Any, Literal

from llmdeploy import __version__
from llmdeploy.bench.report import EnvironmentInfo
from llmdeploy.errors import BenchError, UsageError

EventLoopChoice = Literal["auto", "asyncio", "uvloop"]
EVENT_LOOPS: tuple[EventLoopChoice, ...] = ("auto", "asyncio", "uvloop")

__all__ = ["EVENT_LOOPS", "EventLoopChoice", "environment", "run_coroutine"]


def environment(loop: asyncio.AbstractEventLoop) -> EnvironmentInfo:
    """The client side of a run: host, Python, CPUs, llmdeploy version, event loop."""
    return EnvironmentInfo(
        hostname=socket.gethostname(),
        platform=platform.platform(),
        python=sys.version.split()[0],
        cpu_count=os.cpu_count() or 1,
        llmdeploy_version=__version__,
        event_loop=f"{type(loop).__module__}.{type(loop).__name__}",
    )


def _loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if choice not in EVENT_LOOPS:
        raise UsageError(f"--loop must be one of {', '.join(EVENT_LOOPS)} (got {choice!r})")
    if choice in ("auto", "uvloop"):
        try:
            import uvloop

            factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
            return factory
        except ImportError:
            if choice == "uvloop":
                raise BenchError(
                    "uvloop is not installed", hint="pip install uvloop, or --loop asyncio"
                ) from None
    return asyncio.new_event_loop


def run_coroutine(coro: Coroutine[Any, Any, Any], event_loop: str = "auto") -> Any:
    """Run ``coro`` on a fresh loop of the chosen kind (works on Python 3.10 too)."""
    try:
        loop = _loop_factory(event_loop)()
    except BaseException:
        coro.close()  # never awaited: say so quietly, not with a RuntimeWarning
        raise
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(coro)
    finally:
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        finally:
            asyncio.set_event_loop(None)
            loop.close()
