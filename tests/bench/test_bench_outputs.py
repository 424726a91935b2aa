"""Every output renders the same summary; the HTML page is escaped; the bench layer stands
beside deploy/, not above it; a deployment found at the CLI edge is what gets benchmarked."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from llmdeploy.bench.columns import METRICS, SUMMARY_COLUMNS
from llmdeploy.bench.export import render_html
from llmdeploy.bench.gates import METRIC_NAMES
from llmdeploy.bench.mock_server import MockServer
from llmdeploy.bench.report import load_report
from llmdeploy.cli import bench
from llmdeploy.errors import UsageError

runner = CliRunner()


def run(*args: str) -> tuple[int, str, BaseException | None]:
    result = runner.invoke(bench.app, list(args))
    exc = result.exception if not isinstance(result.exception, SystemExit) else None
    return result.exit_code, result.output, exc


@pytest.fixture
def saved(mock_server: Callable[..., MockServer], tmp_path: Path) -> Path:
    server = mock_server(ttft_ms=2, itl_ms=1, error_rate=0.2, model="<b>m&m</b>")
    out = tmp_path / "run.json"
    code, output, exc = run("--url", f"http://127.0.0.1:{server.port}/v1", "-c", "1,2",
                            "-n", "10", "--output-tokens", "4", "--slo", "ttft_ms=5000",
                            "--output", str(out))
    assert exc is None and code == 0, output
    return out


def test_console_html_and_compare_show_the_same_summary_rows(saved: Path) -> None:
    report = load_report(saved)
    # goodput included (the run had an SLO); the rate error only exists for rate stages
    labels = [c.label for c in SUMMARY_COLUMNS if c.label != "client rate error"]
    _, console, _ = run("report", str(saved))
    console_rows = [line.split("│")[1].strip() for line in console.splitlines()
                    if line.count("│") >= 3 and line.split("│")[1].strip() not in ("", "metric")]
    assert console_rows == labels
    page = render_html(report)
    html_rows = [cell.split("</td>")[0] for cell in page.split("<tr><td>")[1:]]
    assert html_rows[: len(labels)] == labels
    _, compared, _ = run("compare", str(saved), str(saved), "--json")
    rows = json.loads(compared)["rows"]
    numeric = [c.label for c in SUMMARY_COLUMNS if c.metric is not None and c.label in labels]
    assert [r["metric"] for r in rows if r["stage"] == "concurrency=1"] == numeric
    assert all(r["key"] in METRIC_NAMES and r["delta_pct"][1] in (0, None) for r in rows)


def test_every_named_metric_is_a_gate_a_csv_column_or_both() -> None:
    assert set(METRIC_NAMES) == set(METRICS)
    assert {"ttft_p99_ms", "itl_p50_ms", "goodput_ratio", "error_rate"} <= set(METRICS)


def test_html_escapes_what_the_server_and_user_wrote(saved: Path) -> None:
    report = load_report(saved)
    page = render_html(report)
    assert "<b>m&m</b>" not in page and "&lt;b&gt;m&amp;m&lt;/b&gt;" in page
    report.stages[0].summary.error_messages["http_500"] = "</script><script>alert(1)</script>"
    page = render_html(report)
    assert "<script>alert(1)" not in page


def test_bench_domain_imports_nothing_from_deploy_cli_or_rich() -> None:
    code = (
        "import importlib, pkgutil, sys, llmdeploy.bench as b\n"
        "for m in pkgutil.walk_packages(b.__path__, 'llmdeploy.bench.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n.startswith(('llmdeploy.deploy', "
        "'llmdeploy.cli', 'llmdeploy.render', 'typer', 'rich')))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "[]"


def test_profile_benchmarks_the_deployment_found_at_the_cli_edge(
    mock_server: Callable[..., MockServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    import llmdeploy.deploy.discovery as discovery

    server = mock_server(ttft_ms=1, itl_ms=1, model="served-name", strict_model=True)
    calls: list[dict[str, Any]] = []

    def find_deployment(**kw: Any) -> Any:
        calls.append(kw)
        return SimpleNamespace(base_url=f"http://127.0.0.1:{server.port}", api="openai",
                               served_model="served-name", metrics_path=None,
                               backend="llamacpp")

    monkeypatch.setattr(discovery, "find_deployment", find_deployment)
    code, output, exc = run("--profile", "edge", "-n", "2", "--output-tokens", "2", "--json")
    assert exc is None and code == 0, output
    data = json.loads(output)
    assert calls == [{"profile": "edge", "backend": None, "name": None}]
    assert data["model"] == "served-name" and data["config"]["target"]["backend"] == "llamacpp"
    assert data["config"]["target"]["api_source"] == "deployment"
    assert data["stages"][0]["summary"]["ok"] == 2


def test_an_unknown_event_loop_is_a_usage_error(mock_server: Callable[..., MockServer]) -> None:
    server = mock_server(ttft_ms=0, itl_ms=0)
    _, _, exc = run("--url", f"http://127.0.0.1:{server.port}/v1", "-n", "1", "--loop", "trio")
    assert isinstance(exc, UsageError) and "--loop must be one of" in exc.message
