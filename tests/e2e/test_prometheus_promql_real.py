"""Every PromQL expression the Kubernetes export renders, against a real Prometheus scraping a
real server under load.

For llama.cpp (the tiny model, Podman) and vLLM on the CPU (slow: ~45 s to healthy): ``up``,
load with ``llmdeploy bench`` (its report with SLOs also feeds ``--from-bench``), a real
Prometheus (Debian's ``prometheus``, 127.0.0.1, 1 s scrapes) scraping ``/metrics`` under the job
name the Prometheus Operator would give the Service, loading the rendered alert rules. Then each
query of the export (the KEDA trigger, every alert's signal, every dashboard target) must return
data through ``/api/v1/query``, each full alert expression must evaluate, every rule must be
healthy in Prometheus, and ``promtool check rules`` must accept the rules file. A query on a
metric name the server does not export returns no data and fails the test.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_helpers import cli_in, engine_ready, free_port, leftovers, unavailable

from llmdeploy.bench.capacity import read_capacity
from llmdeploy.deploy.export import ExportRequest, export_inputs
from llmdeploy.profiles.loader import resolve
from llmdeploy.render.inputs import ExportInputs
from llmdeploy.render.kube import names
from llmdeploy.render.kube.autoscaling import autoscaling_files
from llmdeploy.render.kube.observability import observability_files

pytestmark = pytest.mark.e2e

ENGINE = "podman"
ALERT = re.compile(r"^(?P<signal>.+) (?P<op>==|!=|>=|<=|>|<) (?P<threshold>[-+0-9.e]+)$")
# parent profile, extra profile lines, CLI timeout of `up`, bench arguments
BACKENDS: dict[str, tuple[str, str, int, tuple[str, ...]]] = {
    "llamacpp": (
        "edge-podman",
        "health: {timeout_s: 120}\n",
        600,
        ("-c", "1,4", "-n", "8", "--output-tokens", "24"),
    ),
    "vllm": (
        "cpu-vllm",
        f"engine: {ENGINE}\n",
        2400,
        ("-c", "1,4", "-n", "8", "--output-tokens", "16"),
    ),
}


@dataclass
class Served:
    """A running deployment after load, the bench report and the export rendered from both."""

    backend: str
    name: str
    inputs: ExportInputs
    files: dict[str, dict[str, Any]]  # file name -> the YAML document
    report: Path
    prometheus: Prometheus
    rules_file: Path


class Prometheus:
    """A real Prometheus on 127.0.0.1 with its own storage, scraping one target every second."""

    def __init__(self, folder: Path, job: str, target: str, metrics_path: str, rules: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "scrape_configs": [
                {
                    "job_name": job,
                    "metrics_path": metrics_path,
                    "static_configs": [{"targets": [target]}],
                }
            ],
        }
        config_file = folder / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        self.log = folder / "prometheus.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [
                    "prometheus", f"--config.file={config_file}",
                    f"--storage.tsdb.path={folder / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-2000:]
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer,
            ):
                if answer.status == 200:
                    return
            time.sleep(0.3)
        raise AssertionError(f"Prometheus not ready: {self.log.read_text()[-2000:]}")

    def get(self, path: str, **params: str) -> dict[str, Any]:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=30) as answer:
            data: dict[str, Any] = json.load(answer)
        return data

    def query(self, promql: str) -> dict[str, Any]:
        try:
            return self.get("/api/v1/query", query=promql)
        except urllib.error.HTTPError as exc:  # a bad query answers 400 with the reason
            return dict(json.load(exc))

    def wait_scraped(self, metric: str, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.query(metric)["data"]["result"]:
                return
            time.sleep(0.5)
        raise AssertionError(f"Prometheus never scraped {metric}: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)


def _prerequisites(backend: str) -> None:
    reason = engine_ready(ENGINE)
    if reason:
        unavailable(reason)
    for tool in ("prometheus", "promtool"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} is not installed (apt-get install prometheus)")
    if backend == "vllm":
        import importlib.util

        for module in ("torch", "transformers", "accelerate", "gguf", "safetensors"):
            if importlib.util.find_spec(module) is None:
                unavailable(f"{module} is needed to convert the GGUF for vLLM")


def _rules_file(files: dict[str, dict[str, Any]], folder: Path) -> Path:
    """The PrometheusRule's spec.groups as a Prometheus rules file."""
    path = folder / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": files["prometheusrule.yaml"]["spec"]["groups"]}))
    return path


@pytest.fixture(
    scope="module",
    params=["llamacpp", pytest.param("vllm", marks=pytest.mark.slow)],
)
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    backend = str(request.param)
    _prerequisites(backend)
    parent, extra, up_timeout, bench_args = BACKENDS[backend]
    folder = tmp_path_factory.mktemp(f"promql-{backend}")
    cli = cli_in(folder)
    name = f"e2e-prom-{backend}-{uuid.uuid4().hex[:6]}"
    port = free_port()
    profile_file = folder / f"{name}.yaml"
    profile_file.write_text(
        f"name: {name}\nextends: {parent}\nserver: {{port: {port}}}\n{extra}"
        "scale: {min_replicas: 1, max_replicas: 4}\n"
    )
    prometheus: Prometheus | None = None
    try:
        up = cli("up", "--profile-file", str(profile_file), "--json", timeout=up_timeout)
        assert up.returncode == 0, up.stderr + up.stdout

        # the export first without a measurement, to give Prometheus its rules before the load
        profile = resolve(profile_file=profile_file, env=cli.env).profile
        plain = export_inputs(ExportRequest(profile=profile, target="kube"))
        files = _documents(plain)
        rules = _rules_file(files, folder)
        metrics_path = plain.plan.launch.metrics_path
        assert metrics_path is not None
        prometheus = Prometheus(
            folder, names.base_name(plain), f"127.0.0.1:{port}", metrics_path, rules
        )
        prometheus.wait_scraped(f'up{{job="{names.base_name(plain)}"}}')

        report = folder / "run.json"
        bench = cli("bench", "--deployment", name, *bench_args, "--slo", "ttft_ms=20000",
                    "--no-progress", "--output", str(report), timeout=900)
        assert bench.returncode == 0, bench.stderr + bench.stdout
        time.sleep(3)  # a few more scrapes after the last request

        inputs = export_inputs(
            ExportRequest(profile=profile, target="kube", from_bench=report)
        )
        files = _documents(inputs)
        rules = _rules_file(files, folder)  # same rules, now with the measured target
        yield Served(backend, name, inputs, files, report, prometheus, rules)
    finally:
        if prometheus is not None:
            prometheus.stop()
        down = cli("down", name, timeout=300)
        assert down.returncode == 0, down.stderr
        assert leftovers(ENGINE, name) == []


