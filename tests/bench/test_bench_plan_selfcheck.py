"""Stage plans dealt to workers, the self-check's verdict, the records and statistics the
report is built from (unit tests: no server, no processes)."""

from __future__ import annotations

import asyncio
import itertools
import random
import time

import pytest

from llmdeploy.bench.columns import METRICS, SUMMARY_COLUMNS
from llmdeploy.bench.config import LoadSpec
from llmdeploy.bench.metrics import percentile, summarize
from llmdeploy.bench.options import parse_workers
from llmdeploy.bench.records import build_records
from llmdeploy.bench.report import RequestRecord, StageResult
from llmdeploy.bench.runner import auto_workers
from llmdeploy.bench.schedule import StagePlan, arrival_offsets, deal_cycle, split_evenly
from llmdeploy.bench.selfcheck import (
    CPU_LIMIT_PERCENT,
    LOOP_LAG_P99_MS,
    MIN_RATE_SENDS,
    LoopMonitor,
    WorkerSample,
    client_check,
)
from llmdeploy.bench.tables import client_limited_warning, summary_table
from llmdeploy.errors import UsageError


# the plan ---------------------------------------------------------------------------------
def test_split_and_deal() -> None:
    assert split_evenly(5, 2) == [3, 2]
    assert split_evenly(64, 3) == [22, 21, 21]
    assert deal_cycle([3, 2]) == [0, 1, 0, 1, 0]
    cycle = deal_cycle([22, 21, 21])
    assert [cycle.count(k) for k in range(3)] == [22, 21, 21]
    with pytest.raises(ValueError):
        deal_cycle([0, 0])


@pytest.mark.parametrize("workers", [1, 2, 3, 5])
@pytest.mark.parametrize("arrivals", ["constant", "poisson"])
def test_rate_plan_deals_one_global_schedule(workers: int, arrivals: str) -> None:
    plan = StagePlan(mode="rate", workers=workers, rate=200.0, arrivals=arrivals,  # type: ignore[arg-type]
                     seed=3, limit=1000, warmup=10)
    dealt = sorted(itertools.chain.from_iterable(plan.items(w) for w in range(workers)))
    one = list(itertools.islice(arrival_offsets(200.0, arrivals, 3), 1000))  # type: ignore[arg-type]
    assert [i for i, _ in dealt] == list(range(1000))  # every item once
    assert [o for _, o in dealt] == one  # the same planned offsets as one process
    for w in range(workers):
        assert all(i % workers == w for i, _ in plan.items(w))


def test_rate_plan_duration_counts_from_the_first_measured_item() -> None:
    plan = StagePlan(mode="rate", workers=2, rate=100.0, warmup=5, duration_s=1.0)
    items = sorted(itertools.chain(plan.items(0), plan.items(1)))
    offsets = [o for _, o in items]
    assert len(items) == 105  # 5 warm-up + 100 in the measured second
    assert offsets[5] == pytest.approx(0.05) and offsets[-1] < 0.05 + 1.0


@pytest.mark.parametrize(("streams", "workers"), [(5, 2), (64, 2), (7, 3), (1, 1)])
def test_concurrency_plan_deals_in_proportion_to_streams(streams: int, workers: int) -> None:
    plan = StagePlan(mode="concurrency", workers=workers, concurrency=streams, limit=700)
    per = [[i for i, off in plan.items(w)] for w in range(workers)]
    assert sorted(itertools.chain.from_iterable(per)) == list(range(700))
    for w in range(workers):
        share = plan.streams(w) / streams
        assert abs(len(per[w]) - 700 * share) <= streams  # within one cycle of exact
        assert all(off is None for _, off in plan.items(w))
    assert sum(plan.streams(w) for w in range(workers)) == streams


def test_plan_refuses_impossible_splits() -> None:
    with pytest.raises(ValueError):
        StagePlan(mode="concurrency", workers=3, concurrency=2, limit=10)
    with pytest.raises(ValueError):
        StagePlan(mode="rate", workers=1, rate=5.0)  # no limit, no duration
    assert StagePlan(mode="rate", workers=3, rate=9.0, limit=9, max_concurrency=4).cap(2) == 1


