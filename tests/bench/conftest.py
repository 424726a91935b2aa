"""Fixtures for bench tests: mock servers (thread or subprocess) and a CLI runner."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from llmdeploy.bench.mock_server import MockConfig, MockServer, running_mock_server


@pytest.fixture
def mock_server() -> Iterator[Callable[..., MockServer]]:
    """Start in-process (thread) mock servers: ``mock_server(ttft_ms=5, itl_ms=1)``."""
    stack: list[object] = []

    def start(**kwargs: object) -> MockServer:
        cm = running_mock_server(MockConfig(**kwargs))  # type: ignore[arg-type]
        server = cm.__enter__()
        stack.append(cm)
        return server

    yield start
    for cm in reversed(stack):
        cm.__exit__(None, None, None)  # type: ignore[attr-defined]


class MockProcess:
    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llmdeploy", "bench", "mock-server", "--port", "0", *args],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        assert line.startswith("listening "), line
        self.url = line.split()[1]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def mock_process() -> Iterator[Callable[..., MockProcess]]:
    """Mock servers in their own process (real timing, and killable)."""
    procs: list[MockProcess] = []

    def start(*args: str) -> MockProcess:
        p = MockProcess(list(args))
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
