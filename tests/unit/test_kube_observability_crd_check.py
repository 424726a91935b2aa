"""Custom resources against their CRDs' schemas (deploy/crd_check.py), offline."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from kube_obs_inputs import docs, inputs

from llmdeploy.deploy.crd_check import (
    CUSTOM_KINDS,
    KNOWN_API_VERSIONS,
    SCHEMA_DIR,
    validate_custom_resource,
)
from llmdeploy.render.kube.autoscaling import autoscaling_files
from llmdeploy.render.kube.observability import observability_files


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, Any]]:
    data = inputs("prod-vllm", scale={"min_replicas": 1, "max_replicas": 4})
    return docs([*autoscaling_files(data), *observability_files(data)])


def test_the_vendored_schemas_cover_every_custom_kind() -> None:
    for kind, versions in KNOWN_API_VERSIONS.items():
        for api_version in versions:
            group, _, version = api_version.partition("/")
            record = json.loads((SCHEMA_DIR / f"{group}_{kind}_{version}.json").read_text())
            assert record["kind"] == kind and record["schema"]["type"] == "object"
            assert record["source"]  # which upstream release it came from
    assert set(KNOWN_API_VERSIONS) == CUSTOM_KINDS == {"ScaledObject", "ServiceMonitor",
                                                        "PrometheusRule"}


def test_rendered_objects_are_valid(rendered: dict[str, dict[str, Any]]) -> None:
    for name in ("scaledobject.yaml", "servicemonitor.yaml", "prometheusrule.yaml"):
        assert validate_custom_resource(rendered[name]) == [], name


def broken(rendered: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    return copy.deepcopy(rendered[name])


def test_an_unknown_field_is_named_with_its_path(rendered: dict[str, dict[str, Any]]) -> None:
    doc = broken(rendered, "scaledobject.yaml")
    doc["spec"]["triggers"][0]["metdata"] = doc["spec"]["triggers"][0].pop("metadata")
    problems = validate_custom_resource(doc)
    assert "ScaledObject/llmdeploy-prod-vllm: .spec.triggers[0]: 'metadata' is required" in problems
    assert any(p.startswith("ScaledObject/llmdeploy-prod-vllm: .spec.triggers[0].metdata: "
                            "unknown field metdata") for p in problems), problems


def test_a_number_where_keda_wants_a_string(rendered: dict[str, dict[str, Any]]) -> None:
    doc = broken(rendered, "scaledobject.yaml")
    doc["spec"]["triggers"][0]["metadata"]["threshold"] = 5  # KEDA reads metadata as strings
    assert validate_custom_resource(doc) == [
        "ScaledObject/llmdeploy-prod-vllm: .spec.triggers[0].metadata.threshold: "
        "5 is not of type 'string'"]


def test_min_above_max_replicas_is_caught(rendered: dict[str, dict[str, Any]]) -> None:
    doc = broken(rendered, "scaledobject.yaml")
    doc["spec"]["minReplicaCount"] = 9
    assert validate_custom_resource(doc) == [
        "ScaledObject/llmdeploy-prod-vllm: .spec.minReplicaCount: 9 is above maxReplicaCount (4)"]


def test_a_bad_duration_in_a_rule(rendered: dict[str, dict[str, Any]]) -> None:
    doc = broken(rendered, "prometheusrule.yaml")
    doc["spec"]["groups"][0]["rules"][1]["for"] = "15 minutes"
    (problem,) = validate_custom_resource(doc)
    assert problem.startswith(
        "PrometheusRule/llmdeploy-prod-vllm: .spec.groups[0].rules[1].for: '15 minutes' does not "
        "match")


def test_a_bad_name_and_label(rendered: dict[str, dict[str, Any]]) -> None:
    doc = broken(rendered, "servicemonitor.yaml")
    doc["metadata"]["name"] = "LLM_deploy"
    doc["metadata"]["labels"]["team"] = "a b"
    problems = validate_custom_resource(doc)
    assert ("ServiceMonitor/LLM_deploy: .metadata.name: 'LLM_deploy' is not a DNS subdomain "
            "(lowercase letters, digits, '-' and '.', at most 253)") in problems
    assert "ServiceMonitor/LLM_deploy: .metadata.labels.team: 'a b' is not a valid label value" \
        in problems


def test_an_unknown_api_version_is_named(rendered: dict[str, dict[str, Any]]) -> None:
    doc = broken(rendered, "servicemonitor.yaml")
    doc["apiVersion"] = "monitoring.coreos.com/v2"
    assert validate_custom_resource(doc) == [
        "ServiceMonitor/llmdeploy-prod-vllm: .apiVersion: 'monitoring.coreos.com/v2' is not a "
        "known version of ServiceMonitor (known: monitoring.coreos.com/v1)"]


def test_a_kind_it_does_not_check_is_said(rendered: dict[str, dict[str, Any]]) -> None:
    doc = broken(rendered, "grafana-dashboard.yaml")  # a ConfigMap: kube_check's business
    (problem,) = validate_custom_resource(doc)
    assert problem.startswith("ConfigMap/llmdeploy-prod-vllm-dashboard: .kind: not a custom "
                              "resource llmdeploy checks")


def test_a_missing_spec(rendered: dict[str, dict[str, Any]]) -> None:
    doc = broken(rendered, "scaledobject.yaml")
    doc["spec"] = {"triggers": []}
    problems = validate_custom_resource(doc)
    assert "ScaledObject/llmdeploy-prod-vllm: .spec: 'scaleTargetRef' is required" in problems
    assert any(".spec.triggers: [] should be non-empty" in p for p in problems), problems
