"""Wait for a started server to answer its health path, watching the container meanwhile.

Each poll is a GET over one kept-alive HTTP/1.1 connection (the standard library's
``http.client``; reconnected only when the server closes it or is not listening yet), so a
poll costs a round trip on the loopback, not a new client with its own TLS context.

Polling starts at :data:`FIRST_INTERVAL_S` after the container starts and the gap grows with
the time already waited (:data:`GAP_FRACTION` of it), up to the profile's
``health.interval_s``: a server ready after 0.8 s is seen within about 16 ms of it, one that
needs a minute is polled every ``interval_s``. The container is inspected only when a poll
fails (at most every :data:`INSPECT_EVERY_S`): a server that answers 200 is running, and one
that died is found within that time. ``deploy.lifecycle`` inspects the container once more
after the last poll, so "healthy" still means the container runs and its server answered.
"""

from __future__ import annotations

import http.client
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from llmdeploy.core.run_spec import ContainerInfo
from llmdeploy.engines.base import Engine
from llmdeploy.errors import ContainerExitedError, HealthTimeoutError

if TYPE_CHECKING:
    import ssl

LOG_TAIL_LINES = 25
FIRST_INTERVAL_S = 0.01
GAP_FRACTION = 0.02  # the gap between polls, as a fraction of the time waited so far
INSPECT_EVERY_S = 0.25


@dataclass(frozen=True)
class HealthResult:
    """The first healthy answer: the URL, seconds from the first poll to it (the server's
    load time as ``up`` sees it, to within one gap), polls made, container inspections."""

    url: str
    elapsed_s: float
    polls: int
    inspections: int = 0


class HealthProbe:
    """GET ``url`` over one kept-alive connection; call it for each poll, ``close`` after.

    ``url``: ``http://host:port/path`` (``https`` with the system's CA certificates).
    Calling returns (healthy, what was seen): ``(True, "200 OK")``, or False with
    ``HTTP 503 <body>`` or the connection error (``ConnectionRefusedError: ...``).
    """

    def __init__(self, url: str, timeout_s: float = 2.0) -> None:
        parts = urlsplit(url)
        self.url = url
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._timeout_s = timeout_s
        self._conn: http.client.HTTPConnection | None = None
        self._tls: ssl.SSLContext | None = None

    def __call__(self) -> tuple[bool, str]:
        try:
            conn = self._conn or self._connect()
            conn.request("GET", self._path)
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()  # the next poll reconnects
            text = str(exc)
            return False, f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        if response.will_close:
            self.close()
        if response.status == 200:
            return True, "200 OK"
        shown = body.decode("utf-8", "replace").strip().replace("\n", " ")[:200]
        return False, f"HTTP {response.status} {shown}".rstrip()

    def _connect(self) -> http.client.HTTPConnection:
        if self._https:
            if self._tls is None:
                import ssl

                self._tls = ssl.create_default_context()
            self._conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeout_s, context=self._tls
            )
        else:
            self._conn = http.client.HTTPConnection(
                self._host, self._port, timeout=self._timeout_s
            )
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def probe(url: str, timeout_s: float = 2.0) -> tuple[bool, str]:
    """One health poll of ``url`` on a new connection: (healthy, what was seen)."""
    check = HealthProbe(url, timeout_s)
    try:
        return check()
    finally:
        check.close()


def next_gap(waited_s: float, interval_s: float) -> float:
    """Seconds to the next poll after ``waited_s`` seconds of waiting: ``GAP_FRACTION`` of
    it, at least ``FIRST_INTERVAL_S``, at most the profile's ``interval_s``."""
    return min(interval_s, max(FIRST_INTERVAL_S, GAP_FRACTION * waited_s))


def wait_healthy(
    engine: Engine,
    container: str,
    url: str,
    *,
    timeout_s: float,
    interval_s: float,
) -> HealthResult:
    """Poll ``url`` until it answers 200 (see the module docstring for the schedule).

    Raises ContainerExitedError (exit code, log tail) when the container stops meanwhile,
    HealthTimeoutError (URL, polls, last answer, log tail) after ``timeout_s``.
    """
    started = time.monotonic()
    deadline = started + timeout_s
    polls = inspections = 0
    last_inspect = float("-inf")
    last_seen = "no answer yet"
    check = HealthProbe(url)
    try:
        while True:
            healthy, last_seen = check()
            polls += 1
            now = time.monotonic()
            if healthy:
                return HealthResult(url, now - started, polls, inspections)
            if now - last_inspect >= INSPECT_EVERY_S:
                last_inspect = now
                inspections += 1
                running_container(engine, container)
            if time.monotonic() >= deadline:
                raise HealthTimeoutError(
                    f"the server did not become healthy within {timeout_s:g} s: polled {url} "
                    f"{polls} times, last answer: {last_seen}",
                    log_tail=tail_logs(engine, container),
                    hint="raise health.timeout_s in the profile if the model is large",
                )
            gap = next_gap(time.monotonic() - started, interval_s)
            time.sleep(min(gap, max(0.0, deadline - time.monotonic())))
    finally:
        check.close()


def running_container(engine: Engine, container: str) -> ContainerInfo:
    """``container``'s inspection; ContainerExitedError (with its exit code and log tail)
    when it is gone or has stopped."""
    info = engine.inspect(container)
    if info is None or info.state in ("exited", "dead", "stopped"):
        code = info.exit_code if info is not None else None
        raise ContainerExitedError(
            f"the server container {container} exited during start"
            + (f" with code {code}" if code is not None else ""),
            container_exit_code=code,
            log_tail=tail_logs(engine, container),
            hint="see the log lines above; what ran: `llmdeploy render` (a deployment's "
            "command line) or `llmdeploy route ... --output DIR` (a router's configuration)",
        )
    return info


def tail_logs(engine: Engine, container: str, lines: int = LOG_TAIL_LINES) -> list[str]:
    try:
        return list(engine.logs(container, tail=lines))[-lines:]
    except Exception:
        return []
