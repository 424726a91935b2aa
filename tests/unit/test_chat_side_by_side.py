"""``chat`` with several targets: option pairing, concurrency, fairness, failures, output.

Against the project's mock server (exact injected TTFT and inter-token latency) in this
process, or the real CLI in a child process where the exit status and the printed text
matter.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from rich.console import Console

from llmdeploy.bench.mock_server import MockConfig, MockServer, running_mock_server
from llmdeploy.cli.chat_cmd import ORDER_KEY
from llmdeploy.cli.chat_views import (
    comparison_json,
    layout_for,
    render_comparison,
    single_json,
)
from llmdeploy.cli.commands import build
from llmdeploy.client.chat import ChatUsage, Sampling
from llmdeploy.client.chat_targets import (
    ChatTarget,
    OptionToken,
    TargetRequest,
    chat_base_url,
    pair_options,
)
from llmdeploy.client.compare_chat import Comparison, TargetResult, compare, sending_order
from llmdeploy.errors import EndpointError, UsageError


@pytest.fixture
def mocks() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def start(stack: ExitStack, **config: object) -> MockServer:
    return stack.enter_context(running_mock_server(MockConfig(**config)))  # type: ignore[arg-type]


def target_at(server: MockServer, label: str, key: str | None = None) -> ChatTarget:
    return ChatTarget(label, "url", f"http://127.0.0.1:{server.port}/v1", server.config.model,
                      "--model", "KEY_VAR" if key else None, key)  # fmt: skip


# --- which option belongs to which --url ---------------------------------------------------


def tokens(*pairs: tuple[str, str]) -> list[OptionToken]:
    return [OptionToken(kind, value) for kind, value in pairs]  # type: ignore[arg-type]


def test_a_key_belongs_to_the_url_before_it() -> None:
    paired = pair_options(tokens(("url", "http://127.0.0.1:1234/v1"), ("api_key_env", "LMSTUDIO_KEY"),
                                 ("url", "http://127.0.0.1:8000/v1")))  # fmt: skip
    assert paired.targets == (
        TargetRequest("url", "http://127.0.0.1:1234/v1", "LMSTUDIO_KEY", None),
        TargetRequest("url", "http://127.0.0.1:8000/v1", None, None),
    )
    assert paired.api_key_env is None


def test_options_before_the_first_url_apply_to_every_target_and_order_is_kept() -> None:
    paired = pair_options(tokens(("api_key_env", "ALL"), ("model", "m0"), ("deployment", "a,b"),
                                 ("url", "http://h:1/v1"), ("model", "m1"), ("deployment", "c")))  # fmt: skip
    assert [(t.kind, t.value, t.model) for t in paired.targets] == [
        ("deployment", "a", None), ("deployment", "b", None), ("url", "http://h:1/v1", "m1"),
        ("deployment", "c", None),
    ]  # fmt: skip
    assert (paired.api_key_env, paired.model) == ("ALL", "m0")


def test_two_keys_for_one_url_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"--api-key-env given twice for --url http://h:1/v1"):
        pair_options(tokens(("url", "http://h:1/v1"), ("api_key_env", "A"), ("api_key_env", "B")))


def parsed_order(*args: str) -> list[tuple[str, str]]:
    command = build("chat")
    with command.make_context("chat", list(args)) as ctx:
        return list(ctx.meta[ORDER_KEY])


def test_the_chat_command_records_the_interleaving_click_forgets() -> None:
    order = parsed_order(
        "--url", "http://127.0.0.1:1234/v1", "--api-key-env", "LMSTUDIO_KEY",
        "--system", "--url", "-d", "edge,cpu", "--url=http://127.0.0.1:8000/v1",
        "--model=m", "--max-tokens", "9", "the prompt",
    )  # fmt: skip
    assert order == [
        ("url", "http://127.0.0.1:1234/v1"), ("api_key_env", "LMSTUDIO_KEY"),
        ("deployment", "edge,cpu"), ("url", "http://127.0.0.1:8000/v1"), ("model", "m"),
    ]  # fmt: skip  # "--url" as the --system value is a value, not an option


@pytest.mark.parametrize(
    ("given", "base"),
    [
        ("http://127.0.0.1:11434", "http://127.0.0.1:11434/v1"),  # a server root (Ollama's)
        ("http://127.0.0.1:11434/api", "http://127.0.0.1:11434/v1"),  # Ollama's native API
        ("http://h:8000/v1/", "http://h:8000/v1"),
        ("http://h:8000/v1/chat/completions", "http://h:8000/v1"),
        ("https://gw.example/openai/v1", "https://gw.example/openai/v1"),
    ],
)
def test_urls_become_the_openai_base(given: str, base: str) -> None:
    assert chat_base_url(given) == base


@pytest.mark.parametrize("bad", ["127.0.0.1:8000", "ftp://h/v1", "http://h:99999/v1"])
def test_a_bad_url_names_the_option(bad: str) -> None:
    with pytest.raises(UsageError, match="--url"):
        chat_base_url(bad)


# --- fairness and concurrency ---------------------------------------------------------------


def test_concurrent_requests_overlap_in_time(mocks: ExitStack) -> None:
    servers = [start(mocks, ttft_ms=400, itl_ms=5, model=f"m{i}") for i in range(3)]
    began = time.perf_counter()
    result = compare([target_at(s, f"t{i}") for i, s in enumerate(servers)], "hi",
                     Sampling(max_tokens=4, temperature=0.0))  # fmt: skip
    wall_s = time.perf_counter() - began
    assert [r.ok for r in result.results] == [True, True, True]
    sent = [r.sent_at for r in result.results]
    first = [r.first_token_at for r in result.results]
    assert all(t is not None for t in first)
    # every request left before any first token came back: they were in flight together
    assert max(sent) < min(t for t in first if t is not None)
    assert max(sent) - min(sent) < 0.1
    assert wall_s < 1.0, wall_s  # one after another would take at least 3 x 0.4 s
    assert result.order == ["t0", "t1", "t2"] and not result.sequential


def test_sequential_requests_follow_the_seeded_order(mocks: ExitStack) -> None:
    servers = [start(mocks, ttft_ms=20, itl_ms=1) for _ in range(4)]
    targets = [target_at(s, f"t{i}") for i, s in enumerate(servers)]
    result = compare(targets, "hi", Sampling(max_tokens=2, temperature=0.0), sequential=True,
                     order_seed=7)  # fmt: skip
    expected = [f"t{i}" for i in sending_order(4, 7)]
    assert result.order == expected and expected != sorted(expected)  # shuffled, not as given
    by_position = sorted(result.results, key=lambda r: r.position)
    for before, after in itertools.pairwise(by_position):
        assert after.sent_at >= before.ended_at  # one at a time
    assert sending_order(4, 7) == sending_order(4, 7)


def test_every_target_gets_the_same_messages_and_sampling(mocks: ExitStack) -> None:
    servers = [start(mocks, record_requests=True, model=f"m{i}") for i in range(2)]
    compare([target_at(s, f"t{i}") for i, s in enumerate(servers)], "same question",
            Sampling(max_tokens=5, temperature=0.0, seed=11), system="be brief")  # fmt: skip
    bodies = [json.loads(s.requests[-1][2]) for s in servers]
    for body in bodies:
        body.pop("model")
    assert bodies[0] == bodies[1]
    assert bodies[0]["temperature"] == 0.0 and bodies[0]["max_tokens"] == 5
    assert bodies[0]["seed"] == 11
    assert bodies[0]["messages"] == [{"role": "system", "content": "be brief"},
                                     {"role": "user", "content": "same question"}]  # fmt: skip


def test_a_failing_target_does_not_hide_the_others(mocks: ExitStack) -> None:
    good = start(mocks, ttft_ms=5, itl_ms=1)
    broken = start(mocks, error_rate=1.0)
    keyed = start(mocks, api_key="right")
    result = compare([target_at(good, "good"), target_at(broken, "broken"),
                      target_at(keyed, "keyed", key="wrong")], "hi",
                     Sampling(max_tokens=3, temperature=0.0))  # fmt: skip
    good_r, broken_r, keyed_r = result.results
    assert good_r.ok and good_r.content.strip()
    assert isinstance(broken_r.error, EndpointError) and "HTTP 500" in broken_r.error.message
    assert isinstance(keyed_r.error, EndpointError) and "HTTP 401" in keyed_r.error.message
    assert keyed_r.error.hint and "the key was refused" in keyed_r.error.hint
    assert [r.target.label for r in result.failed] == ["broken", "keyed"]
    unkeyed = compare([target_at(keyed, "keyed")], "hi", Sampling(max_tokens=3)).results[0]
    assert unkeyed.error is not None and unkeyed.error.hint
    assert "--api-key-env VAR" in unkeyed.error.hint  # a key was wanted and none was sent


def test_usage_missing_is_not_reported_never_guessed(mocks: ExitStack) -> None:
    server = start(mocks, usage=False, ttft_ms=5, itl_ms=2)
    result = compare([target_at(server, "a"), target_at(server, "b")], "hi",
                     Sampling(max_tokens=6, temperature=0.0))  # fmt: skip
    first = result.results[0]
    assert first.ok and first.chunks == 6
    assert first.usage.completion_tokens is None and first.decode_tokens_per_s is None
    text = rendered(result, 200)
    assert "not reported" in text
    entry = comparison_json(result)[0]
    assert entry["completion_tokens"] is None and entry["usage_reported"] is False
    assert entry["decode_tokens_per_s"] is None and entry["content_chunks"] == 6


def test_the_decode_rate_is_tokens_after_the_first_over_the_time_after_it() -> None:
    result = made_result("a", "x", sent=10.0, first=10.2, last=11.2, end=11.25, tokens=21)
    assert result.decode_tokens_per_s == pytest.approx(20.0)  # (21 - 1) / (11.2 - 10.2)
    assert result.ttft_ms == pytest.approx(200.0)
    assert result.e2e_ms == pytest.approx(1250.0)
    one = made_result("a", "x", sent=0.0, first=0.1, last=0.1, end=0.1, tokens=1)
    assert one.decode_tokens_per_s is None


# --- what is shown ------------------------------------------------------------------------


def made_result(label: str, content: str, *, sent: float, first: float | None, last: float | None,
                end: float, tokens: int | None, prompt: int | None = 12,
                finish: str | None = "stop", error: EndpointError | None = None) -> TargetResult:  # fmt: skip
    target = ChatTarget(label, "deployment", f"http://127.0.0.1:1/{label}/v1", "tiny", "deployment")
    return TargetResult(target, sent, first, last, end, content, 3,
                        ChatUsage(prompt, tokens, finish), error)  # fmt: skip


def made_comparison(sequential: bool = False) -> Comparison:
    results = (
        made_result("edge", "Paged attention stores the KV cache in pages.", sent=0.0,
                    first=0.095, last=0.495, end=0.5, tokens=21),
        made_result("cloud", "", sent=0.0, first=None, last=None, end=0.03, tokens=None,
                    prompt=None, finish=None,
                    error=EndpointError("http://h/v1/chat/completions answered HTTP 500")),
    )  # fmt: skip
    if sequential:
        results[0].position, results[1].position = 2, 1
    return Comparison("q", None, Sampling(64, 0.0, None), sequential, 5 if sequential else None,
                      results, 0.0, 0.5)  # fmt: skip


def rendered(comparison: Comparison, width: int) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None, record=True)
    console.print(render_comparison(comparison, width))
    return "\n".join(line.rstrip() for line in console.export_text().splitlines())


WIDE = """\
Same prompt to 2 targets, temperature 0, max_tokens 64, seed not set; sent concurrently (all
requests started together).
╭───────────────────┬───────────────────────────────────────┬──────────────────────────────────────╮
│                   │ edge · tiny                           │ cloud · tiny                         │
├───────────────────┼───────────────────────────────────────┼──────────────────────────────────────┤
│ answer            │ Paged attention stores the KV cache   │ error: http://h/v1/chat/completions  │
│                   │ in pages.                             │ answered HTTP 500                    │
├───────────────────┼───────────────────────────────────────┼──────────────────────────────────────┤
│ TTFT              │ 95 ms                                 │ no token                             │
│ tokens/s          │ 50.0                                  │ not reported                         │
│ prompt tokens     │ 12                                    │ not reported                         │
│ completion tokens │ 21                                    │ not reported                         │
│ finish            │ stop                                  │ not reported                         │
│ E2E               │ 0.50 s                                │ 0.03 s                               │
╰───────────────────┴───────────────────────────────────────┴──────────────────────────────────────╯
tokens/s: decode rate = (completion tokens - 1) / (last token - first token); TTFT and E2E from the
request's send time"""

