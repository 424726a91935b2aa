"""The Ollama backend through the whole lifecycle, against a FAKE Ollama server.

No Ollama server can be installed on the test machines, so each "container" the in-memory
engine runs is ``tests/fakes/ollama_server.py``: a fake that follows Ollama 0.32.15's
documented HTTP API, started on the deployment's published port with the container's
environment and its writable data directory. Everything else is real: ``deploy.lifecycle.up``
(health polling, ``after_healthy`` uploading the GGUF blob, pulling, creating and loading the
model over HTTP with the ``ollama`` client), the streaming chat client against ``/v1``,
``status`` and ``down``.
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest

from fake_engine import FakeEngine
from fakes.ollama_server import FakeOllama, LibraryModel
from llmdeploy.client.chat import ChatUsage, Sampling, messages_for, stream_messages
from llmdeploy.constants import LABEL_ENDPOINT
from llmdeploy.core.reporting import PhaseLog, Reporter
from llmdeploy.core.run_spec import ContainerInfo, RunSpec
from llmdeploy.deploy import status
from llmdeploy.deploy.health import probe
from llmdeploy.deploy.lifecycle import StartResult, UpOptions, down, start
from llmdeploy.deploy.plan import DeploymentPlan, plan_deployment
from llmdeploy.deploy.up import post_start_hook
from llmdeploy.errors import DeploymentError, ModelError, ProfileError
from llmdeploy.models.store import ModelStore, StoredModel
from llmdeploy.profiles.schema import BackendSpec, Profile

IMAGE = "docker.io/ollama/ollama:0.32.15"
LAYER = "sha256:" + hashlib.sha256(b"smollm2 weights").hexdigest()


@dataclass
class OllamaEngine(FakeEngine):
    """The in-memory engine; each container it runs is a FAKE Ollama server (see module doc)."""

    library: dict[str, LibraryModel] = field(default_factory=dict)
    inject: dict[str, tuple[int, str]] = field(default_factory=dict)
    servers: dict[str, FakeOllama] = field(default_factory=dict)
    started: list[FakeOllama] = field(default_factory=list)

    def run(self, spec: RunSpec) -> ContainerInfo:
        data = next(m.source for m in spec.mounts if m.target == "/root/.ollama")
        assert not next(m for m in spec.mounts if m.target == "/root/.ollama").read_only
        server = FakeOllama(port=spec.ports[0].host_port, data_dir=Path(data), env=spec.env,
                            library=self.library)
        for path, failure in self.inject.items():
            server.fail_next(path, *failure)
        server.start()
        info = super().run(spec)
        self.servers[info.id] = server
        self.started.append(server)
        return info

    def stop(self, name_or_id: str, timeout_s: int = 10) -> None:
        info = self._find(name_or_id)
        if info is not None and info.id in self.servers:
            self.servers.pop(info.id).stop()
        super().stop(name_or_id, timeout_s)

    def remove(self, name_or_id: str) -> None:
        self.stop(name_or_id)
        super().remove(name_or_id)

    @property
    def server(self) -> FakeOllama:
        return self.started[-1]


class Recorder(PhaseLog):
    """A lifecycle reporter that remembers what it was told, byte progress included."""

    def __init__(self) -> None:
        super().__init__()
        self.phases: list[str] = []
        self.details: list[str] = []
        self.progress_events: list[tuple[str, int, int | None]] = []

    def on_open(self, name: str, description: str) -> None:
        self.phases.append(name)

    def on_detail(self, text: str) -> None:
        self.details.append(text)

    def progress(self, label: str, completed: int, total: int | None) -> None:
        self.progress_events.append((label, completed, total))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ollama_plan(tmp_path: Path, ref: str, name: str | None = "tiny", **backend: Any
                ) -> tuple[DeploymentPlan, BackendSpec]:
    """The plan, and the backend options `up` hands to the backend's post-start hook."""
    profile = Profile.model_validate({
        "name": "unit",
        "backend": {"kind": "ollama", "num_ctx": 2048, **backend},
        "model": {"ref": ref, "name": name},
        "image": IMAGE,
        "server": {"port": free_port()},
        "health": {"timeout_s": 5, "interval_s": 0.05},
    })
    if ref.startswith("ollama://"):  # pulled by Ollama itself: nothing in llmdeploy's store
        empty = tmp_path / "empty"
        empty.mkdir(exist_ok=True)
        stored = StoredModel(ref=ref, directory=empty, filename="", size_bytes=0, sha256=None,
                             reused=True)
    else:
        stored = ModelStore(tmp_path / "store").ensure(ref)
    plan = plan_deployment(profile, model_dir=stored.directory, model_filename=stored.filename,
                           data_root=tmp_path / "data")
    return plan, profile.backend


