"""Metric definitions on hand-computed timelines."""

from __future__ import annotations

import pytest

from llmdeploy.bench.metrics import parse_slo, percentile, summarize
from llmdeploy.bench.report import RequestRecord
from llmdeploy.errors import UsageError


def rec(i: int, start: float, tokens: list[float], end: float, n: int | None = None,
        **kw: object) -> RequestRecord:
    return RequestRecord(index=i, start_s=start, end_s=end, token_times_s=tokens,
                         output_tokens=n if n is not None else len(tokens),
                         token_source="usage", **kw)  # type: ignore[arg-type]


def test_percentile_linear_interpolation() -> None:
    v = [1.0, 2.0, 3.0, 4.0]
    assert percentile(v, 50) == 2.5
    assert percentile(v, 0) == 1.0 and percentile(v, 100) == 4.0
    assert percentile(v, 90) == pytest.approx(3.7)
    assert percentile([5.0], 99) == 5.0


def test_hand_computed_timeline() -> None:
    # A: start 0, tokens at 0.1, 0.15, 0.25, end 0.3 -> TTFT 100, ITL 50/100, E2E 300,
    #    TPOT (300-100)/(3-1) = 100
    # B: start 0.2, tokens at 0.4, 0.45, end 0.6      -> TTFT 200, ITL 50, E2E 400,
    #    TPOT (400-200)/(2-1) = 200
    records = [rec(0, 0.0, [0.1, 0.15, 0.25], 0.3), rec(1, 0.2, [0.4, 0.45], 0.6)]
    s = summarize(records)
    assert s.ttft_ms is not None and s.itl_ms is not None
    assert s.tpot_ms is not None and s.e2e_ms is not None
    assert s.ttft_ms.mean == pytest.approx(150) and s.ttft_ms.max == pytest.approx(200)
    assert sorted([s.itl_ms.min, s.itl_ms.max]) == [pytest.approx(50), pytest.approx(100)]
    assert s.itl_ms.count == 3 and s.itl_ms.median == pytest.approx(50)
    assert s.tpot_ms.mean == pytest.approx(150) and s.tpot_ms.max == pytest.approx(200)
    assert s.e2e_ms.median == pytest.approx(350)
    assert s.duration_s == pytest.approx(0.6)  # first start 0 -> last end 0.6
    assert s.output_tokens == 5 and s.output_tokens_per_s == pytest.approx(5 / 0.6)
    assert s.requests_per_s == pytest.approx(2 / 0.6)
    assert s.concurrency == pytest.approx((0.3 + 0.4) / 0.6)


def test_failed_and_warmup_requests_are_excluded_from_latency_but_counted() -> None:
    records = [
        rec(0, 0.0, [0.9], 1.0, warmup=True),
        rec(1, 1.0, [1.1, 1.2], 1.3),
        rec(2, 1.0, [], 1.05, n=0, error="timeout"),
        rec(3, 1.0, [], 1.01, n=0, error="http_500"),
    ]
    s = summarize(records)
    assert (s.requests, s.ok, s.failed, s.warmup_excluded) == (3, 1, 2, 1)
    assert s.errors_by_cause == {"http_500": 1, "timeout": 1}
    assert s.error_rate == pytest.approx(2 / 3)
    assert s.ttft_ms is not None and s.ttft_ms.count == 1
    assert s.ttft_ms.mean == pytest.approx(100)


def test_tpot_needs_two_tokens_and_uses_server_token_count() -> None:
    one = rec(0, 0.0, [0.1], 0.1, n=1)
    assert one.tpot_s is None
    # 3 chunks but the server says 5 tokens: TPOT = (0.5 - 0.1) / 4
    multi = rec(1, 0.0, [0.1, 0.3, 0.5], 0.5, n=5)
    assert multi.tpot_s == pytest.approx(0.1)


def test_goodput_counts_requests_meeting_every_slo() -> None:
    records = [
        rec(0, 0.0, [0.1, 0.2], 0.2),  # ttft 100, tpot 100
        rec(1, 0.0, [0.3, 0.4], 0.4),  # ttft 300 -> misses ttft
        rec(2, 0.0, [0.1, 0.5], 0.5),  # tpot 400 -> misses tpot
        rec(3, 0.0, [], 0.1, n=0, error="disconnect"),
    ]
    s = summarize(records, parse_slo("ttft_ms=200,tpot_ms=150"))
    assert s.goodput is not None
    assert s.goodput.good_requests == 1 and s.goodput.ratio == pytest.approx(0.25)


def test_bad_slo_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        parse_slo("latency=5")