NARROW = """\
Same prompt to 2 targets, temperature 0, max_tokens 64, seed not set;
sent one at a time in shuffled order cloud → edge (order seed 5).

edge · tiny ──────────────────────────────────────────────────────────
Paged attention stores the KV cache in pages.
TTFT 95 ms · tokens/s 50.0 · prompt tokens 12 · completion tokens 21 ·
finish stop · E2E 0.50 s

cloud · tiny ─────────────────────────────────────────────────────────
error: http://h/v1/chat/completions answered HTTP 500
TTFT no token · tokens/s not reported · prompt tokens not reported ·
completion tokens not reported · finish not reported · E2E 0.03 s

tokens/s: decode rate = (completion tokens - 1) / (last token - first
token); TTFT and E2E from the request's send time"""


def test_a_wide_terminal_shows_columns() -> None:
    assert layout_for(100, 2) == "columns"
    assert rendered(made_comparison(), 100) == WIDE


def test_a_narrow_terminal_shows_one_target_after_another() -> None:
    assert layout_for(70, 2) == "stacked"  # (70 - 20) / 2 = 25 characters each: too narrow
    assert layout_for(99, 2) == "stacked" and layout_for(100, 2) == "columns"
    assert rendered(made_comparison(sequential=True), 70) == NARROW


