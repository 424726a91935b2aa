"""The HTML report opened in headless Chromium: every plot is laid out with drawn marks.

The plots are drawn in the page by the inlined Vega / Vega-Lite; the page's own script records
per plot how many data marks it laid out with a non-empty box, and any error."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from llmdeploy.bench.config import (
    BenchConfig,
    LengthDist,
    LoadSpec,
    StopSpec,
    TargetSpec,
    WorkloadSpec,
)
from llmdeploy.bench.export import write_html
from llmdeploy.bench.mock_server import MockServer
from llmdeploy.bench.runner import run_bench

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.e2e
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package")
def test_plots_render_in_headless_chromium(
    mock_server: Callable[..., MockServer], tmp_path: Path
) -> None:
    server = mock_server(ttft_ms=3, itl_ms=1, error_rate=0.1)
    cfg = BenchConfig(
        target=TargetSpec(base_url=f"http://127.0.0.1:{server.port}"),
        workload=WorkloadSpec(input_tokens=LengthDist.parse(8), output_tokens=LengthDist.parse(6)),
        stages=[LoadSpec(mode="concurrency", value=1), LoadSpec(mode="concurrency", value=4)],
        stop=StopSpec(requests=20),
    )
    page = tmp_path / "report.html"
    write_html(run_bench(cfg), page)
    assert CHROMIUM is not None
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    m = re.search(r'<pre id="render-check">(.*?)</pre>', dom, re.S)
    assert m and m.group(1).strip(), "the page script did not run"
    plots = {p["id"]: p for p in json.loads(m.group(1))}
    assert set(plots) == {"cdf-ttft", "cdf-itl", "cdf-e2e", "cdf-tpot", "sweep-ttft",
                          "sweep-tpot", "ttft-time"}
    for pid, p in plots.items():
        assert p["width"] > 100 and p["height"] > 100, pid
        assert p["error"] is None, (pid, p["error"])
        assert p["marks"] > 0 and p["drawn"] == p["marks"], pid