def _documents(inputs: ExportInputs) -> dict[str, dict[str, Any]]:
    rendered = [*autoscaling_files(inputs), *observability_files(inputs)]
    return {f.path: yaml.safe_load(f.content) for f in rendered}


def rendered_queries(files: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """(where, PromQL) of every query the export renders. Alert expressions count with their
    signal (the part before the comparison), which must return data whenever the server is
    scraped; the whole expression is checked separately."""
    queries: list[tuple[str, str]] = []
    for trigger in files["scaledobject.yaml"]["spec"]["triggers"]:
        if trigger["type"] == "prometheus":
            queries.append(("KEDA trigger", trigger["metadata"]["query"]))
    for group in files["prometheusrule.yaml"]["spec"]["groups"]:
        for rule in group["rules"]:
            match = ALERT.match(rule["expr"])
            assert match, f"alert {rule['alert']}: {rule['expr']!r} is not SIGNAL OP NUMBER"
            queries.append((f"alert {rule['alert']}", match["signal"]))
    configmap = files["grafana-dashboard.yaml"]
    (dashboard_json,) = configmap["data"].values()
    for panel in json.loads(dashboard_json)["panels"]:
        for target in panel.get("targets", []):
            queries.append((f"panel {panel['title']!r} {target['refId']}", target["expr"]))
    return queries


def test_every_rendered_query_returns_data(served: Served) -> None:
    queries = rendered_queries(served.files)
    panels = [q for where, q in queries if where.startswith("panel")]
    assert len(panels) >= 8, queries  # TTFT/ITL/tokens/load/KV/... are all there
    empty, undefined = [], []
    for where, promql in queries:
        answer = served.prometheus.query(promql)
        assert answer["status"] == "success", f"{where}: {promql}: {answer}"
        result = answer["data"]["result"]
        if not result:
            empty.append(f"{where}: {promql}")
        # rates and quantiles over a window that held the load are numbers, not NaN (a NaN
        # would mean a ratio of counters that never moved, or an empty histogram)
        elif "rate(" in promql and any(not math.isfinite(float(r["value"][1])) for r in result):
            undefined.append(f"{where}: {promql} = {result}")
    assert not empty, "queries without data (a metric name the server does not export?):\n" + (
        "\n".join(empty)
    )
    assert not undefined, "queries without a number after the load:\n" + "\n".join(undefined)


def test_alert_expressions_evaluate_and_load_in_prometheus(served: Served) -> None:
    for group in served.files["prometheusrule.yaml"]["spec"]["groups"]:
        for rule in group["rules"]:
            answer = served.prometheus.query(rule["expr"])
            assert answer["status"] == "success", f"{rule['alert']}: {answer}"
    # Prometheus evaluated the rendered rules itself, every second, without an error
    loaded = served.prometheus.get("/api/v1/rules")["data"]["groups"]
    rules = [r for g in loaded for r in g["rules"]]
    expected = {r["alert"] for g in served.files["prometheusrule.yaml"]["spec"]["groups"]
                for r in g["rules"]}
    assert {r["name"] for r in rules} == expected
    for rule in rules:
        assert rule["health"] == "ok", rule
    # the server answered throughout: the down alert is not pending or firing
    down = next(r for r in rules if r["name"] == "LlmdeployServerDown")
    assert down["state"] == "inactive"


def test_promtool_accepts_the_rules(served: Served) -> None:
    check = subprocess.run(["promtool", "check", "rules", str(served.rules_file)],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS" in check.stdout + check.stderr


def test_the_trigger_saw_the_load_and_uses_the_measured_target(served: Served) -> None:
    trigger = served.files["scaledobject.yaml"]["spec"]["triggers"][0]
    # under `bench -c 4` the trigger's query (requests in flight) rose above 0 ...
    peak = served.prometheus.query(f"max_over_time(({trigger['metadata']['query']})[5m:1s])")
    assert float(peak["data"]["result"][0]["value"][1]) >= 1, peak
    # ... and the threshold is what the bench report measured per replica
    capacity = read_capacity(served.report)
    assert float(trigger["metadata"]["threshold"]) == capacity.per_replica
    assert capacity.per_replica in (1.0, 4.0)  # the stages of the run: -c 1,4
    assert str(served.report) in served.inputs.queue_target_source
    # the TTFT alert (vLLM) takes the run's SLO: --slo ttft_ms=20000
    ttft = [r for g in served.files["prometheusrule.yaml"]["spec"]["groups"] for r in g["rules"]
            if r["alert"] == "LlmdeployTtftP95OverSlo"]
    if served.backend == "vllm":
        assert ttft and ttft[0]["expr"].endswith("> 20")
    else:
        assert not ttft  # llama.cpp exports no TTFT histogram


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-v"]))
