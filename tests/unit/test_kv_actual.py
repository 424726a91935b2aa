"""`up` and `status` put the plan's KV cache beside the server's own (deploy/kv_check.py).

The fake engine plays the container; its log lines play the server's. The model is a real
GGUF (written with gguf-py): 2 layers, 2 KV heads of 16, so llama.cpp's cache of 2048 cells in
f16 is 2 x 2 x (16 + 16) x 2 B x 2048 = 512 KiB, which is what the planner must say.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fake_engine import FakeEngine
from llmdeploy.constants import LABEL_PLAN_KV_BYTES
from llmdeploy.core.reporting import NullReporter
from llmdeploy.deploy import lifecycle
from llmdeploy.deploy.status import status
from llmdeploy.deploy.up import UpRequest, UpResult, up
from llmdeploy.engines.selection import choose_engine
from llmdeploy.errors import EngineError
from llmdeploy.profiles.schema import Profile
from split_gguf import write_single

KIB = 1024
PLANNED = 512 * KIB  # see the module docstring


def kv_line(mib: str) -> str:
    """A llama-server line as llama.cpp's src/llama-kv-cache.cpp writes it."""
    return (f"0.00.610.157 I llama_kv_cache: size = {mib:>7} MiB (  2048 cells,   2 layers,  "
            "1/1 seqs), K (f16):    0.25 MiB, V (f16):    0.25 MiB")


SERVER_LOG = [
    "llama-server: starting xllamacpp 2026.10.11549 server: model=/models/tiny.gguf",
    "0.00.610.031 I llama_context: constructing llama_context",
    kv_line("0.50"),
    "0.01.055.063 I srv          init: model loaded",
    "0.01.055.063 I srv          init: listening on http://0.0.0.0:8080",
]


@pytest.fixture
def health_port() -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _port_checks_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifecycle, "port_is_free", lambda host, port: True)


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "weights" / "tiny.gguf"
    path.parent.mkdir()
    return write_single(path)


def request(port: int, model: Path, **backend: object) -> UpRequest:
    profile = Profile.model_validate({
        "name": "kv",
        "backend": {"kind": "llamacpp", "ctx_size": 2048, **backend},
        "model": {"ref": f"file://{model}"},
        "image": "localhost/img:1",
        "server": {"port": port},
        "health": {"timeout_s": 3, "interval_s": 0.05},
    })
    return UpRequest(profile=profile, engine=choose_engine("podman"))


def start(engine: FakeEngine, port: int, model: Path) -> tuple[UpResult, NullReporter]:
    reporter = NullReporter()
    return up(request(port, model), reporter, engine=engine), reporter  # type: ignore[arg-type]


def kv_phase(reporter: NullReporter) -> tuple[str, str]:
    record = next(r for r in reporter.records if r.name == "kv-cache")
    return record.outcome, record.note


def test_up_records_the_plan_in_labels_and_shows_the_server_figure(health_port: int,
                                                                   gguf: Path) -> None:
    engine = FakeEngine(images={"localhost/img:1"}, log_lines=list(SERVER_LOG))
    result, reporter = start(engine, health_port, gguf)
    assert result.container.labels[LABEL_PLAN_KV_BYTES] == str(PLANNED)
    kv = result.kv_cache
    assert kv is not None
    assert (kv.unit, kv.planned_value, kv.actual_value) == ("bytes", PLANNED, PLANNED)
    assert kv.differs is False
    assert kv.server is not None and kv.server.lines == (kv_line("0.50"),)
    assert kv_phase(reporter)[0] == "done"
    # status reads both again: the plan from the labels, the server's figure from the log
    rows = status([engine])  # type: ignore[list-item]
    assert rows[0].kv_cache == kv
    assert rows[0].to_dict()["kv_cache"]["summary"] == "server 512.0 KiB, planned 512.0 KiB (+0.0%)"