def test_json_is_one_object_per_target_with_the_settings() -> None:
    entries = comparison_json(made_comparison(sequential=True))
    assert [e["target"] for e in entries] == ["edge", "cloud"]
    edge, cloud = entries
    assert edge["ok"] is True and cloud["ok"] is False
    assert cloud["error"]["exit_code"] == 7 and "HTTP 500" in cloud["error"]["message"]
    assert edge["ttft_ms"] == 95.0 and edge["decode_tokens_per_s"] == 50.0
    assert edge["settings"] == {"temperature": 0.0, "max_tokens": 64, "seed": None,
                                "mode": "sequential", "order": ["cloud", "edge"], "order_seed": 5}  # fmt: skip
    assert (edge["position"], cloud["position"]) == (2, 1)
    assert set(edge) == {
        "target", "kind", "url", "model", "model_source", "api_key_env", "ok", "content",
        "prompt_tokens", "completion_tokens", "usage_reported", "finish_reason", "ttft_ms",
        "e2e_ms", "decode_tokens_per_s", "content_chunks", "error", "sent_offset_ms",
        "position", "settings",
    }  # fmt: skip


def test_one_target_keeps_the_json_object_chat_always_printed() -> None:
    data = single_json(made_comparison().results[0])
    assert list(data)[:6] == ["model", "content", "prompt_tokens", "completion_tokens",
                              "ttft_s", "elapsed_s"]  # fmt: skip
    assert data["ttft_s"] == 0.095 and data["elapsed_s"] == 0.5
    assert data["ok"] is True and data["error"] is None
    failed = single_json(made_comparison().results[1])
    assert failed["ok"] is False and failed["error"]["exit_code"] == 7


