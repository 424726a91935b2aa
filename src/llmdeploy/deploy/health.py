"""Wait for a started server to answer its health path, watching the container meanwhile."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from llmdeploy.engines.base import Engine
from llmdeploy.errors import ContainerExitedError, HealthTimeoutError

LOG_TAIL_LINES = 25


@dataclass(frozen=True)
class HealthResult:
    url: str
    elapsed_s: float
    polls: int


def probe(url: str, timeout_s: float = 2.0) -> tuple[bool, str]:
    """One health poll: (healthy, what was seen)."""
    try:
        response = httpx.get(url, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if response.status_code == 200:
        return True, "200 OK"
    body = response.text.strip().replace("\n", " ")[:200]
    return False, f"HTTP {response.status_code} {body}"


def wait_healthy(
    engine: Engine,
    container: str,
    url: str,
    *,
    timeout_s: float,
    interval_s: float,
) -> HealthResult:
    started = time.monotonic()
    deadline = started + timeout_s
    polls = 0
    last_seen = "no answer yet"
    while True:
        info = engine.inspect(container)
        if info is None or info.state in ("exited", "dead", "stopped"):
            code = info.exit_code if info is not None else None
            raise ContainerExitedError(
                f"the server container {container} exited during start"
                + (f" with code {code}" if code is not None else ""),
                container_exit_code=code,
                log_tail=tail_logs(engine, container),
                hint="see the log lines above; `llmdeploy render` shows the exact command line",
            )
        healthy, last_seen = probe(url)
        polls += 1
        if healthy:
            return HealthResult(url=url, elapsed_s=time.monotonic() - started, polls=polls)
        if time.monotonic() >= deadline:
            raise HealthTimeoutError(
                f"the server did not become healthy within {timeout_s:g} s: polled {url} "
                f"{polls} times, last answer: {last_seen}",
                log_tail=tail_logs(engine, container),
                hint="raise health.timeout_s in the profile if the model is large",
            )
        time.sleep(min(interval_s, max(0.0, deadline - time.monotonic())))


def tail_logs(engine: Engine, container: str, lines: int = LOG_TAIL_LINES) -> list[str]:
    try:
        return list(engine.logs(container, tail=lines))[-lines:]
    except Exception:
        return []