def up(engine: OllamaEngine, plan: DeploymentPlan, options: BackendSpec,
       reporter: Reporter | None = None) -> StartResult:
    """What deploy.up does once the model is placed and planned: start, then the backend's
    post-start hook (Ollama creates and loads the served model)."""
    return start(engine, plan, UpOptions(), reporter, after_healthy=post_start_hook(options))


@pytest.fixture
def engine() -> Iterator[OllamaEngine]:
    engine = OllamaEngine(images={IMAGE})
    yield engine
    for server in engine.servers.values():
        server.stop()


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_up_creates_the_model_from_the_gguf_then_chat_status_and_down(
    engine: OllamaEngine, tiny_gguf: Path, tmp_path: Path
) -> None:
    plan, options = ollama_plan(tmp_path, f"file://{tiny_gguf}", temperature=0.2,
                               stop=["<|im_end|>"], system='Answer "briefly".')
    recorder = Recorder()
    result = up(engine, plan, options, reporter=recorder)
    fake = engine.server
    digest = sha256(tiny_gguf)

    assert [r.path for r in fake.requests if r.path != "/api/version"] == [
        f"/api/blobs/{digest}", f"/api/blobs/{digest}", "/api/create", "/api/generate"]
    assert [r.method for r in fake.requests if r.path.startswith("/api/blobs")] == ["HEAD", "POST"]
    create = next(r.body for r in fake.requests if r.path == "/api/create")
    assert create == {
        "model": "tiny", "stream": True, "files": {tiny_gguf.name: digest},
        "parameters": {"num_ctx": 2048, "temperature": 0.2, "stop": ["<|im_end|>"]},
        "system": 'Answer "briefly".',
    }
    load = next(r.body for r in fake.requests if r.path == "/api/generate")
    assert load["model"] == "tiny" and not load.get("prompt") and load["keep_alive"] == "5m"
    assert fake.loaded == ["tiny:latest"]
    assert fake.env["OLLAMA_CONTEXT_LENGTH"] == "2048"
    # the blob landed in the deployment's data directory on the host, not in the image
    blob = tmp_path / "data" / "unit" / "ollama" / "models" / "blobs" / digest.replace(":", "-")
    assert blob.read_bytes() == tiny_gguf.read_bytes()
    assert fake.models["tiny:latest"].parameters["num_ctx"] == 2048
    assert {"blob", "create", "load"} <= set(recorder.phases)
    assert recorder.progress_events[-1] == (f"uploading {tiny_gguf.name}",
                                            tiny_gguf.stat().st_size, tiny_gguf.stat().st_size)
    assert not result.unchanged and result.container.running

    usage = ChatUsage()
    reply = "".join(stream_messages(plan.api_base_url, plan.launch.served_model,
                                    messages_for("Say hello"), sampling=Sampling(max_tokens=5),
                                    usage=usage))
    assert reply == "Hello from a fake Ollama"
    assert (usage.prompt_tokens, usage.completion_tokens) == (2, 5)

    rows = status.status([engine])  # type: ignore[list-item]
    assert [(r.deployment, r.healthy) for r in rows] == [("unit", True)]
    endpoint = rows[0].container.labels[LABEL_ENDPOINT]
    assert down(engine, "unit")[0].name == "llmdeploy-unit"
    assert not engine.containers
    assert not probe(endpoint + "/api/version", timeout_s=0.5)[0]


