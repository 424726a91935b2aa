"""The interactive ``chat``: history resent each turn, /reset, /system, Ctrl-C and Ctrl-D.

The session against the mock server in this process (it records every request body), then
the real command on a pseudo-terminal, typed at as a person would.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmdeploy.bench.mock_server import MockConfig, MockServer, running_mock_server
from llmdeploy.client.chat import Sampling
from llmdeploy.client.chat_session import ChatSession, Command, parse_line
from llmdeploy.client.chat_targets import ChatTarget
from support.pty_chat import CTRL_C, CTRL_D, PtySession


@pytest.fixture
def mock() -> Iterator[MockServer]:
    config = MockConfig(ttft_ms=5, itl_ms=1, record_requests=True)
    with running_mock_server(config) as server:
        yield server


def session_at(server: MockServer, system: str | None = None) -> ChatSession:
    target = ChatTarget("mock", "url", f"http://127.0.0.1:{server.port}/v1", "mock-model",
                        "--model")  # fmt: skip
    return ChatSession(target, Sampling(max_tokens=3), system=system)


def sent_messages(server: MockServer) -> list[dict[str, str]]:
    return list(json.loads(server.requests[-1][2])["messages"])


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("  hello  ", Command("ask", "hello")),
        ("", Command("empty")),
        ("/reset", Command("reset")),
        ("/system   be brief ", Command("system", "be brief")),
        ("/system", Command("system", "")),
        ("/EXIT", Command("exit")),
        ("/bye", Command("exit")),
        ("/help", Command("help")),
        ("/frobnicate now", Command("unknown", "/frobnicate")),
        ("//etc/hosts is a file?", Command("ask", "/etc/hosts is a file?")),
    ],
)
def test_lines_typed_at_the_prompt(line: str, command: Command) -> None:
    assert parse_line(line) == command


def test_each_turn_resends_the_history(mock: MockServer) -> None:
    session = session_at(mock, system="be brief")
    first = session.ask("My name is Ada.")
    assert first.ok
    session.ask("What is my name?")
    assert sent_messages(mock) == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": "What is my name?"},
    ]
    session.reset()
    session.ask("Who am I?")
    assert sent_messages(mock) == [{"role": "system", "content": "be brief"},
                                   {"role": "user", "content": "Who am I?"}]  # fmt: skip
    session.set_system("answer in French")
    assert session.turns == []
    session.ask("Hello")
    assert sent_messages(mock)[0] == {"role": "system", "content": "answer in French"}
    session.set_system("")
    session.ask("Hello")
    assert sent_messages(mock) == [{"role": "user", "content": "Hello"}]


def test_a_stopped_answer_leaves_the_history_as_it_was_and_closes_the_stream() -> None:
    config = MockConfig(ttft_ms=5, itl_ms=50, record_requests=True)
    with running_mock_server(config) as server:
        session = session_at(server)
        session.ask("first")
        before = list(session.turns)

        def stop(_: str) -> None:
            raise KeyboardInterrupt  # what Ctrl-C raises while the answer streams

        session.sampling = Sampling(max_tokens=200)
        with pytest.raises(KeyboardInterrupt):
            session.ask("a long one", on_text=stop)
        assert session.turns == before
        # the connection was closed: the server stops streaming (200 x 50 ms otherwise)
        done = threading.Event()
        for _ in range(40):
            if server.stats.requests_processing == 0:
                done.set()
                break
            threading.Event().wait(0.05)
        assert done.is_set(), "the server was still streaming the stopped answer"


def test_a_failed_turn_is_not_kept(mock: MockServer) -> None:
    session = session_at(mock)
    session.target = ChatTarget("gone", "url", "http://127.0.0.1:9/v1", "m", "--model")
    result = session.ask("hello?")
    assert result.error is not None and session.turns == []


# --- the real command on a terminal ---------------------------------------------------------


def chat_on_a_terminal(url: str, tmp_path: Path, *extra: str) -> PtySession:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TERM": "xterm"}
    env.pop("CONTAINER_HOST", None)
    return PtySession([sys.executable, "-m", "llmdeploy", "chat", "--url", url, *extra],
                      env, tmp_path)  # fmt: skip


def test_a_terminal_session_keeps_history_stops_answers_and_exits_cleanly(tmp_path: Path) -> None:
    config = MockConfig(ttft_ms=5, itl_ms=20, record_requests=True, model="mock-model")
    with running_mock_server(config) as server:
        term = chat_on_a_terminal(f"http://127.0.0.1:{server.port}/v1", tmp_path,
                                  "--max-tokens", "40")  # fmt: skip
        try:
            term.expect("Chat with 127.0.0.1:")
            term.expect("model mock-model")
            term.expect(">>> ")
            term.send("My name is Ada.\n")
            term.expect("40 tokens")
            term.expect("tok/s")
            term.expect(">>> ")
            term.send("What is my name?\n")
            term.expect(">>> ")
            assert [m["role"] for m in sent_messages(server)] == ["user", "assistant", "user"]
            term.send("/system be brief\n")
            term.expect("System prompt set: be brief")
            term.send("/help\n")
            term.expect("/reset")
            term.expect(">>> ")
            term.send("/max\n")
            term.expect("Unknown command /max")
            term.expect(">>> ")
            # Ctrl-C during an answer: it stops, the session goes on
            term.send("//long?\n")  # 40 tokens x 20 ms: stopped after the first
            term.expect(" tok")
            term.send(CTRL_C)
            term.expect("Answer stopped")
            term.expect(">>> ")
            term.send("and now?\n")
            term.expect("tokens")
            term.expect(">>> ")
            assert sent_messages(server) == [{"role": "system", "content": "be brief"},
                                             {"role": "user", "content": "and now?"}]  # fmt: skip
            term.send("/reset\n")
            term.expect("Conversation cleared")
            term.expect(">>> ")
            term.send(CTRL_D)
            assert term.wait() == 0
        finally:
            term.close()
    assert "Traceback" not in term.output
    assert "Interrupted" not in term.output


def test_ctrl_c_at_the_prompt_leaves_with_status_0(mock: MockServer, tmp_path: Path) -> None:
    term = chat_on_a_terminal(f"http://127.0.0.1:{mock.port}/v1", tmp_path)
    try:
        term.expect(">>> ")
        time.sleep(0.5)  # a person is slower than this test: let input() start reading
        term.send(CTRL_C)
        assert term.wait() == 0
    finally:
        term.close()
    assert "Traceback" not in term.output


def test_a_terminal_cannot_chat_with_two_targets_at_once(mock: MockServer, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{mock.port}/v1"
    term = chat_on_a_terminal(url, tmp_path, "--url", url)
    try:
        term.expect("an interactive chat talks to one target")
        assert term.wait() == 2
    finally:
        term.close()