def test_auto_workers_rule() -> None:
    rate = LoadSpec(mode="rate", value=2000)
    assert auto_workers(rate, 32, cores=2) == 1  # 66k events/s
    assert auto_workers(LoadSpec(mode="rate", value=2000), 128, cores=2) == 2  # 258k: capped
    assert auto_workers(LoadSpec(mode="rate", value=2000), 128, cores=8) == 3
    assert auto_workers(LoadSpec(mode="concurrency", value=64), 128, cores=8) == 1
    assert auto_workers(LoadSpec(mode="concurrency", value=1400), 128, cores=8) == 6
    assert auto_workers(LoadSpec(mode="concurrency", value=1400), 128, cores=1) == 1


def test_workers_option() -> None:
    assert parse_workers("auto") is None and parse_workers(" 3 ") == 3
    for bad in ("0", "-1", "two", "1.5"):
        with pytest.raises(UsageError, match="--workers"):
            parse_workers(bad)


# the self-check ---------------------------------------------------------------------------
def sample(worker: int = 0, cpu: float = 0.2, lag: float = 0.5, cap_waits: int = 0) -> WorkerSample:
    return WorkerSample(worker, 100 + worker, 50, wall_s=1.0, cpu_s=cpu, lag_ms=[lag] * 200,
                        cap_waits=cap_waits)


def sends(n: int, rate: float, late_s: float = 0.0, stretch: float = 1.0) -> list[tuple[float, float]]:
    return [(i / rate, i / rate * stretch + late_s) for i in range(n)]


def test_an_easy_stage_is_not_client_limited() -> None:
    c = client_check([sample(0), sample(1)], sends(1000, 500.0, late_s=0.0004), 500.0)
    assert not c.client_limited and c.reasons == []
    assert [w.worker for w in c.workers] == [0, 1]
    assert c.workers[0].cpu_percent == pytest.approx(20.0)
    # 999 gaps over 1.998 s planned, the last send 0.4 ms late: 0.02% short
    assert c.planned_rate_per_s == pytest.approx(500.0)
    assert c.delivered_rate_per_s == pytest.approx(999 / 1.9984)
    assert c.rate_error == pytest.approx(1.998 / 1.9984 - 1)
    assert c.send_lag_ms is not None and c.send_lag_ms.p99 == pytest.approx(0.4)


@pytest.mark.parametrize(
    ("samples", "stage_sends", "reason"),
    [
        ([sample(cpu=(CPU_LIMIT_PERCENT + 5) / 100)], [], "of a core"),
        ([sample(lag=LOOP_LAG_P99_MS + 1)], [], "event-loop lag"),
        ([sample()], sends(1000, 2000.0, late_s=0.010), "send lag"),
        ([sample()], sends(1000, 2000.0, stretch=1.01), "short of the planned"),
    ],
)
def test_each_threshold_marks_the_stage(
    samples: list[WorkerSample], stage_sends: list[tuple[float, float]], reason: str
) -> None:
    c = client_check(samples, stage_sends, 2000.0 if stage_sends else None)
    assert c.client_limited and any(reason in r for r in c.reasons), c.reasons


def test_a_concurrency_cap_is_not_the_clients_fault() -> None:
    c = client_check([sample(cap_waits=30)], sends(1000, 2000.0, stretch=1.5), 2000.0)
    assert not c.client_limited and c.cap_waits == 30 and c.rate_error is not None


def test_a_late_start_caught_up_is_not_a_faster_rate() -> None:
    # the first sends late, the rest on time: never more than the planned rate
    late_start = [(p, a + (0.05 if i < 10 else 0.0)) for i, (p, a) in enumerate(sends(1000, 500.0))]
    c = client_check([sample()], late_start, 500.0)
    assert c.rate_error == pytest.approx(0.0, abs=1e-12)


def test_few_sends_are_not_judged_on_rate() -> None:
    c = client_check([sample()], sends(MIN_RATE_SENDS - 1, 2000.0, stretch=1.02), 2000.0)
    assert not c.client_limited