def test_models_stay_in_the_data_dir_across_down_and_up(
    engine: OllamaEngine, tiny_gguf: Path, tmp_path: Path
) -> None:
    plan, options = ollama_plan(tmp_path, f"file://{tiny_gguf}")
    up(engine, plan, options)
    down(engine, "unit")
    up(engine, plan, options)
    again = engine.server
    assert again is not engine.started[0]
    blob_calls = [(r.method, r.path) for r in again.requests if r.path.startswith("/api/blobs")]
    assert blob_calls == [("HEAD", f"/api/blobs/{sha256(tiny_gguf)}")]  # nothing re-uploaded
    assert "tiny:latest" in again.models


def test_an_identical_up_is_a_noop(engine: OllamaEngine, tiny_gguf: Path, tmp_path: Path) -> None:
    plan, options = ollama_plan(tmp_path, f"file://{tiny_gguf}")
    up(engine, plan, options)
    assert up(engine, plan, options).unchanged
    assert len(engine.started) == 1


def test_ollama_refs_are_pulled_with_byte_progress_then_given_num_ctx(
    engine: OllamaEngine, tmp_path: Path
) -> None:
    engine.library = {"smollm2:135m": LibraryModel(layers=((LAYER, 91_000_000),))}
    plan, options = ollama_plan(tmp_path, "ollama://smollm2:135m", num_ctx=4096)
    recorder = Recorder()
    up(engine, plan, options, reporter=recorder)
    fake = engine.server
    assert recorder.phases[-3:] == ["pull", "create", "load"]
    label = f"pulling {LAYER[7:19]}"
    assert [e for e in recorder.progress_events if e[0] == label] == [
        (label, 0, 91_000_000), (label, 45_500_000, 91_000_000), (label, 91_000_000, 91_000_000)]
    assert "verifying sha256 digest" in recorder.details
    pull = next(r.body for r in fake.requests if r.path == "/api/pull")
    assert pull == {"model": "smollm2:135m", "insecure": False, "stream": True}
    create = next(r.body for r in fake.requests if r.path == "/api/create")
    assert create["from"] == "smollm2:135m" and create["model"] == "tiny"
    assert create["parameters"] == {"num_ctx": 4096}
    assert not any(r.path.startswith("/api/blobs") for r in fake.requests)
    assert fake.models["tiny:latest"].parent == "smollm2:135m"


def test_a_pulled_model_served_under_its_own_name_gets_the_profiles_parameters(
    engine: OllamaEngine, tmp_path: Path
) -> None:
    engine.library = {"smollm2:135m": LibraryModel(layers=((LAYER, 1000),))}
    plan, options = ollama_plan(tmp_path, "ollama://smollm2:135m", name=None, num_ctx=1024)
    assert plan.launch.served_model == "smollm2:135m"
    up(engine, plan, options)
    create = next(r.body for r in engine.server.requests if r.path == "/api/create")
    assert (create["model"], create["from"]) == ("smollm2:135m", "smollm2:135m")
    assert engine.server.models["smollm2:135m"].parameters == {"num_ctx": 1024}
    reply = "".join(stream_messages(plan.api_base_url, "smollm2:135m", messages_for("hi")))
    assert reply.startswith("Hello")


def test_pulling_an_unknown_model_fails_clearly_and_removes_the_container(
    engine: OllamaEngine, tmp_path: Path
) -> None:
    plan, options = ollama_plan(tmp_path, "ollama://nosuchmodel:7b")
    with pytest.raises(ModelError) as info:
        up(engine, plan, options, reporter=Recorder())
    assert info.value.message == (
        "Ollama could not pull nosuchmodel:7b: pull model manifest: file does not exist")
    assert info.value.hint and "ollama.com/library" in info.value.hint
    assert not engine.containers and any(c.startswith("remove id-llmdeploy-unit") for c in engine.calls)
    assert "/api/create" not in engine.server.paths()
    with pytest.raises(httpx.ConnectError):  # the fake "container" is gone with it
        httpx.get(plan.endpoint + "/api/version", timeout=0.5)