def test_one_failing_target_with_json_still_prints_its_object(tmp_path: Path) -> None:
    """A script reading `chat --json` gets the object with `ok: false` and the exit code."""
    done = run_cli("--url", "http://127.0.0.1:9/v1", "--model", "m", "--json", "hi",
                   cwd=tmp_path)
    assert done.returncode == 7, done.stderr
    data = json.loads(done.stdout)
    assert data["ok"] is False and "could not reach" in data["error"]["message"]
    assert "is the server running" in data["error"]["hint"]


# --- the real CLI ---------------------------------------------------------------------------


def run_cli(*args: str, env: dict[str, str] | None = None, stdin: str | None = None,
            cwd: Path) -> subprocess.CompletedProcess[str]:  # fmt: skip
    full_env = {**os.environ, **(env or {})}
    full_env.pop("CONTAINER_HOST", None)
    return subprocess.run([sys.executable, "-m", "llmdeploy", "chat", *args], input=stdin,
                          capture_output=True, text=True, env=full_env, cwd=cwd, timeout=60)  # fmt: skip


SECRET = "sk-do-not-print-4f9a1c"


def test_the_cli_pairs_keys_shows_every_answer_and_fails_for_the_failed_one(
    mocks: ExitStack, tmp_path: Path
) -> None:
    keyed = start(mocks, api_key=SECRET, model="keyed-model", ttft_ms=5, itl_ms=1)
    open_ = start(mocks, model="open-model", ttft_ms=5, itl_ms=1)
    keyed_url, open_url = f"http://127.0.0.1:{keyed.port}/v1", f"http://127.0.0.1:{open_.port}"
    env = {"E2E_CHAT_KEY": SECRET, "OTHER_KEY": "sk-wrong-also-secret"}
    done = run_cli("--url", keyed_url, "--api-key-env", "E2E_CHAT_KEY", "--url", open_url,
                   "--max-tokens", "3", "--json", "hi", env=env, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    entries = json.loads(done.stdout)
    assert [(e["model"], e["api_key_env"], e["ok"]) for e in entries] == [
        ("keyed-model", "E2E_CHAT_KEY", True), ("open-model", None, True)]
    assert entries[1]["url"] == open_url + "/v1" and entries[1]["model_source"] == "listed by the server"
    # the key given to the second URL instead: the first is refused, the second still answers
    done = run_cli("--url", keyed_url, "--url", open_url, "--api-key-env", "OTHER_KEY",
                   "--max-tokens", "3", "hi", env=env, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 7, done.stderr
    assert "1 of 2 targets failed" in done.stderr and "HTTP 401" in done.stderr
    assert " tok tok tok" in done.stdout and "open-model" in done.stdout
    assert "Traceback" not in done.stderr
    for text in (done.stdout, done.stderr):
        assert SECRET not in text and "sk-wrong-also-secret" not in text


def test_the_prompt_comes_from_stdin_when_it_is_not_a_terminal(
    mocks: ExitStack, tmp_path: Path
) -> None:
    server = start(mocks, record_requests=True, ttft_ms=5, itl_ms=1)
    url = f"http://127.0.0.1:{server.port}/v1"
    done = run_cli("--url", url, "--max-tokens", "2", "--json", stdin="from a pipe\n",
                   cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["completion_tokens"] == 2
    assert json.loads(server.requests[-1][2])["messages"][-1]["content"] == "from a pipe"
    empty = run_cli("--url", url, stdin="", cwd=tmp_path)
    assert empty.returncode == 2 and "no prompt" in empty.stderr
    blank = run_cli("--url", url, "  ", cwd=tmp_path)  # an empty argument: refused alike
    assert blank.returncode == 2 and "the prompt is empty" in blank.stderr
