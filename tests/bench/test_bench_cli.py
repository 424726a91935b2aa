"""The ``llmdeploy bench`` command group end to end against the in-process mock server."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmdeploy.bench.mock_server import MockServer
from llmdeploy.bench.report import load_report
from llmdeploy.cli import bench
from llmdeploy.errors import BenchError, EndpointError, GateFailedError, UsageError

runner = CliRunner()


def run(*args: str) -> tuple[int, str, BaseException | None]:
    result = runner.invoke(bench.app, list(args))
    exc = result.exception if not isinstance(result.exception, SystemExit) else None
    return result.exit_code, result.output, exc


@pytest.fixture
def url(mock_server: Callable[..., MockServer]) -> str:
    server = mock_server(ttft_ms=2, itl_ms=1)
    return f"http://127.0.0.1:{server.port}/v1"


def test_run_prints_table_and_writes_versioned_report(url: str, tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    code, output, exc = run("--url", url, "-c", "1,2", "-n", "6", "--output-tokens", "5",
                            "--input-tokens", "8", "--output", str(out))
    assert exc is None and code == 0, output
    assert "concurrency=1" in output and "TTFT p50 ms" in output
    assert "tokens from usage" in output
    report = load_report(out)
    assert report.schema_version == 3
    assert [s.summary.ok for s in report.stages] == [6, 6]
    assert all(len(r.token_times_s) == 5 for s in report.stages for r in s.records)


def test_json_summary_on_stdout(url: str) -> None:
    code, output, exc = run("--url", url, "-n", "3", "--output-tokens", "4", "--json")
    assert exc is None and code == 0
    data = json.loads(output)
    assert data["stages"][0]["summary"]["ok"] == 3
    assert "records" not in data["stages"][0]


def test_fail_on_raises_gate_failed_with_the_crossed_threshold(url: str, tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    _, _, exc = run("--url", url, "-n", "4", "--output-tokens", "3",
                    "--fail-on", "ttft_p50_ms>0.001", "--fail-on", "error_rate>0.5",
                       "--output", str(out))
    assert isinstance(exc, GateFailedError) and exc.exit_code == 9
    assert "ttft_p50_ms" in exc.message and "error_rate" not in exc.message
    assert load_report(out).gates  # the report records which gates failed


def test_passing_gate_and_slo(url: str) -> None:
    code, output, exc = run("--url", url, "-n", "4", "--output-tokens", "3",
                            "--fail-on", "ttft_p99_ms>5000", "--slo", "ttft_ms=5000")
    assert exc is None and code == 0
    assert "gates passed" in output and "goodput" in output


@pytest.mark.parametrize(
    "args",
    [
        ["--concurrency", "0"],
        ["--rate", "x"],
        ["--api", "grpc"],
        ["--slo", "speed=3"],
        ["--fail-on", "ttft>1"],
        ["--input-tokens", "uniform:3"],
        ["--duration", "soon"],
        ["--sweep", "-c", "2"],
        ["--concurrency", "1.5"],
        ["--rate", "nan"],
        ["--rate", "2", "--max-concurrency", "0"],
        ["--sweep", "--sweep-max-concurrency", "0"],
        ["--input-tokens", "normal:inf:1"],
        ["--output-tokens", "99999999999"],
        ["--slo", "ttft_ms=-5"],
        ["--extra-body", "[1, 2]"],
        ["--extra-body", "{oops"],
        ["--prompt", "hi", "--dataset", "x.jsonl"],
        ["--api", "ollama"],  # contradicts the /v1 in the URL
        ["--backend", "sglang"],
        ["--metrics-path", "metrics"],
        ["--api-key", "line\nbreak"],
    ],
)
def test_bad_options_are_usage_errors_exit_2(url: str, args: list[str]) -> None:
    _, output, exc = run("--url", url, "-n", "1", *args)
    assert isinstance(exc, UsageError) and exc.exit_code == 2, (output, exc)


def _llmdeploy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmdeploy", *args], capture_output=True,
                          text=True, timeout=60)


def test_exit_codes_through_the_real_entry_point(url: str, tmp_path: Path) -> None:
    """A bad option value is exit 2, a bad report file exit 8: message, no traceback."""
    bad_option = _llmdeploy("bench", "--url", url, "--concurrency", "0")
    assert bad_option.returncode == 2, bad_option.stderr
    assert "--concurrency" in bad_option.stderr and "Traceback" not in bad_option.stderr
    binary = tmp_path / "run.json"
    binary.write_bytes(bytes(range(256)))
    bad_file = _llmdeploy("bench", "report", str(binary))
    assert bad_file.returncode == 8, bad_file.stderr
    assert str(binary) in " ".join(bad_file.stderr.split()) and "Traceback" not in bad_file.stderr


def test_unreachable_server_is_an_endpoint_error() -> None:
    from conftest import free_port

    _, _, exc = run("--url", f"http://127.0.0.1:{free_port()}/v1", "-n", "1")
    assert isinstance(exc, EndpointError) and "--url" in (exc.hint or "")


def test_report_rerenders_csv_html_and_new_slo(url: str, tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    run("--url", url, "-c", "1,2", "-n", "5", "--output-tokens", "4", "--output", str(out))
    html, csv_path, req_csv = tmp_path / "r.html", tmp_path / "r.csv", tmp_path / "req.csv"
    code, output, exc = run("report", str(out), "--html", str(html), "--csv", str(csv_path),
                            "--requests-csv", str(req_csv), "--slo", "ttft_ms=10000")
    assert exc is None and code == 0, output
    assert "goodput" in output
    rows = list(csv.DictReader(csv_path.open()))
    assert [r["stage"] for r in rows] == ["concurrency=1", "concurrency=2"]
    assert float(rows[0]["ttft_median_ms"]) > 0 and rows[0]["goodput_ratio"] == "1.0"
    assert len(list(csv.DictReader(req_csv.open()))) == 10
    page = html.read_text()
    assert page.count('<div class="plot"') == 7  # drawn in the page from inline Vega-Lite specs
    assert _fetched_resources(page) == []  # self-contained: nothing to fetch
    assert "<link" not in page and "sourceMappingURL" not in page


def _fetched_resources(page: str) -> list[tuple[str, str, str]]:
    """(tag, attribute, value) of every element attribute that would make a browser fetch."""
    from html.parser import HTMLParser

    found: list[tuple[str, str, str]] = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            for name, value in attrs:
                if name in ("src", "href", "data", "poster", "srcset", "action") or (
                    name == "style" and "url(" in (value or "")
                ):
                    found.append((tag, name, value or ""))

    Parser().feed(page)
    return found


def test_compare_shows_deltas(url: str, tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    run("--url", url, "-n", "4", "--output-tokens", "4", "--output", str(a))
    run("--url", url, "-n", "4", "--output-tokens", "8", "--output", str(b))
    code, output, exc = run("compare", str(a), str(b))
    assert exc is None and code == 0
    assert "TTFT p50 ms" in output and "%" in output
    code, output, exc = run("compare", str(a), str(b), "--json")
    data = json.loads(output)
    tpot = next(r for r in data["rows"] if r["metric"] == "E2E p50 ms")
    assert tpot["delta_pct"][1] > 0  # 8 tokens take longer than 4


def test_report_rejects_other_schema_versions(tmp_path: Path) -> None:
    f = tmp_path / "old.json"
    f.write_text(json.dumps({"schema_version": 99}))
    _, _, exc = run("report", str(f))
    assert isinstance(exc, BenchError) and "schema_version" in exc.message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (bytes(range(256)), "not UTF-8 text"),
        ("{\"schema_version\": 2, \"café\": 1}".encode("latin-1"), "not UTF-8 text"),
        (b'{"schema_version": 2, "stages": [', "truncated"),
        (b"", "not JSON"),
        (b"hello", "not JSON"),
        (b"[1, 2]", "no schema_version"),
        (b"[" * 100_000, "not a bench report"),
        (b'{"schema_version": 2, "stages": "x"}', "not a valid llmdeploy bench report"),
        (b'{"schema_version": true}', "schema_version True"),
    ],
)
@pytest.mark.parametrize("command", ["report", "compare"])
def test_bad_report_files_are_clear_errors_naming_the_file(
    tmp_path: Path, url: str, content: bytes, expected: str, command: str,
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    args = [command, str(bad)]
    if command == "compare":
        good = tmp_path / "good.json"
        run("--url", url, "-n", "2", "--output-tokens", "2", "--output", str(good))
        args = [command, str(good), str(bad)]
    _, _, exc = run(*args)
    assert isinstance(exc, BenchError) and exc.exit_code == 8, exc
    assert str(bad) in exc.message and expected in exc.message


def test_missing_and_folder_reports(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.json", tmp_path):
        _, _, exc = run("report", str(path))
        assert isinstance(exc, BenchError) and str(path) in exc.message


def test_schema_1_reports_still_render(url: str, tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    run("--url", url, "-n", "2", "--output-tokens", "2", "--output", str(out))
    data = json.loads(out.read_text())
    data["schema_version"] = 1  # version 1 had none of these fields
    data.pop("downgrades")
    data["config"]["target"].pop("api_source")
    data["config"]["target"].pop("stream_usage")
    for key in ("unique_prompts", "prompt_nonce", "shared_prefix_tokens"):
        data["config"]["workload"].pop(key)
    for stage in data["stages"]:
        stage["summary"].pop("error_messages")
        stage["summary"].pop("cached_prompt_tokens")
        for record in stage["records"]:
            record.pop("cached_tokens")
    out.write_text(json.dumps(data))
    code, output, exc = run("report", str(out))
    assert exc is None and code == 0 and "TTFT p50 ms" in output


def test_unwritable_output_is_a_clear_error(url: str, tmp_path: Path) -> None:
    target = tmp_path / "no-such-dir" / "run.json"
    _, _, exc = run("--url", url, "-n", "1", "--output-tokens", "2", "--output", str(target))
    # refused before the run (a usage error), not after it
    assert isinstance(exc, UsageError) and str(target) in exc.message


@pytest.mark.parametrize(
    ("args", "flag", "words"),
    [
        (["--requests", "0"], "--requests", "greater than or equal to 1 (got 0)"),
        (["--duration", "0s"], "--duration", "greater than 0 (got 0.0)"),
        (["--sweep", "--sweep-steps", "-1"], "--sweep-steps", "greater than or equal to 0"),
        (["--workers", "0"], "--workers", "auto or a whole number >= 1 (got '0')"),
    ],
)
def test_a_refused_option_value_names_the_option_in_typers_words(
    args: list[str], flag: str, words: str
) -> None:
    """Values our specs refuse read like the values Typer refuses (``Invalid value for
    '--turns': Input should be ...``): the option the user typed, never a field path."""
    _, output, exc = run("--url", "http://127.0.0.1:9/v1", *args)
    assert isinstance(exc, UsageError), output
    message = str(exc)
    assert message.startswith(f"Invalid value for '{flag}': Input should be "), message
    assert words in message
    typer_code, typer_output, _ = run("--url", "http://127.0.0.1:9/v1", "--turns", "0")
    assert typer_code == 2 and "Invalid value for '--turns': Input should be" in typer_output


def test_every_file_written_is_named(url: str, tmp_path: Path) -> None:
    out, vllm, html = tmp_path / "run.json", tmp_path / "run.vllm.json", tmp_path / "run.html"
    code, output, exc = run("--url", url, "-n", "2", "--output-tokens", "2", "--output",
                            str(out), "--vllm-json", str(vllm), "--html", str(html))
    assert exc is None and code == 0, output
    assert out.exists() and vllm.exists() and html.exists()
    line = " ".join(output.split())  # a long line may wrap on the test's terminal
    assert f"Written: {out}, {vllm} (vLLM bench serve's result format), {html}" in line
    code, output, exc = run("report", str(out), "--csv", str(tmp_path / "run.csv"))
    assert exc is None and code == 0 and f"Written: {tmp_path / 'run.csv'}" in output


def test_a_rate_stage_explains_why_requests_per_s_is_below_the_offered_rate(url: str) -> None:
    code, output, _ = run("--url", url, "--rate", "200", "-n", "4", "--output-tokens", "2",
                          "--no-progress")
    assert code == 0 and "includes the drain after the last send" in " ".join(output.split())
    code, output, _ = run("--url", url, "-c", "1", "-n", "2", "--output-tokens", "2",
                          "--no-progress")
    assert code == 0 and "drain" not in output


def test_workers_asked_for_but_not_used_are_explained(url: str) -> None:
    code, output, _ = run("--url", url, "--workers", "2", "-c", "1", "-n", "2",
                          "--output-tokens", "2", "--no-progress")
    assert code == 0
    assert "--workers 2: 1 process (a concurrency stage needs a stream per process)" in " ".join(
        output.split())


def test_the_key_by_the_name_of_its_variable(
    mock_server: Callable[..., MockServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = mock_server(ttft_ms=1, itl_ms=1, api_key="sk-bench-secret")
    url = f"http://127.0.0.1:{server.port}/v1"
    monkeypatch.delenv("LLMDEPLOY_API_KEY", raising=False)
    monkeypatch.setenv("BENCH_KEY", "sk-bench-secret")
    code, output, exc = run("--url", url, "-n", "2", "--output-tokens", "2",
                            "--api-key-env", "BENCH_KEY", "--no-progress")
    assert exc is None and code == 0, output
    assert "sk-bench-secret" not in output
    _, _, exc = run("--url", url, "-n", "1", "--api-key-env", "NO_SUCH_VARIABLE_X")
    assert isinstance(exc, UsageError) and "NO_SUCH_VARIABLE_X" in str(exc)
    _, _, exc = run("--url", url, "-n", "1", "--api-key-env", "BENCH_KEY", "--api-key", "x")
    assert isinstance(exc, UsageError) and "once" in str(exc)
