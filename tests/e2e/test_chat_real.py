"""``chat`` for real: one prompt to the tiny llama.cpp deployment (Podman), the CPU vLLM
deployment (Podman, the image and converted model ``test_vllm_cpu_real.py`` builds) and a URL
that wants a key (the project's mock server in its own process), side by side; then the
interactive chat on a pseudo-terminal against the llama.cpp deployment.

Run with ``-s`` to see the side-by-side output of the two local backends and the session.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e_helpers import Cli, cli_in, engine_ready, free_port, leftovers, unavailable, write_profile

from support.pty_chat import CTRL_C, CTRL_D, PtySession

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.podman]

ENGINE = "podman"
PROMPT = "Explain paged attention in one sentence."
MOCK_KEY = "sk-e2e-never-printed-7d1e"


@dataclass
class Backends:
    cli: Cli
    llama: str  # deployment names
    vllm: str
    mock_url: str
    folder: Path


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    reason = engine_ready(ENGINE)
    if reason:
        unavailable(reason)
    for module in ("torch", "transformers", "accelerate", "gguf", "safetensors"):
        if importlib.util.find_spec(module) is None:
            unavailable(f"{module} is needed to convert the GGUF for vLLM "
                        "(scripts/setup-python.sh --dev)")  # fmt: skip
    folder = tmp_path_factory.mktemp("chat-e2e")
    cli = cli_in(folder)
    suffix = uuid.uuid4().hex[:6]
    llama, vllm = f"e2e-chat-llama-{suffix}", f"e2e-chat-vllm-{suffix}"
    llama_file = write_profile(folder, ENGINE, llama, free_port())
    vllm_file = folder / f"{vllm}.yaml"
    vllm_file.write_text(
        f"name: {vllm}\nextends: cpu-vllm\nengine: {ENGINE}\nserver: {{port: {free_port()}}}\n"
    )
    mock = subprocess.Popen(
        [sys.executable, "-m", "llmdeploy", "bench", "mock-server", "--port", "0",
         "--api-key", MOCK_KEY, "--model", "mock-model", "--ttft-ms", "30", "--itl-ms", "5"],
        stdout=subprocess.PIPE, text=True, env=cli.env,
    )  # fmt: skip
    started: list[str] = []
    try:
        assert mock.stdout is not None
        line = mock.stdout.readline().strip()
        assert line.startswith("listening "), line
        for name, profile in ((llama, llama_file), (vllm, vllm_file)):
            began = time.monotonic()
            up = cli("up", "--profile-file", str(profile), "--json", timeout=2400)
            started.append(name)
            assert up.returncode == 0, up.stderr[-3000:]
            print(f"\n[chat e2e] {name} up in {time.monotonic() - began:.1f} s")
        yield Backends(cli, llama, vllm, line.split()[1] + "/v1", folder)
    finally:
        mock.kill()
        mock.wait(10)
        for name in started:
            down = cli("down", name, timeout=300)
            assert down.returncode == 0, down.stderr
            assert leftovers(ENGINE, name) == []


def test_one_prompt_to_two_deployments_and_a_keyed_url(backends: Backends) -> None:
    cli = backends.cli
    env = {**cli.env, "E2E_MOCK_KEY": MOCK_KEY}
    keyed = Cli(env=env, cwd=backends.folder)
    done = keyed("chat", "-d", f"{backends.llama},{backends.vllm}", "--url", backends.mock_url,
                 "--api-key-env", "E2E_MOCK_KEY", "--max-tokens", "32", "--json", PROMPT,
                 timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert MOCK_KEY not in done.stdout + done.stderr
    entries = json.loads(done.stdout)
    assert [e["target"] for e in entries][:2] == [backends.llama, backends.vllm]
    for entry in entries:
        assert entry["ok"] and entry["content"].strip(), entry
        assert entry["settings"]["temperature"] == 0.0 and entry["settings"]["max_tokens"] == 32
        assert entry["settings"]["mode"] == "concurrent"
        assert entry["usage_reported"] and 0 < entry["completion_tokens"] <= 32, entry
        assert entry["ttft_ms"] > 0 and entry["decode_tokens_per_s"] > 0, entry
    for entry in entries[:2]:  # the real servers say why they stopped
        assert entry["finish_reason"] in ("stop", "length"), entry
        assert entry["prompt_tokens"] > 5, entry
    assert entries[2]["api_key_env"] == "E2E_MOCK_KEY" and entries[2]["model"] == "mock-model"
    offsets = [e["sent_offset_ms"] for e in entries]
    assert max(offsets) - min(offsets) < 250, offsets  # started together
    print("\n[chat e2e] --json figures:")
    for entry in entries:
        print(f"  {entry['target']}: TTFT {entry['ttft_ms']:.0f} ms, "
              f"{entry['decode_tokens_per_s']:.1f} tok/s, prompt {entry['prompt_tokens']}, "
              f"completion {entry['completion_tokens']}, finish {entry['finish_reason']}")  # fmt: skip


def test_the_two_local_backends_side_by_side(backends: Backends) -> None:
    # one at a time: both servers share this host's CPU, so concurrent speed figures would
    # measure the contention (the --json test above sends them together)
    done = backends.cli("chat", "-d", backends.llama, "-d", backends.vllm, "--max-tokens", "48",
                        "--sequential", PROMPT, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    print("\n[chat e2e] side by side, llama.cpp (Podman) and vLLM CPU (Podman):\n" + done.stdout)
    assert "sent one at a time in shuffled order" in done.stdout
    assert "temperature 0" in done.stdout
    assert f"{backends.llama} · " in done.stdout and f"{backends.vllm} · " in done.stdout
    assert "TTFT" in done.stdout and "tokens/s" in done.stdout
    # a target that does not answer: the others' answers are still shown, exit 7
    dead = f"http://127.0.0.1:{free_port()}/v1"
    failed = backends.cli("chat", "-d", backends.llama, "--url", dead, "--max-tokens", "8",
                          "--sequential", "--seed", "3", "Hi", timeout=300)  # fmt: skip
    assert failed.returncode == 7, failed.stderr
    assert "1 of 2 targets failed" in failed.stderr and "Traceback" not in failed.stderr
    assert "shuffled order" in failed.stdout and "(order seed 3)" in failed.stdout
    assert backends.llama in failed.stdout and "could not reach" in failed.stdout


PIRATE = ("You are a pirate captain who has sailed the seven seas for forty years. You answer "
          "every question like a pirate would, with nautical words, and you never break "
          "character, whatever the question is about.")
STATS = re.compile(r"(\d+) tokens · TTFT .*? · prompt (\d+)")


def turn(term: PtySession, text: str) -> tuple[str, int, int]:
    """Ask ``text``; (the answer as shown, completion tokens, prompt tokens)."""
    term.send(text + "\n")
    shown = term.expect(">>> ", timeout_s=120)
    match = STATS.search(shown)
    assert match, shown
    return shown, int(match[1]), int(match[2])


def test_an_interactive_session_on_a_terminal(backends: Backends) -> None:
    env = {**backends.cli.env, "PYTHONUNBUFFERED": "1", "TERM": "xterm"}
    term = PtySession([sys.executable, "-m", "llmdeploy", "chat", "-d", backends.llama,
                       "--max-tokens", "96", "--temperature", "0"], env, backends.folder)  # fmt: skip
    try:
        term.expect(f"Chat with {backends.llama}", timeout_s=60)
        term.expect(">>> ")
        _, completion1, prompt1 = turn(term, "My name is Zorblax. Please remember it.")
        _, _, prompt2 = turn(term, "What is my name?")
        # the history went with the second question: its prompt holds the first turn
        assert prompt2 >= prompt1 + completion1, (prompt1, completion1, prompt2)
        term.send("/reset\n")
        term.expect("Conversation cleared")
        term.expect(">>> ")
        _, _, prompt3 = turn(term, "What is my name?")
        assert prompt3 < prompt2, (prompt2, prompt3)
        # longer than the default system prompt SmolLM2's chat template puts in without one
        term.send("/system " + PIRATE + "\n")
        term.expect("System prompt set")
        term.expect(">>> ")
        _, _, prompt4 = turn(term, "What is my name?")
        assert prompt4 > prompt3, (prompt3, prompt4)  # the system prompt went too
        # Ctrl-C during an answer stops it; the session goes on
        term.send("/system\n")
        term.expect(">>> ")
        time.sleep(0.3)
        term.send("Count from 1 to 300, one number per line.\n")
        term.expect("per line.\n")  # the terminal's echo of the line
        term.expect_output(timeout_s=60)  # the answer has started (96 tokens: over a second)
        term.send(CTRL_C)
        term.expect("Answer stopped", timeout_s=30)
        term.expect(">>> ")
        _, _, prompt5 = turn(term, "What is my name?")
        assert prompt5 == prompt3, (prompt3, prompt5)  # the stopped turn was not kept
        term.send(CTRL_D)
        assert term.wait(30) == 0
    finally:
        term.close()
    assert "Traceback" not in term.output
    transcript = term.output.replace("\x1b[2m", "").replace("\x1b[0m", "").replace("\x1b[1m", "")
    print("\n[chat e2e] interactive session transcript:\n" + re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "",
                                                               transcript))  # fmt: skip