def test_a_server_figure_off_by_more_than_ten_percent_is_a_warning(health_port: int,
                                                                  gguf: Path) -> None:
    log = [kv_line("1.00") if "llama_kv_cache" in line else line for line in SERVER_LOG]
    engine = FakeEngine(images={"localhost/img:1"}, log_lines=log)
    result, reporter = start(engine, health_port, gguf)
    assert result.kv_cache is not None and result.kv_cache.differs is True
    assert result.kv_cache.difference == pytest.approx(1.0)
    outcome, note = kv_phase(reporter)
    assert outcome == "warned"
    assert note == "server 1.0 MiB, planned 512.0 KiB (+100.0%, more than 10% off the plan)"
    assert any("off the plan" in n for n in result.kv_cache.notes)
    assert not result.unchanged and len(engine.containers) == 1  # up still succeeded
    row = status([engine])[0].to_dict()  # type: ignore[list-item]
    assert row["kv_cache"]["differs"] is True and row["kv_cache"]["actual"] == 1024 * KIB


def test_a_log_without_the_line_is_not_reported_and_up_succeeds(health_port: int,
                                                                gguf: Path) -> None:
    quiet = [line for line in SERVER_LOG if "llama_kv_cache" not in line]
    engine = FakeEngine(images={"localhost/img:1"}, log_lines=quiet)
    result, reporter = start(engine, health_port, gguf)
    kv = result.kv_cache
    assert kv is not None and kv.server is None and kv.differs is None
    assert kv.planned_value == PLANNED
    outcome, note = kv_phase(reporter)
    assert outcome == "skipped"
    assert "not reported: no `llama_kv_cache: size = ... MiB` line" in note
    assert "--log-verbosity 4" in note
    assert kv.summary() == "server: not reported, planned 512.0 KiB"


def test_an_engine_that_cannot_read_the_log_does_not_fail_up_or_status(
    health_port: int, gguf: Path
) -> None:
    class NoLogs(FakeEngine):
        def logs(self, name_or_id: str, *, follow: bool = False,
                 tail: int | None = None) -> Iterator[str]:
            raise EngineError("reading logs of x: the journald log driver cannot be read")

    engine = NoLogs(images={"localhost/img:1"})
    result, reporter = start(engine, health_port, gguf)
    assert result.kv_cache is not None and result.kv_cache.server is None
    assert kv_phase(reporter)[0] == "skipped"
    assert "journald log driver cannot be read" in kv_phase(reporter)[1]
    rows = status([engine])  # type: ignore[list-item]
    assert rows[0].kv_cache is not None and rows[0].kv_cache.server is None


def test_a_model_the_planner_cannot_size_has_no_plan_labels(health_port: int,
                                                           tiny_gguf: Path) -> None:
    engine = FakeEngine(images={"localhost/img:1"}, log_lines=list(SERVER_LOG))
    result, _ = start(engine, health_port, tiny_gguf)  # not a GGUF: the plan is skipped
    assert LABEL_PLAN_KV_BYTES not in result.container.labels
    kv = result.kv_cache
    assert kv is not None and kv.planned is None and kv.actual_value == PLANNED
    assert kv.summary() == "server 512.0 KiB, planned: not recorded"


def test_unchanged_up_and_stopped_deployments(health_port: int, gguf: Path) -> None:
    engine = FakeEngine(images={"localhost/img:1"}, log_lines=list(SERVER_LOG))
    first, _ = start(engine, health_port, gguf)
    again, reporter = start(engine, health_port, gguf)
    assert again.unchanged and again.kv_cache == first.kv_cache
    assert kv_phase(reporter)[0] == "done"
    container = next(iter(engine.containers.values()))
    engine.containers[container.id] = replace(container, state="exited", exit_code=0)
    row = status([engine])[0]  # type: ignore[list-item]
    assert row.kv_cache is None and row.to_dict()["kv_cache"] is None


def test_the_profile_decides_llama_server_verbosity(gguf: Path) -> None:
    from llmdeploy.backends.llamacpp import LlamaCppServer
    from llmdeploy.core.launch import ModelMount

    mount = ModelMount(container_dir="/models", filename="tiny.gguf")
    default = LlamaCppServer().describe(request(1, gguf).profile, mount).args
    assert default[-2:] == ("--log-verbosity", "4")
    quiet = request(1, gguf, extra_args=["-lv", "2"]).profile
    args = LlamaCppServer().describe(quiet, mount).args
    assert "--log-verbosity" not in args and args[-2:] == ("-lv", "2")
