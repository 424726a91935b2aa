"""--from-bench: the autoscaling target from a saved bench sweep (bench/capacity.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmdeploy.bench.capacity import capacity_of, queue_target_from_report, read_capacity
from llmdeploy.bench.config import BenchConfig, LoadSpec, TargetSpec
from llmdeploy.bench.metrics import summarize
from llmdeploy.bench.report import BenchReport, EnvironmentInfo, RequestRecord, StageResult
from llmdeploy.errors import BenchError

ENV = EnvironmentInfo(hostname="h", platform="p", python="3", cpu_count=2,
                      llmdeploy_version="0", event_loop="x")


def _records(ttfts_s: list[float], errors: int = 0, overlap: int = 1) -> list[RequestRecord]:
    """Requests with these TTFTs (1 s long each, ``overlap`` in flight at a time), then
    ``errors`` failed ones."""
    records = []
    for i, ttft in enumerate(ttfts_s):
        start = float(i // overlap)
        records.append(RequestRecord(
            index=i, start_s=start, end_s=start + 1.0, token_times_s=[start + ttft, start + 0.9],
            output_tokens=2, token_source="usage"))
    for j in range(errors):
        start = float(len(ttfts_s) // overlap + j)
        records.append(RequestRecord(index=len(ttfts_s) + j, start_s=start, end_s=start + 0.1,
                                     error="http_500"))
    return records


def _stage(load: LoadSpec, records: list[RequestRecord], slo: dict[str, float],
           aborted: str | None = None) -> StageResult:
    return StageResult(name=load.name, load=load, started_s=0, ended_s=10, aborted=aborted,
                       records=records, summary=summarize(records, slo or None))


def _report(stages: list[tuple[LoadSpec, list[RequestRecord]]], slo: dict[str, float] | None = None,
            fail_on: list[str] | None = None) -> BenchReport:
    slo = {} if slo is None else slo
    config = BenchConfig(target=TargetSpec(base_url="http://x"), slo=slo, fail_on=fail_on or [])
    return BenchReport(created_at="now", config=config, environment=ENV, model="m",
                       stages=[_stage(load, recs, slo) for load, recs in stages])


def conc(n: int) -> LoadSpec:
    return LoadSpec(mode="concurrency", value=n)


FAST = [0.1] * 20
SLOW = [2.0] * 20


def test_the_highest_concurrency_that_met_the_slos_is_the_target() -> None:
    report = _report([(conc(1), _records(FAST)), (conc(8), _records(FAST)),
                      (conc(16), _records(SLOW)), (conc(32), _records(SLOW))],
                     slo={"ttft_ms": 500})
    capacity = capacity_of(report, label="run.json")
    assert capacity.per_replica == 8
    assert capacity.source.startswith("run.json: concurrency=8 (8 in flight) met the SLOs ttft_ms=500")
    assert "concurrency=16 (16) did not: 0% of requests met the SLOs (needs 95%)" in capacity.source
    assert capacity.ttft_slo_ms == 500  # the TTFT alert's threshold


def test_a_noisy_pass_above_the_first_failure_does_not_count() -> None:
    report = _report([(conc(1), _records(FAST)), (conc(4), _records(SLOW)),
                      (conc(8), _records(FAST))], slo={"ttft_ms": 500})
    assert capacity_of(report).per_replica == 1


def test_95_percent_of_requests_within_the_slos_is_enough() -> None:
    # 19 of 20 requests in time (95 %) passes; 18 of 20 (90 %) does not
    report = _report([(conc(2), _records([0.1] * 19 + [2.0])),
                      (conc(4), _records([0.1] * 18 + [2.0] * 2))], slo={"ttft_ms": 500})
    capacity = capacity_of(report)
    assert capacity.per_replica == 2
    assert "90% of requests met the SLOs" in capacity.source


def test_failed_requests_count_against_the_slos() -> None:
    report = _report([(conc(1), _records(FAST)), (conc(4), _records(FAST[:15], errors=5))],
                     slo={"ttft_ms": 500})
    assert capacity_of(report).per_replica == 1


def test_a_rate_stage_counts_with_the_concurrency_it_measured() -> None:
    # a rate stage of 1 s requests, three in flight at a time: Little's law says 3
    rate = LoadSpec(mode="rate", value=3.0)
    report = _report([(conc(1), _records(FAST)), (rate, _records(FAST[:12], overlap=3)),
                      (conc(32), _records(SLOW))], slo={"ttft_ms": 500})
    capacity = capacity_of(report)
    assert capacity.per_replica == pytest.approx(3.0, abs=0.01)
    assert "rate=3/s constant" in capacity.source


def test_gates_of_the_run_decide_too() -> None:
    # no --slo, but a --fail-on gate: concurrency=4 crosses ttft_p95_ms>800
    report = _report([(conc(1), _records(FAST)), (conc(4), _records(SLOW))],
                     fail_on=["ttft_p95_ms>800"])
    capacity = capacity_of(report)
    assert capacity.per_replica == 1
    assert "gate ttft_p95_ms = 2000 > 800" in capacity.source
    assert capacity.ttft_slo_ms == 800  # a p95 gate is the TTFT alert's bound


def test_every_stage_passing_gives_the_highest_tested_and_says_so() -> None:
    report = _report([(conc(1), _records(FAST)), (conc(4), _records(FAST))], slo={"e2e_ms": 5000})
    capacity = capacity_of(report)
    assert capacity.per_replica == 4
    assert "every stage did, so one replica may serve more" in capacity.source
    assert capacity.ttft_slo_ms is None  # no TTFT bound in this run


def test_an_aborted_stage_did_not_meet_the_slos() -> None:
    report = _report([(conc(1), _records(FAST)), (conc(4), _records(FAST))], slo={"ttft_ms": 500})
    report.stages[1].aborted = "timeout"
    capacity = capacity_of(report)
    assert capacity.per_replica == 1
    assert "aborted (timeout)" in capacity.source


def test_a_run_without_slos_or_gates_is_refused_naming_the_file() -> None:
    report = _report([(conc(1), _records(FAST)), (conc(4), _records(FAST))])
    with pytest.raises(BenchError, match=r"run\.json was run without SLOs \(--slo\) or gates"):
        capacity_of(report, label="run.json")


def test_no_stage_meeting_the_slos_is_refused() -> None:
    report = _report([(conc(1), _records(SLOW)), (conc(4), _records(SLOW))], slo={"ttft_ms": 500})
    with pytest.raises(BenchError, match="no stage met the run's SLOs, not even the lowest load"):
        capacity_of(report, label="run.json")


def test_a_saved_report_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    _report([(conc(1), _records(FAST)), (conc(6), _records(FAST)), (conc(12), _records(SLOW))],
            slo={"ttft_ms": 500, "tpot_ms": 1000}).save(path)
    target, source = queue_target_from_report(path)
    assert target == 6
    assert source.startswith(f"{path}: concurrency=6")
    assert read_capacity(path).ttft_slo_ms == 500


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read report"), ("{}", "not an llmdeploy bench report"),
     ('{"schema_version": 2', "truncated")],
)
def test_an_unusable_file_is_a_bench_error_naming_it(tmp_path: Path, content: str | None,
                                                     message: str) -> None:
    path = tmp_path / "run.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(BenchError, match=message) as caught:
        queue_target_from_report(path)
    assert str(path) in caught.value.message


def test_an_empty_sweep_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    _report([], slo={"ttft_ms": 500}).save(path)
    with pytest.raises(BenchError, match=r"run\.json holds no stage"):
        queue_target_from_report(path)


def test_export_takes_the_target_and_ttft_slo_from_the_report(tmp_path: Path) -> None:
    from llmdeploy.deploy.export import ExportRequest, export_inputs
    from llmdeploy.profiles.loader import resolve

    path = tmp_path / "run.json"
    _report([(conc(1), _records(FAST)), (conc(6), _records(FAST)), (conc(12), _records(SLOW))],
            fail_on=["ttft_p95_ms>700"]).save(path)
    profile = resolve("edge-podman", env={}).profile
    inputs = export_inputs(ExportRequest(profile=profile, target="kube", replicas=(1, 4),
                                         from_bench=path))
    assert inputs.queue_target == 6
    assert inputs.queue_target_source.startswith(f"{path}: concurrency=6")
    assert inputs.ttft_slo_ms == 700
    assert (inputs.profile.scale.min_replicas, inputs.profile.scale.max_replicas) == (1, 4)
