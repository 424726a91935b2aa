"""Planned vs actual KV cache: the comparison (core/kv_report.py) and the plan labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmdeploy.constants import LABEL_PLAN_KV_BYTES, LABEL_PLAN_KV_TOKENS, LABEL_SPEC_HASH
from llmdeploy.core.kv_report import KvCheck, PlannedKv, ServerKv, compared_unit
from llmdeploy.core.labels import DeploymentLabels
from llmdeploy.core.sizes import MIB
from llmdeploy.deploy.plan import plan_deployment
from llmdeploy.profiles.schema import Profile


def check(planned: int | None, actual: int | None, *, backend: str = "llamacpp") -> KvCheck:
    unit = compared_unit(backend)
    plan = None if planned is None else PlannedKv(**{unit: planned})  # type: ignore[arg-type]
    server = None if actual is None else ServerKv(**{unit: actual})  # type: ignore[arg-type]
    return KvCheck(backend, unit, plan, server)


def test_llamacpp_and_ollama_compare_bytes_vllm_tokens() -> None:
    assert compared_unit("llamacpp") == "bytes" and compared_unit("ollama") == "bytes"
    assert compared_unit("vllm") == "tokens"


def test_agreeing_figures() -> None:
    same = check(45 * MIB, 45 * MIB)
    assert same.difference == 0.0 and same.differs is False
    assert same.summary() == "server 45.0 MiB, planned 45.0 MiB (+0.0%)"


@pytest.mark.parametrize(
    ("actual", "differs"),
    [(110, False), (90, False), (111, True), (89, True), (200, True), (0, True)],
)
def test_more_than_ten_percent_either_way_is_flagged(actual: int, differs: bool) -> None:
    assert check(100, actual).differs is differs


def test_flagged_summary_says_by_how_much() -> None:
    text = check(28.5 * MIB, 36 * MIB).summary()  # type: ignore[arg-type]
    assert text == "server 36.0 MiB, planned 28.5 MiB (+26.3%, more than 10% off the plan)"


def test_missing_figures_are_said_never_compared() -> None:
    none_from_server = check(45 * MIB, None)
    assert none_from_server.differs is None and none_from_server.difference is None
    assert none_from_server.summary() == "server: not reported, planned 45.0 MiB"
    no_plan = check(None, 45 * MIB)
    assert no_plan.differs is None
    assert no_plan.summary() == "server 45.0 MiB, planned: not recorded"
    zero_plan = check(0, 0)
    assert zero_plan.differs is False and zero_plan.difference is None


def test_vllm_summary_in_tokens_with_the_memory_beside() -> None:
    found = KvCheck("vllm", "tokens", PlannedKv(bytes=2**30, tokens=46_592),
                    ServerKv(bytes=2**30, tokens=46_592, lines=("CPU KV cache size: 46,592",)))
    assert found.summary() == (
        "server 46,592 tokens, planned 46,592 tokens (+0.0%); the server gave its cache 1.00 GiB"
    )
    data = found.to_dict()
    assert data["compared"] == "tokens" and data["planned"] == data["actual"] == 46_592
    assert data["actual_bytes"] == 2**30 and data["differs"] is False
    assert data["server_lines"] == ["CPU KV cache size: 46,592"]


# -- labels ------------------------------------------------------------------------------------


def labels(**planned: int) -> DeploymentLabels:
    return DeploymentLabels(
        deployment="d", profile="p", model="m", served_model="s", backend="llamacpp",
        accelerator="cpu", endpoint="http://127.0.0.1:1", health_path="/health", api="openai",
        planned_kv=PlannedKv(**planned) if planned else None,  # type: ignore[arg-type]
    )


def test_planned_figures_round_trip_through_labels() -> None:
    record = labels(bytes=47_185_920, tokens=2048)
    raw = record.to_labels()
    assert raw[LABEL_PLAN_KV_BYTES] == "47185920" and raw[LABEL_PLAN_KV_TOKENS] == "2048"
    assert DeploymentLabels.from_labels(raw) == record
    assert LABEL_PLAN_KV_BYTES not in labels().to_labels()


def test_unreadable_plan_labels_read_as_missing() -> None:
    raw = labels().to_labels()
    assert DeploymentLabels.from_labels(raw).planned_kv is None  # type: ignore[union-attr]
    for bad in ("", "-5", "4.5", "lots"):
        found = DeploymentLabels.from_labels({**raw, LABEL_PLAN_KV_BYTES: bad})
        assert found is not None and found.planned_kv is None
    partial = DeploymentLabels.from_labels({**raw, LABEL_PLAN_KV_TOKENS: "100"})
    assert partial is not None and partial.planned_kv == PlannedKv(bytes=None, tokens=100)


def test_planned_figures_are_labels_but_not_part_of_the_spec_hash(tmp_path: Path) -> None:
    """A planner update changes the figures; it must not make `up` replace a running server."""
    profile = Profile.model_validate({
        "name": "unit", "backend": {"kind": "llamacpp"}, "model": {"ref": "file:///m.gguf"},
    })
    plain = plan_deployment(profile, model_dir=tmp_path, model_filename="m.gguf")
    planned = plan_deployment(profile, model_dir=tmp_path, model_filename="m.gguf",
                              planned_kv=PlannedKv(bytes=123, tokens=4096))
    assert plain.spec_hash == planned.spec_hash
    assert planned.run.labels[LABEL_SPEC_HASH] == plain.spec_hash
    assert planned.run.labels[LABEL_PLAN_KV_BYTES] == "123"
    assert LABEL_PLAN_KV_BYTES not in plain.run.labels
    assert planned.labels.planned_kv == PlannedKv(bytes=123, tokens=4096)
