"""Time to ready: the itemised figures, their labels and the record status reads."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from test_lifecycle import health_server, make_plan  # noqa: F401  (fixture)

from fake_engine import FakeEngine
from llmdeploy.deploy import lifecycle, ready_record
from llmdeploy.deploy.lifecycle import UpOptions, start
from llmdeploy.deploy.ready_time import (
    LABEL_IMAGE_S,
    LABEL_IMAGE_SOURCE,
    LABEL_MEMORY_PLAN_S,
    LABEL_MODEL_S,
    TimeToReady,
)
from llmdeploy.deploy.warm_up import first_token_s
from llmdeploy.errors import DeploymentError

READY = TimeToReady(
    total_s=2.0,
    image_s=0.02,
    model_s=0.03,
    memory_plan_s=0.04,
    container_start_s=0.25,
    server_load_s=1.0,
    first_token_s=0.5,
    image_source="local",
)


def test_other_is_the_total_less_the_phases() -> None:
    assert READY.other_s == pytest.approx(2.0 - (0.02 + 0.03 + 0.04 + 0.25 + 1.0 + 0.5))
    assert TimeToReady(total_s=1.0, server_load_s=1.2).other_s == 0.0  # never negative
    assert TimeToReady().other_s is None


def test_json_round_trip_and_phase_order() -> None:
    data = READY.to_dict()
    assert list(data["phases_s"]) == [  # type: ignore[call-overload]
        "model", "memory_plan", "image", "container_start", "server_load", "first_token"
    ]
    assert TimeToReady.from_dict(json.loads(json.dumps(data))) == READY
    assert TimeToReady.from_dict({"phases_s": {"image": "x"}, "total_s": True}) == TimeToReady()


def test_labels_carry_what_is_known_at_create_only() -> None:
    labels = READY.create_labels()
    assert labels == {LABEL_IMAGE_S: "0.020", LABEL_MODEL_S: "0.030",
                      LABEL_MEMORY_PLAN_S: "0.040", LABEL_IMAGE_SOURCE: "local"}
    back = TimeToReady.from_labels({**labels, "io.llmdeploy.managed": "true"})
    assert back == TimeToReady(image_s=0.02, model_s=0.03, memory_plan_s=0.04,
                               image_source="local")
    assert TimeToReady.from_labels({"io.llmdeploy.managed": "true"}) is None


def test_summary_names_every_phase() -> None:
    line = READY.summary()
    assert line.startswith(
        "2.00 s: model 0.03 s, memory plan 0.04 s, image 0.02 s, container start 0.25 s")
    assert "first token 0.50 s" in line and line.endswith("other 0.16 s")
    assert "first token -" in replace(READY, first_token_s=None).summary()


def test_record_write_read_remove_prune(tmp_path: Path) -> None:
    ready_record.write("abc123", "podman", READY)
    ready_record.write("def456", "docker", READY)
    assert ready_record.read("abc123") == READY
    assert ready_record.read("nothing") is None
    ready_record.prune("podman", existing_ids=[])  # podman's abc123 is gone; docker's stays
    assert ready_record.read("abc123") is None and ready_record.read("def456") == READY
    ready_record.remove("def456")
    assert list(ready_record.records_dir().glob("*")) == []


def test_an_unreadable_record_is_absent(tmp_path: Path) -> None:
    ready_record.records_dir().mkdir(parents=True)
    (ready_record.records_dir() / "abc.json").write_text("{not json")
    assert ready_record.read("abc") is None


def test_start_measures_each_phase_and_labels_the_container(
    health_server: tuple[int, object], tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    port, _ = health_server
    monkeypatch.setattr(lifecycle, "port_is_free", lambda host, port: True)
    engine = FakeEngine(images={"localhost/img:1"})
    plan, _ = make_plan(port, tiny_gguf)
    result = start(engine, plan, UpOptions(model_s=0.125))  # type: ignore[arg-type]
    ready = result.ready
    assert ready.model_s == 0.125 and ready.image_source == "local"
    for value in (ready.image_s, ready.container_start_s, ready.server_load_s):
        assert value is not None and 0 <= value < result.elapsed_s
    assert ready.first_token_s is None  # no --warm-up
    labels = engine.containers[result.container.id].labels
    assert labels[LABEL_MODEL_S] == "0.125" and labels[LABEL_IMAGE_SOURCE] == "local"
    assert labels["io.llmdeploy.spec-hash"] == plan.spec_hash  # the hash ignores timings


def test_down_removes_the_record(
    health_server: tuple[int, object], tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    port, _ = health_server
    monkeypatch.setattr(lifecycle, "port_is_free", lambda host, port: True)
    engine = FakeEngine(images={"localhost/img:1"})
    plan, _ = make_plan(port, tiny_gguf)
    cid = start(engine, plan).container.id  # type: ignore[arg-type]
    ready_record.write(cid, "fake", READY)
    lifecycle.down(engine, "unit")  # type: ignore[arg-type]
    assert ready_record.read(cid) is None


# --- the warm-up request ---------------------------------------------------------------------
@pytest.fixture
def chat_server() -> Iterator[tuple[str, list[dict[str, object]], dict[str, object]]]:
    """An OpenAI-style streaming endpoint; ``mode["status"]`` / ``mode["events"]`` steer it."""
    seen: list[dict[str, object]] = []
    mode: dict[str, object] = {"status": 200, "events": [{"choices": [{"delta": {"content": "OK"}}]}]}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(int(mode["status"]))  # type: ignore[call-overload]
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for event in mode["events"]:  # type: ignore[attr-defined]
                self.wfile.write(b"data: " + json.dumps(event).encode() + b"\n\n")
            self.wfile.write(b"data: [DONE]\n\n")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen, mode
    server.shutdown()
    server.server_close()


def test_warm_up_sends_one_streamed_token_request_and_times_the_first_event(
    chat_server: tuple[str, list[dict[str, object]], dict[str, object]],
) -> None:
    url, seen, _ = chat_server
    seconds = first_token_s(url, "tiny")
    assert 0 < seconds < 5
    assert seen == [{"model": "tiny", "messages": [{"role": "user", "content": "Say OK."}],
                     "max_tokens": 1, "stream": True}]


@pytest.mark.parametrize(("status", "events", "said"), [
    (404, [], "HTTP 404"),
    (200, [{"usage": {}}], "ended without an answer"),
])
def test_warm_up_failures_name_the_url(
    chat_server: tuple[str, list[dict[str, object]], dict[str, object]],
    status: int, events: list[object], said: str,
) -> None:
    url, _, mode = chat_server
    mode.update(status=status, events=events)
    with pytest.raises(DeploymentError) as info:
        first_token_s(url, "tiny")
    assert said in info.value.message and f"{url}/chat/completions" in info.value.message


def test_figures_read_back_are_the_figures_written() -> None:
    """Recorded to the millisecond: status shows what up showed, other_s included."""
    odd = TimeToReady(total_s=1.23456, image_s=0.0104, model_s=0.0006, container_start_s=0.2404,
                      server_load_s=0.5004, image_source="local")
    again = TimeToReady.from_dict(odd.to_dict())
    assert again.to_dict() == odd.to_dict() and again.summary() == odd.summary()