def test_loop_monitor_sees_a_blocked_loop() -> None:
    async def main() -> WorkerSample:
        mon = LoopMonitor(interval_s=0.002)
        mon.start()
        await asyncio.sleep(0.03)
        time.sleep(0.05)  # the loop is blocked: the next timer fires ~50 ms late
        await asyncio.sleep(0.03)
        return mon.stop(worker=0, requests=0)

    s = asyncio.run(main())
    assert max(s.lag_ms) >= 40.0
    assert s.wall_s >= 0.1
    assert s.cpu_s < 0.05  # a blocked (sleeping) loop is late without using the CPU


def test_client_limited_shows_in_the_table_and_the_notes() -> None:
    recs = build_records([(0, False, None, 0.0, 0.1, [0.05], 1, 1, "usage", None, None, 0, None)])
    summary = summarize(recs)
    summary.client = client_check([sample(lag=50.0)], [], None)
    stage = StageResult(name="c=1", load=LoadSpec(mode="concurrency", value=1), started_s=0,
                        ended_s=1, records=recs, summary=summary)
    from llmdeploy.bench.config import BenchConfig, TargetSpec
    from llmdeploy.bench.report import BenchReport, EnvironmentInfo

    report = BenchReport(created_at="x", config=BenchConfig(target=TargetSpec(base_url="http://h")),
                         environment=EnvironmentInfo(hostname="h", platform="p", python="3",
                                                     cpu_count=2, llmdeploy_version="0",
                                                     event_loop="l"),
                         model="m", stages=[stage])
    rows = {r.column.label: r for r in summary_table(report)}
    assert rows["client-limited"].cells == ["YES"] and rows["client-limited"].alerts == [True]
    assert rows["client loop lag p99 ms"].cells == ["50.00"]
    warning = client_limited_warning(stage)
    assert warning is not None and "event-loop lag p99 50.0 ms" in warning
    assert METRICS["client_limited"].value(summary) == 1.0
    assert any(c.metric is METRICS["client_limited"] for c in SUMMARY_COLUMNS)


# records and statistics -------------------------------------------------------------------
def random_raws(n: int, seed: int = 1) -> list[tuple]:  # type: ignore[type-arg]
    rng = random.Random(seed)
    raws = []
    for i in range(n):
        start = rng.uniform(0, 10)
        k = rng.choice([0, 1, 2, 7, 30])
        times = sorted(start + rng.uniform(0.001, 0.5) for _ in range(k))
        error = rng.choice([None, None, None, "http_500"]) if k else "empty_response"
        out = k if rng.random() < 0.8 else None
        raws.append((i, i < 3, None, start, (times[-1] if times else start) + 0.001, times,
                     16, out, "usage", error, None, 0, None))
    return raws


def test_records_are_what_validation_would_build() -> None:
    raws = random_raws(50)
    for raw, rec in zip(raws, build_records(raws), strict=True):
        validated = RequestRecord.model_validate(rec.model_dump())
        assert validated == rec
        assert set(rec.__dict__) == set(RequestRecord.model_fields)  # no field left out
        assert rec.start_s == raw[3] and rec.token_times_s == raw[5]


def test_vectorised_statistics_equal_the_per_record_definitions() -> None:
    records = build_records(random_raws(400))
    s = summarize(records)
    ok = [r for r in records if not r.warmup and r.ok]
    ttft = sorted((r.token_times_s[0] - r.start_s) * 1000 for r in ok if r.token_times_s)
    itl = sorted((b - a) * 1000 for r in ok for a, b in itertools.pairwise(r.token_times_s))
    tpot = sorted(r.tpot_s * 1000 for r in ok if r.tpot_s is not None)
    for dist, ref in ((s.ttft_ms, ttft), (s.itl_ms, itl), (s.tpot_ms, tpot)):
        assert dist is not None and dist.count == len(ref)
        for q, got in ((50, dist.median), (90, dist.p90), (99, dist.p99)):
            assert got == percentile(ref, q)
        assert dist.max == ref[-1] and dist.min == ref[0]
        assert dist.mean == pytest.approx(sum(ref) / len(ref), rel=1e-12)
