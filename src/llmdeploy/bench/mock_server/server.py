"""The mock server: listener, deferred parse pass, toy prefix cache, ``/metrics`` text, and
helpers that run it in a background thread (tests) or until interrupted (the CLI)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator

from llmdeploy.bench.mock_server.config import MockConfig, Stats
from llmdeploy.bench.mock_server.handler import Conn
from llmdeploy.bench.mock_server.wire import SO_TIMESTAMPNS, Wire

__all__ = ["MockServer", "new_loop", "running_mock_server", "serve"]


class MockServer:
    """The mock server; ``start()``/``stop()`` on a running loop, or use a helper below."""

    def __init__(self, config: MockConfig | None = None) -> None:
        self.config = config or MockConfig()
        self.stats = Stats()
        self.rng = random.Random(self.config.seed)
        self._listener: socket.socket | None = None
        self._wires: set[Wire] = set()
        self.port = 0
        self._to_parse: list[Conn] = []
        self.clock = time.monotonic  # replaced by the running loop's clock in start()
        self.requests: list[tuple[str, str, bytes]] = []  # with record_requests
        self._prompts: list[list[str]] = []  # recent prompts, for prefix_cache

    def cached_prefix(self, words: list[str]) -> int:
        """Words at the start of ``words`` shared with the most similar of the last 64
        prompts (a toy prefix cache, counted in words ~ tokens)."""
        best = 0
        for old in self._prompts:
            k = 0
            for a, b in zip(old, words, strict=False):
                if a != b:
                    break
                k += 1
            best = max(best, k)
        self._prompts.append(words)
        del self._prompts[:-64]
        self.stats.prefix_cache_hits += best
        self.stats.prefix_cache_queries += len(words)
        return best

    def defer_parse(self, conn: Conn) -> None:
        """Parse ``conn``'s buffered request once this loop iteration's reads are done."""
        if not self._to_parse:
            asyncio.get_running_loop().call_soon(self._parse_pass)
        self._to_parse.append(conn)

    def _parse_pass(self) -> None:
        conns, self._to_parse = self._to_parse, []
        for conn in conns:
            conn.parse_queued()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        loop = asyncio.get_running_loop()
        self.clock = loop.time  # the clock the chunk timers run on
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        lsock = socket.socket(family, socket.SOCK_STREAM)
        try:
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            lsock.bind((host, port))
            lsock.listen(1024)
            lsock.setblocking(False)
        except OSError:
            lsock.close()
            raise
        self._listener = lsock
        loop.add_reader(lsock.fileno(), self._accept)
        self.port = int(lsock.getsockname()[1])
        return self.port

    def _accept(self) -> None:
        assert self._listener is not None
        for _ in range(128):
            try:
                sock, _addr = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. out of file descriptors: try again on the next wake-up
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if SO_TIMESTAMPNS is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            self._wires.add(Wire(self, sock))

    async def stop(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._listener.fileno())
            self._listener.close()
            self._listener = None
        for wire in list(self._wires):
            wire.abort()
        await asyncio.sleep(0)  # let the connection_lost callbacks run

    def metrics_text(self) -> bytes:
        s = self.stats
        late = sorted(s.lateness_s)

        def q(p: float) -> float:
            return late[min(len(late) - 1, int(p * len(late)))] if late else 0.0

        return (
            "# TYPE mock:timer_lateness_p50_seconds gauge\n"
            f"mock:timer_lateness_p50_seconds {q(0.5):.9f}\n"
            "# TYPE mock:timer_lateness_p99_seconds gauge\n"
            f"mock:timer_lateness_p99_seconds {q(0.99):.9f}\n"
            "# TYPE mock:timer_lateness_max_seconds gauge\n"
            f"mock:timer_lateness_max_seconds {late[-1] if late else 0.0:.9f}\n"
            "# TYPE mock:requests_total counter\n"
            f"mock:requests_total {s.requests_total}\n"
            "# TYPE mock:errors_total counter\n"
            f"mock:errors_total {s.errors_total}\n"
            "# TYPE mock:tokens_predicted_total counter\n"
            f"mock:tokens_predicted_total {s.tokens_total}\n"
            "# TYPE mock:prefix_cache_hits_total counter\n"
            f"mock:prefix_cache_hits_total {s.prefix_cache_hits}\n"
            "# TYPE mock:prefix_cache_queries_total counter\n"
            f"mock:prefix_cache_queries_total {s.prefix_cache_queries}\n"
            "# TYPE mock:requests_processing gauge\n"
            f"mock:requests_processing {s.requests_processing}\n"
        ).encode()


def new_loop(precise_timers: bool) -> asyncio.AbstractEventLoop:
    if precise_timers:
        return asyncio.SelectorEventLoop(selectors.SelectSelector())
    return asyncio.new_event_loop()


@contextlib.contextmanager
def running_mock_server(config: MockConfig | None = None) -> Iterator[MockServer]:
    """Run a mock server on 127.0.0.1 in a background thread (for tests)."""
    server = MockServer(config)
    loop = new_loop(server.config.precise_timers)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(server.stop())
        loop.close()

    thread = threading.Thread(target=run, name="mock-server", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("mock server did not start")
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def serve(
    config: MockConfig,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until interrupted; ``on_ready(url)`` once it accepts connections (``port`` 0:
    a free port, which the URL names)."""
    server = MockServer(config)
    loop = new_loop(config.precise_timers)
    asyncio.set_event_loop(loop)
    try:
        actual = loop.run_until_complete(server.start(host, port))
        if on_ready is not None:
            on_ready(f"http://{host}:{actual}")
        loop.run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        loop.run_until_complete(server.stop())
        loop.close()
