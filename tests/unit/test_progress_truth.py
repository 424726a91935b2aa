"""Progress tells the truth: a failed, skipped or fallen-back step never gets a ✓."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from test_lifecycle import health_server, make_plan, make_profile, up  # noqa: F401  (fixture)

import llmdeploy.cli.console as console_module
from fake_engine import FakeEngine
from llmdeploy.cli.progress import RichReporter
from llmdeploy.core.reporting import NullReporter
from llmdeploy.deploy import lifecycle


@pytest.fixture
def stderr(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    monkeypatch.setattr(console_module, "_stderr", Console(file=buffer, width=200,
                                                           force_terminal=False))
    yield buffer


@pytest.fixture(autouse=True)
def _port_checks_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifecycle, "port_is_free", lambda host, port: True)


def test_a_failed_pull_followed_by_a_build_is_shown_as_a_fallback(
    health_server, tiny_gguf: Path, stderr: io.StringIO  # type: ignore[no-untyped-def]  # noqa: F811
) -> None:
    port, _ = health_server
    engine = FakeEngine()  # nothing local, nothing pullable: pull fails, then build
    plan, stored = make_plan(port, tiny_gguf, image="ghcr.io/ggml-org/llama.cpp:server")
    reporter = RichReporter()
    result = up(engine, plan, stored, reporter=reporter)
    assert result.image is not None and result.image.source == "built"
    outcomes = {r.name: (r.outcome, r.note) for r in reporter.records}
    assert outcomes["pull"][0] == "fallback"
    assert "could not pull ghcr.io/ggml-org/llama.cpp:server" in outcomes["pull"][1]
    assert "building localhost/" in outcomes["pull"][1]
    assert outcomes["build"][0] == "done" and outcomes["health"][0] == "done"
    text = stderr.getvalue()
    pull_line = next(line for line in text.splitlines() if "Pulling ghcr.io" in line)
    assert "✓" not in pull_line and "↪" in pull_line
    assert "fell back: could not pull" in text


def test_a_failed_pull_without_a_build_is_a_failure(
    health_server, tiny_gguf: Path  # type: ignore[no-untyped-def]  # noqa: F811
) -> None:
    port, _ = health_server
    plan, stored = make_plan(port, tiny_gguf, build=False)
    reporter = NullReporter()
    with pytest.raises(Exception, match="could not pull"):
        up(FakeEngine(), plan, stored, reporter=reporter)
    assert [(r.name, r.outcome) for r in reporter.records][-1] == ("pull", "failed")


def test_a_memory_plan_that_could_not_run_is_shown_as_skipped(
    health_server, tiny_gguf: Path, stderr: io.StringIO  # type: ignore[no-untyped-def]  # noqa: F811
) -> None:
    from llmdeploy.deploy.up import UpRequest
    from llmdeploy.deploy.up import up as deploy_up
    from llmdeploy.engines.selection import choose_engine

    port, _ = health_server
    profile = make_profile(port, tiny_gguf)  # not a real GGUF: the planner cannot size it
    reporter = RichReporter()
    request = UpRequest(profile=profile, engine=choose_engine("podman"))
    deploy_up(request, reporter, engine=FakeEngine(images={"localhost/img:1"}))  # type: ignore[arg-type]
    record = next(r for r in reporter.records if r.name == "plan")
    assert record.outcome == "skipped" and "memory plan skipped" in record.note
    line = next(line for line in stderr.getvalue().splitlines() if "model fits" in line)
    assert "✓" not in line and "↷" in line


def test_every_outcome_has_its_own_mark(stderr: io.StringIO) -> None:
    reporter = RichReporter()
    for outcome in ("done", "failed", "skipped", "fallback", "warned"):
        reporter.phase(outcome, f"step {outcome}")
        reporter.end_phase(outcome, f"because {outcome}")  # type: ignore[arg-type]
    reporter.phase("open", "left open")
    reporter.finish(success=False)
    lines = stderr.getvalue().splitlines()
    marks = [ln.split()[0] for ln in lines if " step " in f" {ln} "]
    assert marks == ["✓", "✗", "↷", "↪", "!"]
    assert any("left open" in ln and "✗" in ln for ln in lines)
    assert "because done" not in stderr.getvalue()  # a success needs no excuse
    assert [r.outcome for r in reporter.records] == [
        "done", "failed", "skipped", "fallback", "warned", "failed"]


def test_the_step_that_failed_is_the_one_marked_failed(
    health_server, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]  # noqa: F811
) -> None:
    """A refused port fails the port check, not the memory plan before it."""
    from llmdeploy.errors import PortInUseError

    port, _ = health_server
    monkeypatch.setattr(lifecycle, "port_is_free", lambda host, port: False)
    plan, stored = make_plan(port, tiny_gguf)
    reporter = NullReporter()
    with pytest.raises(PortInUseError):
        up(FakeEngine(images={"localhost/img:1"}), plan, stored, reporter=reporter)
    outcomes = [(r.name, r.outcome) for r in reporter.records]
    assert outcomes[-1] == ("port", "failed")
    assert ("plan", "failed") not in outcomes


def test_a_name_conflict_fails_the_lookup_step(
    health_server, tiny_gguf: Path  # type: ignore[no-untyped-def]  # noqa: F811
) -> None:
    from llmdeploy.core.run_spec import ContainerInfo
    from llmdeploy.errors import NameConflictError

    port, _ = health_server
    engine = FakeEngine(images={"localhost/img:1"})
    engine.containers["x"] = ContainerInfo("x", "llmdeploy-unit", "busybox", "running", None,
                                           {}, None)
    plan, stored = make_plan(port, tiny_gguf)
    reporter = NullReporter()
    with pytest.raises(NameConflictError):
        up(engine, plan, stored, reporter=reporter)
    assert [(r.name, r.outcome) for r in reporter.records] == [("existing", "failed")]
