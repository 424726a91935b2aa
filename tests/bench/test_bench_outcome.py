"""A benchmark's outcome must be true (issue 7): the four bench cases and their siblings,
against the project's mock server with the behaviour each case recreates."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llmdeploy.bench.config import (
    BenchConfig,
    LengthDist,
    LoadSpec,
    StopSpec,
    TargetSpec,
    WorkloadSpec,
)
from llmdeploy.bench.mock_server import MockServer
from llmdeploy.bench.outcome import outcome_error
from llmdeploy.bench.report import load_report
from llmdeploy.bench.runner import run_bench
from llmdeploy.cli import bench
from llmdeploy.errors import EndpointError

runner = CliRunner()


def run(*args: str) -> tuple[int, str, BaseException | None]:
    result = runner.invoke(bench.app, list(args))
    exc = result.exception if not isinstance(result.exception, SystemExit) else None
    return result.exit_code, result.output, exc


def posts(server: MockServer) -> list[tuple[str, dict[str, Any]]]:
    return [(path, json.loads(body)) for method, path, body in server.requests
            if method == "POST"]


def url_of(server: MockServer, path: str = "/v1") -> str:
    return f"http://127.0.0.1:{server.port}{path}"


# case bench-all-failed-exit-code: a model the server does not serve --------------------
def test_wrong_model_is_an_immediate_endpoint_error_with_the_server_message(
    mock_server: Callable[..., MockServer],
) -> None:
    server = mock_server(ttft_ms=0, itl_ms=0, model="served-model", strict_model=True,
                         record_requests=True)
    _, _, exc = run("--url", url_of(server), "--model", "Qwen/Qwen2.5-7B-Instruct",
                    "-c", "1", "-n", "4", "--no-server-metrics", "--no-progress")
    assert isinstance(exc, EndpointError) and exc.exit_code == 7
    assert "The model `Qwen/Qwen2.5-7B-Instruct` does not exist." in exc.message
    assert "HTTP 404" in exc.message
    assert exc.hint == "the server lists: served-model; pass --model served-model"
    assert len(posts(server)) == 1  # the pre-flight only: no stage of identical failures


def test_server_that_passes_the_pre_flight_but_fails_later_exits_7_with_its_message(
    mock_server: Callable[..., MockServer], tmp_path: Path,
) -> None:
    server = mock_server(ttft_ms=0, itl_ms=0, fail_after=1)  # only the pre-flight succeeds
    out = tmp_path / "run.json"
    _, output, exc = run("--url", url_of(server), "-c", "1,2", "-n", "3",
                         "--no-server-metrics", "--output", str(out))
    assert isinstance(exc, EndpointError) and exc.exit_code == 7
    assert "2 of 2 stage(s) had no successful request" in exc.message
    assert "http_503 x3" in exc.message and "engine is dead" in exc.message
    assert "First message per error cause" in output and "engine is dead" in output
    report = load_report(out)  # the report is written before the run fails
    summary = report.stages[0].summary
    assert (summary.ok, summary.errors_by_cause) == (0, {"http_503": 3})
    assert summary.error_messages == {"http_503": "engine is dead"}


def test_partial_failure_shows_messages_but_exits_0(
    mock_server: Callable[..., MockServer],
) -> None:
    server = mock_server(ttft_ms=0, itl_ms=0, fail_after=4)  # pre-flight + 3 succeed
    code, output, exc = run("--url", url_of(server), "-n", "6", "--no-server-metrics")
    assert exc is None and code == 0, output
    assert "3/6" in output and "http_503: 3" in output and "engine is dead" in output


def test_outcome_error_only_for_a_stage_without_success(
    mock_server: Callable[..., MockServer],
) -> None:
    server = mock_server(ttft_ms=0, itl_ms=0, fail_after=5)
    cfg = BenchConfig(target=TargetSpec(base_url=url_of(server, ""), metrics_path=None),
                      stages=[LoadSpec(mode="concurrency", value=1)] * 2,
                      stop=StopSpec(requests=4))
    report = run_bench(cfg)
    assert [s.summary.ok for s in report.stages] == [4, 0]
    error = outcome_error(report)
    assert error is not None and "1 of 2 stage(s)" in error.message
    report.stages.pop()
    assert outcome_error(report) is None


# case bench-tokenless-stream: success is positive ---------------------------------------
@pytest.mark.parametrize(
    ("api", "endpoint", "stream"),
    [("openai", "chat", True), ("openai", "chat", False), ("openai", "completions", True),
     ("ollama", "chat", True), ("ollama", "completions", False)],
)
def test_answers_without_generated_text_are_empty_response_failures(
    mock_server: Callable[..., MockServer], api: str, endpoint: str, stream: bool,
) -> None:
    server = mock_server(ttft_ms=0, itl_ms=0, fault="empty")
    prefix = "/v1" if api == "openai" else ""
    cfg = BenchConfig(
        target=TargetSpec(base_url=url_of(server, ""), api=api, api_source="flag",
                          api_prefix=prefix, endpoint=endpoint, stream=stream,
                          metrics_path=None),
        stop=StopSpec(requests=5),
    )
    summary = run_bench(cfg).stages[0].summary
    assert summary.ok == 0 and summary.errors_by_cause == {"empty_response": 5}
    assert summary.requests_per_s == 0 and summary.e2e_ms is None  # feeds no statistic
    assert "generated text" in summary.error_messages["empty_response"]


def test_tokenless_stream_case_through_the_cli(
    mock_server: Callable[..., MockServer], tmp_path: Path,
) -> None:
    server = mock_server(ttft_ms=0, itl_ms=0, fault="empty")
    out = tmp_path / "run.json"
    _, output, exc = run("--url", url_of(server), "--model", "m", "-c", "1", "-n", "5",
                         "--no-server-metrics", "--no-progress", "--output", str(out))
    assert isinstance(exc, EndpointError) and exc.exit_code == 7
    assert load_report(out).stages[0].summary.ok == 0
    assert "empty_response: 5" in output


def test_a_200_html_page_is_an_unparseable_response(
    mock_server: Callable[..., MockServer],
) -> None:
    server = mock_server(ttft_ms=0, itl_ms=0, fault="html")
    cfg = BenchConfig(target=TargetSpec(base_url=url_of(server, ""), metrics_path=None),
                      stop=StopSpec(requests=3))
    summary = run_bench(cfg).stages[0].summary
    assert summary.errors_by_cause == {"unparseable_response": 3}
    assert "Welcome" in summary.error_messages["unparseable_response"]


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_every_sse_line_ending_is_measured(
    mock_server: Callable[..., MockServer], eol: str,
) -> None:
    server = mock_server(ttft_ms=1, itl_ms=1, sse_line_ending=eol)
    cfg = BenchConfig(target=TargetSpec(base_url=url_of(server, ""), metrics_path=None),
                      workload=WorkloadSpec(output_tokens=LengthDist.parse(6)),
                      stop=StopSpec(requests=3))
    summary = run_bench(cfg).stages[0].summary
    assert summary.ok == 3 and summary.token_sources == {"usage": 3}
    assert summary.itl_ms is not None and summary.itl_ms.count == 3 * 5


# case bench-stream-options-rejected: optional fields ------------------------------------
def test_refused_optional_fields_are_dropped_once_and_recorded(
    mock_server: Callable[..., MockServer], tmp_path: Path,
) -> None:
    server = mock_server(ttft_ms=0, itl_ms=0, refuse_fields=("stream_options", "ignore_eos"),
                         record_requests=True)
    out = tmp_path / "run.json"
    code, output, exc = run("--url", url_of(server), "--model", "mock-model", "-n", "4",
                            "--no-server-metrics", "--output", str(out))
    assert exc is None and code == 0, output
    report = load_report(out)
    assert report.stages[0].summary.ok == 4
    assert report.stages[0].summary.token_sources == {"chunks": 4}
    assert [(d.field, d.status) for d in report.downgrades] == [
        ("stream_options", 422), ("ignore_eos", 422)]
    assert "Extra inputs are not permitted" in (report.downgrades[0].server_message or "")
    assert "stream_options not sent" in output and "ignore_eos not sent" in output
    bodies = [b for _, b in posts(server)]
    assert len(bodies) == 2 + 4  # one refused pre-flight, one accepted, then the stage
    assert all("stream_options" not in b and "ignore_eos" not in b for b in bodies[1:])


def test_case_with_no_ignore_eos_drops_only_stream_options(
    mock_server: Callable[..., MockServer], tmp_path: Path,
) -> None:
    server = mock_server(ttft_ms=0, itl_ms=0, refuse_fields=("stream_options", "ignore_eos"))
    out = tmp_path / "run.json"
    _, _, exc = run("--url", url_of(server), "--model", "mock-model", "-c", "1", "-n", "4",
                    "--no-server-metrics", "--no-progress", "--no-ignore-eos", "--output",
                    str(out))
    assert exc is None
    report = load_report(out)
    assert report.stages[0].summary.ok == 4
    assert [d.field for d in report.downgrades] == ["stream_options"]


def test_a_model_name_the_server_ignores_is_refused_at_the_pre_flight(
    mock_server: Callable[..., MockServer],
) -> None:
    """llama.cpp answers any model name with its one model: the run would be reported under
    a name the server does not serve. The pre-flight refuses it, naming what did answer."""
    server = mock_server(ttft_ms=0, itl_ms=0, record_requests=True)
    _, _, exc = run("--url", url_of(server), "--model", "wrong-name", "-c", "1", "-n", "4",
                    "--no-server-metrics", "--no-progress")
    assert isinstance(exc, EndpointError) and exc.exit_code == 7
    assert "'wrong-name'" in exc.message and "answered by 'mock-model'" in exc.message
    assert exc.hint and "--model mock-model" in exc.hint
    assert len([r for r in server.requests if r[0] == "POST"]) == 1  # no stage ran


def test_an_unnamed_refusal_drops_only_the_field_at_fault(
    mock_server: Callable[..., MockServer],
) -> None:
    server = mock_server(ttft_ms=0, itl_ms=0, refuse_fields=("ignore_eos",),
                         name_refused=False, record_requests=True)
    cfg = BenchConfig(target=TargetSpec(base_url=url_of(server, ""), metrics_path=None),
                      stop=StopSpec(requests=3))
    report = run_bench(cfg)
    assert [(d.field, d.status) for d in report.downgrades] == [("ignore_eos", 400)]
    assert report.stages[0].summary.token_sources == {"usage": 3}  # stream_options kept
    stage_bodies = [b for _, b in posts(server)][-3:]
    assert all("stream_options" in b and "ignore_eos" not in b for b in stage_bodies)


def test_a_bad_request_unrelated_to_optional_fields_is_not_masked(
    mock_server: Callable[..., MockServer],
) -> None:
    server = mock_server(ttft_ms=0, itl_ms=0, refuse_fields=("model",), name_refused=False)
    cfg = BenchConfig(target=TargetSpec(base_url=url_of(server, ""), metrics_path=None),
                      stop=StopSpec(requests=3))
    with pytest.raises(EndpointError, match="HTTP 400: invalid request"):
        run_bench(cfg)


def test_explicit_opt_outs_remove_the_fields(
    mock_server: Callable[..., MockServer],
) -> None:
    server = mock_server(ttft_ms=0, itl_ms=0, record_requests=True)
    code, output, exc = run("--url", url_of(server), "-n", "2", "--no-server-metrics",
                            "--no-stream-usage", "--extra-body", '{"ignore_eos": null}')
    assert exc is None and code == 0, output
    bodies = [b for _, b in posts(server)]
    assert bodies and all("stream_options" not in b and "ignore_eos" not in b for b in bodies)
    assert "not sent" not in output  # an opt-out is not a downgrade


# case bench-ollama-openai-v1: which API ------------------------------------------------
def test_v1_url_uses_the_openai_api_of_a_server_serving_both(
    mock_server: Callable[..., MockServer], tmp_path: Path,
) -> None:
    server = mock_server(ttft_ms=0, itl_ms=0, model="qwen2.5:0.5b", record_requests=True)
    out = tmp_path / "run.json"
    code, output, exc = run("--url", url_of(server), "--model", "qwen2.5:0.5b", "-c", "1",
                            "-n", "3", "--no-server-metrics", "--output", str(out))
    assert exc is None and code == 0, output
    assert {path for path, _ in posts(server)} == {"/v1/chat/completions"}
    assert load_report(out).stages[0].summary.ok == 3
    assert "from the URL path" in output


@pytest.mark.parametrize(
    ("guess", "served", "expected_path"),
    [("ollama", ("openai",), "/v1/chat/completions"), ("openai", ("ollama",), "/api/chat")],
)
def test_a_guessed_api_is_corrected_by_the_model_listing(
    mock_server: Callable[..., MockServer], guess: str, served: tuple[str, ...],
    expected_path: str,
) -> None:
    server = mock_server(ttft_ms=0, itl_ms=0, apis=served, record_requests=True)
    prefix = "" if guess == "ollama" else "/v1"
    source = "port" if guess == "ollama" else "default"
    cfg = BenchConfig(target=TargetSpec(base_url=url_of(server, ""), api=guess,
                                        api_source=source, api_prefix=prefix,
                                        metrics_path=None),
                      stop=StopSpec(requests=2))
    report = run_bench(cfg)
    assert report.stages[0].summary.ok == 2
    assert report.config.target.api_source == "discovery"
    assert report.config.target.api != guess
    assert {path for path, _ in posts(server)} == {expected_path}


def test_an_explicit_api_is_never_overridden(mock_server: Callable[..., MockServer]) -> None:
    server = mock_server(ttft_ms=0, itl_ms=0, apis=("openai",))
    cfg = BenchConfig(target=TargetSpec(base_url=url_of(server, ""), api="ollama",
                                        api_source="flag", api_prefix="", model="mock-model",
                                        metrics_path=None),
                      stop=StopSpec(requests=2))
    with pytest.raises(EndpointError, match="HTTP 404") as info:
        run_bench(cfg)
    assert "check --url and --api" in (info.value.hint or "")


# prompts: unique per request by default, prefix sharing explicit ------------------------
def _cache_run(server: MockServer, **workload: Any) -> Any:
    cfg = BenchConfig(
        target=TargetSpec(base_url=url_of(server, ""), metrics_path="/metrics"),
        workload=WorkloadSpec(input_tokens=LengthDist.parse(24),
                              output_tokens=LengthDist.parse(2), **workload),
        stages=[LoadSpec(mode="concurrency", value=1), LoadSpec(mode="concurrency", value=2)],
        stop=StopSpec(requests=6),
        metrics_interval_s=60,
    )
    return run_bench(cfg)


def test_stages_do_not_replay_each_others_prompts(
    mock_server: Callable[..., MockServer],
) -> None:
    server = mock_server(ttft_ms=0, itl_ms=0, prefix_cache=True, record_requests=True)
    report = _cache_run(server)
    prompts = [b["messages"][0]["content"] for _, b in posts(server)]
    assert len(prompts) == 1 + 12 and len(set(prompts)) == 13
    for stage in report.stages:
        s = stage.summary
        assert s.cached_prompt_tokens is not None and s.cached_prompt_tokens <= 2 * 6
        assert stage.server is not None
        assert stage.server.derived["prefix_cache_hit_rate"] < 0.1


def test_repeat_prompts_replays_stages_and_the_cache_numbers_show_it(
    mock_server: Callable[..., MockServer],
) -> None:
    server = mock_server(ttft_ms=0, itl_ms=0, prefix_cache=True)
    report = _cache_run(server, unique_prompts=False)
    second = report.stages[1]
    assert second.summary.cached_prompt_tokens == second.summary.prompt_tokens == 6 * 24
    assert second.server is not None
    assert second.server.derived["prefix_cache_hit_rate"] == pytest.approx(1.0)


def test_shared_prefix_is_explicit_and_cached(mock_server: Callable[..., MockServer]) -> None:
    server = mock_server(ttft_ms=0, itl_ms=0, prefix_cache=True)
    report = _cache_run(server, shared_prefix_tokens=16)
    s = report.stages[1].summary
    assert s.prompt_tokens == 6 * (16 + 24)
    assert 6 * 16 <= (s.cached_prompt_tokens or 0) <= 6 * (16 + 2)


def test_runs_do_not_share_prefixes_but_reproduce_from_seed_and_nonce(
    mock_server: Callable[..., MockServer],
) -> None:
    runs = []
    for nonce in (None, None, 7, 7):
        server = mock_server(ttft_ms=0, itl_ms=0, record_requests=True)
        report = _cache_run(server, prompt_nonce=nonce)
        assert report.config.workload.prompt_nonce is not None  # recorded in the report
        # the first stage (concurrency 1, after the pre-flight) arrives in request order
        runs.append([b["messages"][0]["content"].split() for _, b in posts(server)[1:7]])
    first, second, same_a, same_b = runs
    # two runs with the same seed: the same words, but each request starts differently
    assert all(a[3:] == b[3:] and a[:3] != b[:3] for a, b in zip(first, second, strict=True))
    assert same_a == same_b  # the recorded nonce reproduces the exact prompts


def test_a_second_run_is_not_served_from_the_first_runs_cache(
    mock_server: Callable[..., MockServer],
) -> None:
    server = mock_server(ttft_ms=0, itl_ms=0, prefix_cache=True)
    _cache_run(server)
    again = _cache_run(server)
    assert all((st.summary.cached_prompt_tokens or 0) <= 2 * 6 for st in again.stages)


def test_cached_tokens_are_printed(mock_server: Callable[..., MockServer]) -> None:
    server = mock_server(ttft_ms=0, itl_ms=0, prefix_cache=True)
    code, output, exc = run("--url", url_of(server), "-c", "1,1", "-n", "3",
                            "--repeat-prompts", "--input-tokens", "10", "--output-tokens", "2")
    assert exc is None and code == 0, output
    text = " ".join(output.split())
    assert "cached prompt tokens 30 of 30" in text  # the second stage replays the first
    assert "repeated prompts" in text


def test_html_and_csv_show_downgrades_messages_and_cached_tokens(
    mock_server: Callable[..., MockServer], tmp_path: Path,
) -> None:
    server = mock_server(ttft_ms=0, itl_ms=0, refuse_fields=("ignore_eos",), fail_after=4,
                         prefix_cache=True)
    out, html, req_csv = tmp_path / "run.json", tmp_path / "run.html", tmp_path / "req.csv"
    run("--url", url_of(server), "-n", "5", "--output-tokens", "2", "--output", str(out))
    code, output, exc = run("report", str(out), "--html", str(html), "--requests-csv",
                            str(req_csv))
    assert exc is None and code == 0, output
    page = html.read_text()
    assert "Request fields the server refused" in page and "ignore_eos" in page
    assert "engine is dead" in page and "unique prompts" in page
    rows = list(csv.DictReader(req_csv.open()))
    assert [r["error_detail"] for r in rows].count("engine is dead") == 2  # 3 of 5 answered
    assert all(r["cached_tokens"] != "" for r in rows if not r["error"])