def test_a_file_ollama_cannot_import_fails_up(engine: OllamaEngine, tmp_path: Path) -> None:
    bogus = tmp_path / "weights" / "not-really.gguf"
    bogus.parent.mkdir()
    bogus.write_bytes(b"PK\x03\x04 a zip file, not GGUF")
    plan, options = ollama_plan(tmp_path, f"file://{bogus}")
    with pytest.raises(ModelError, match="supplied file was not in GGUF format"):
        up(engine, plan, options)
    assert not engine.containers


def test_a_template_ollama_refuses_is_a_profile_error(
    engine: OllamaEngine, tiny_gguf: Path, tmp_path: Path
) -> None:
    plan, options = ollama_plan(tmp_path, f"file://{tiny_gguf}", template="{{ .Prompt ")
    with pytest.raises(ProfileError, match="template error") as info:
        up(engine, plan, options)
    assert info.value.hint and "backend.template" in info.value.hint
    assert not engine.containers


def test_a_model_that_cannot_load_fails_up_with_ollamas_reason(
    engine: OllamaEngine, tiny_gguf: Path, tmp_path: Path
) -> None:
    reason = "model requires more system memory (3.2 GiB) than is available (1.9 GiB)"
    engine.inject = {"/api/generate": (500, reason)}
    plan, options = ollama_plan(tmp_path, f"file://{tiny_gguf}")
    with pytest.raises(DeploymentError, match=r"could not load tiny: model requires more"):
        up(engine, plan, options)
    assert not engine.containers


def test_the_fake_speaks_ollamas_api_to_the_official_client(tiny_gguf: Path) -> None:
    """The fake itself, through the `ollama` client: streams, nanoseconds, errors, /v1."""
    with FakeOllama(env={"OLLAMA_CONTEXT_LENGTH": "8"}) as fake:
        client = ollama.Client(host=fake.url)
        digest = client.create_blob(tiny_gguf)
        list(client.create("tiny", files={tiny_gguf.name: digest}, stream=True))
        parts = list(client.chat("tiny", messages=[{"role": "user", "content": "a " * 50}],
                                 stream=True))
        assert [p.done for p in parts] == [False] * (len(parts) - 1) + [True]
        last = parts[-1]
        assert last.done_reason == "stop" and last.message.content == ""
        assert last.eval_count == len(parts) - 1
        assert last.prompt_eval_count == 8  # truncated at the context, as Ollama does
        for duration in (last.total_duration, last.load_duration, last.prompt_eval_duration,
                         last.eval_duration):
            assert isinstance(duration, int) and duration >= 1_000_000  # nanoseconds
        generated = client.generate("tiny", prompt="hi", options={"num_predict": 2})
        assert generated.response == "Hello from" and generated.done_reason == "length"
        with pytest.raises(ollama.ResponseError) as missing:
            client.chat("nope", messages=[{"role": "user", "content": "x"}])
        assert missing.value.status_code == 404 and missing.value.error == "model 'nope' not found"
        models = httpx.get(fake.url + "/v1/models").json()
        assert [m["id"] for m in models["data"]] == ["tiny:latest"]
        body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        with httpx.stream("POST", fake.url + "/v1/chat/completions", json=body) as response:
            events = [line for line in response.iter_lines() if line]
        assert response.headers["content-type"] == "text/event-stream"
        assert events[-1] == "data: [DONE]" and '"usage"' not in "".join(events)
        error = httpx.post(fake.url + "/v1/chat/completions", json={**body, "model": "nope"})
        assert error.status_code == 404
        assert error.json()["error"]["type"] == "not_found_error"
