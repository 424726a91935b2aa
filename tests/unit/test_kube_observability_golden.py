"""Autoscaling and observability files of the Kubernetes export against golden files.

``tests/golden/<case>/kube-observability/`` holds what ``autoscaling_files`` and
``observability_files`` render for every built-in profile (with a replica range where the
built-in keeps one replica, so the autoscaler shows). Regenerate with UPDATE_GOLDEN=1 after a
deliberate change, and read the diff. The rendered rules also pass ``promtool check rules``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kube_obs_inputs import GIB, inputs
from test_golden_files import UPDATE, check

from llmdeploy.deploy.crd_check import CUSTOM_KINDS, validate_custom_resource
from llmdeploy.render.inputs import ExportInputs
from llmdeploy.render.kube.autoscaling import autoscaling_files
from llmdeploy.render.kube.observability import observability_files

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
MEASURED = (
    "run.json: concurrency=12 (12 in flight) met the SLOs ttft_ms=800 for 95% of requests; "
    "concurrency=16 (16) did not: 71% of requests met the SLOs (needs 95%)"
)

# case -> (built-in profile, ExportInputs figures, profile overrides)
CASES: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    # measured: --replicas 2:8 --from-bench run.json, in a namespace kube-prometheus-stack watches
    "prod-vllm": ("prod-vllm",
                  {"weights_bytes": 15 * GIB, "queue_target": 12.0, "queue_target_source": MEASURED,
                   "ttft_slo_ms": 800.0},
                  {"scale": {"min_replicas": 2, "max_replicas": 8},
                   "kubernetes": {"namespace": "llm", "labels": {"release": "kube-prometheus-stack"}}}),
    # the HPA fallback on a GPU server
    "prod-vllm-hpa": ("prod-vllm", {"weights_bytes": 15 * GIB},
                      {"scale": {"min_replicas": 1, "max_replicas": 4, "autoscaler": "hpa"}}),
    "cpu-vllm": ("cpu-vllm", {}, {"scale": {"min_replicas": 1, "max_replicas": 4}}),
    # scale to zero (opt-in), with the cold start it costs
    "edge-podman": ("edge-podman", {"weights_bytes": 98_362_432},
                    {"scale": {"min_replicas": 0, "max_replicas": 3}}),
    "cpu-docker": ("cpu-docker", {}, {}),  # the built-in as it is: one replica, no autoscaler
    "local-ollama": ("local-ollama", {}, {"scale": {"min_replicas": 1, "max_replicas": 3}}),
}


def case_inputs(case: str) -> ExportInputs:
    builtin, figures, overrides = CASES[case]
    return inputs(builtin, **figures, **overrides)


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_file_matches_golden(case: str) -> None:
    data = case_inputs(case)
    files = [*autoscaling_files(data), *observability_files(data)]
    folder = GOLDEN / case / "kube-observability"
    for item in files:
        check(folder / item.path, item.content)
    if UPDATE:
        for stale in folder.glob("*"):
            if stale.name not in {f.path for f in files}:
                stale.unlink()
    kept = {p.name for p in folder.glob("*")} if folder.is_dir() else set()
    assert kept == {f.path for f in files}  # no stale golden file


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_custom_resource_validates_against_its_crd(case: str) -> None:
    data = case_inputs(case)
    for item in [*autoscaling_files(data), *observability_files(data)]:
        doc = yaml.safe_load(item.content)
        if doc["kind"] in CUSTOM_KINDS:
            assert validate_custom_resource(doc) == [], item.path


@pytest.mark.parametrize("case", ["prod-vllm", "edge-podman"])
def test_promtool_accepts_the_rules(case: str, tmp_path: Path) -> None:
    if shutil.which("promtool") is None:
        if os.environ.get("LLMDEPLOY_E2E") == "require":
            pytest.fail("promtool is missing (apt-get install prometheus)")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    files = {f.path: f for f in observability_files(case_inputs(case))}
    rule = yaml.safe_load(files["prometheusrule.yaml"].content)
    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    check_rules = subprocess.run(["promtool", "check", "rules", str(rules_file)],
                                 capture_output=True, text=True, timeout=60)
    assert check_rules.returncode == 0, check_rules.stdout + check_rules.stderr
    expected = sum(len(g["rules"]) for g in rule["spec"]["groups"])
    assert f"SUCCESS: {expected} rules found" in check_rules.stdout
