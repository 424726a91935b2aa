"""Trace files (Mooncake JSONL, BurstGPT CSV): parsing, windows, errors, and their prompts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmdeploy.bench.config import WorkloadSpec
from llmdeploy.bench.report import RequestRecord
from llmdeploy.bench.traces import TraceFormat, load_trace, window
from llmdeploy.bench.workload import Workload
from llmdeploy.cli import bench
from llmdeploy.errors import BenchError, UsageError

DATA = Path(__file__).parent.parent / "data" / "traces"
MOONCAKE = DATA / "mooncake_sample.jsonl"
BURSTGPT = DATA / "burstgpt_sample.csv"


def test_mooncake_sample_parses_with_ms_timestamps() -> None:
    trace = load_trace(MOONCAKE, "mooncake")
    assert [e.timestamp_s for e in trace.entries] == [0, 0, 0.5, 1.2, 2.0, 2.6]
    assert [e.input_tokens for e in trace.entries] == [600, 520, 1100, 300, 1100, 40]
    assert trace.entries[2].hash_ids == (0, 1, 3) and trace.entries[5].hash_ids == ()
    assert trace.entries[0].line == 1


def test_burstgpt_sample_skips_failed_rows_and_reads_seconds() -> None:
    trace = load_trace(BURSTGPT, "burstgpt")
    assert [e.timestamp_s for e in trace.entries] == [5, 5.5, 9, 12.25]
    assert [(e.input_tokens, e.output_tokens) for e in trace.entries] == [
        (47, 18), (108, 23), (30, 27), (64, 12)]
    assert trace.skipped == 1  # the row with 0 response tokens


def test_window_offsets_start_at_the_first_chosen_request_and_scale_with_speed() -> None:
    trace = load_trace(BURSTGPT, "burstgpt")
    assert [o for o, _ in window(trace, speed=2)] == [0, 0.25, 2.0, 3.625]
    chosen = window(trace, start_s=0.5, duration_s=4.5)  # trace time 0.5 .. 5 after t=5
    assert [e.timestamp_s for _, e in chosen] == [5.5, 9]
    assert [o for o, _ in chosen] == [0, 3.5]
    assert window(trace, start_s=100) == []


BAD_MOONCAKE = [
    ("", "is empty"),
    ("\n\n", "is empty"),
    ('{"timestamp": 0, "input_length": 5}\n', "line 1: missing field 'output_length'"),
    ('{"timestamp": 0, "input_length": 5, "output_length": 2}\nnot json\n', "line 2 is not JSON"),
    ('{"timestamp": 10, "input_length": 5, "output_length": 2}\n'
     '{"timestamp": 5, "input_length": 5, "output_length": 2}\n', "line 2: timestamp goes back"),
    ('{"timestamp": -1, "input_length": 5, "output_length": 2}\n', "line 1: timestamp -1 is "
     "negative"),
    ('{"timestamp": "x", "input_length": 5, "output_length": 2}\n', "line 1: timestamp must be"),
    ('{"timestamp": 0, "input_length": 0, "output_length": 2}\n', "line 1: input_length must be"),
    ('{"timestamp": 0, "input_length": 5, "output_length": 2, "hash_ids": [1, -2]}\n',
     "line 1: field 'hash_ids'"),
    ("[1, 2]\n", "line 1: expected a JSON object"),
]


BAD_BURSTGPT = [
    ("", "is empty"),
    ("Timestamp,Model,Request tokens,Total tokens\n1,m,2,3\n",
     "line 1: missing column 'Response tokens'"),
    ("Timestamp,Model,Request tokens,Response tokens\n1,m,2\n",
     "line 2: missing value for column 'Response tokens'"),
    ("Timestamp,Model,Request tokens,Response tokens\n1,m,2,3\n0.5,m,2,3\n",
     "line 3: Timestamp goes back"),
    ("Timestamp,Model,Request tokens,Response tokens\n-3,m,2,3\n", "line 2: Timestamp -3.0 is"),
    ("Timestamp,Model,Request tokens,Response tokens\nsoon,m,2,3\n",
     "line 2: Timestamp 'soon' is not a number"),
    ("Timestamp,Model,Request tokens,Response tokens\n1,m,2.5,3\n",
     "line 2: Request tokens must be a whole number"),
    ("Timestamp,Model,Request tokens,Response tokens\n1,m,2,0\n", "has no requests (1 rows"),
]


@pytest.mark.parametrize(
    ("fmt", "name", "text", "message"),
    [("mooncake", "t.jsonl", *case) for case in BAD_MOONCAKE]
    + [("burstgpt", "t.csv", *case) for case in BAD_BURSTGPT],
)
def test_bad_traces_name_file_line_and_field(
    tmp_path: Path, fmt: TraceFormat, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(BenchError) as err:
        load_trace(path, fmt)
    assert str(path) in str(err.value) and message in str(err.value)


def test_binary_and_missing_trace_files_are_bench_errors(tmp_path: Path) -> None:
    binary = tmp_path / "b.jsonl"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(BenchError, match="not UTF-8"):
        load_trace(binary, "mooncake")
    with pytest.raises(BenchError, match="cannot read trace"):
        load_trace(tmp_path / "missing.csv", "burstgpt")


def test_cli_bad_trace_is_exit_8_with_the_line_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"timestamp": 5, "input_length": 5, "output_length": 2}\n'
                    '{"timestamp": 1, "input_length": 5, "output_length": 2}\n')
    done = subprocess.run(
        [sys.executable, "-m", "llmdeploy", "bench", "--url", "http://127.0.0.1:9/v1",
         "--trace", str(path)], capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 8, done.stderr
    err = " ".join(done.stderr.split())
    assert "line 2: timestamp goes back" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trace", str(MOONCAKE), "-c", "2"], "drop --concurrency"),
        (["--trace", str(MOONCAKE), "--turns", "2"], "drop --turns"),
        (["--trace", __file__], "cannot tell the format"),  # a file, of no trace kind
        (["--trace-speed", "2", "--trace-format", "mooncake"], "--trace-format needs --trace"),
        (["--trace", str(MOONCAKE), "--trace-speed", "0"], "--trace-speed must be > 0"),
    ],
)
def test_trace_option_clashes_are_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(bench.app, ["--url", "http://127.0.0.1:9/v1", *args])
    assert isinstance(result.exception, UsageError), result.output
    assert message in str(result.exception)


@pytest.mark.parametrize(("path", "why"), [(DATA / "missing.jsonl", "no such file"),
                                           (DATA, "is a directory")])
def test_a_trace_path_that_is_no_file_says_so_before_any_format_guess(
    path: Path, why: str
) -> None:
    result = CliRunner().invoke(bench.app, ["--url", "http://127.0.0.1:9/v1", "--trace",
                                            str(path)])
    assert isinstance(result.exception, BenchError), result.output
    assert f"cannot read trace {path}: {why}" in str(result.exception)


def _spec(**kw: object) -> WorkloadSpec:
    return WorkloadSpec(kind="trace", trace_path=str(MOONCAKE), trace_format="mooncake",
                        prompt_nonce=11, **kw)  # type: ignore[arg-type]


def test_mooncake_prompts_share_text_exactly_where_hash_ids_are_shared() -> None:
    wl = Workload(_spec())
    words = [wl.get(n).as_text().split() for n in range(6)]
    assert [len(w) for w in words] == [600, 520, 1100, 300, 1100, 40]
    assert [wl.get(n).max_tokens for n in range(6)] == [4, 3, 5, 2, 4, 6]
    assert words[0][:512] == words[1][:512]  # block 0
    assert words[0][512:600] == words[2][512:600]  # block 1 as far as request 0 sent it
    assert words[2] == words[4]  # the same three blocks
    assert words[1][512:] != words[2][512:520]  # block 2 is not block 1
    assert words[3][:512] != words[0][:300]  # block 4 shares nothing
    # reproducible: the same nonce gives the same text; another nonce, another text
    assert Workload(_spec()).get(2).as_text() == wl.get(2).as_text()
    other = WorkloadSpec(kind="trace", trace_path=str(MOONCAKE), trace_format="mooncake",
                         prompt_nonce=12)
    assert Workload(other).get(0).as_text() != wl.get(0).as_text()


def test_expected_cached_follows_the_blocks_a_prefix_cache_holds() -> None:
    wl = Workload(_spec())
    records = [RequestRecord(index=i, start_s=0, end_s=1) for i in range(6)]
    # 1: block 0 (512); 2: block 0 + the 88 words of block 1 request 0 sent; 4: all 1100
    assert wl.expected_cached(records, 0) == 512 + 600 + 1100
    assert wl.trace_offsets() == [0, 0, 0.5, 1.2, 2.0, 2.6]


def test_trace_speed_and_window_shape_offsets() -> None:
    wl = Workload(_spec(trace_start_s=0.5, trace_duration_s=2))
    assert wl.trace_offsets(4) == [0, 0.175, 0.375]
    with pytest.raises(BenchError, match="no request in the window"):
        Workload(_spec(trace_start_s=30))


def test_burstgpt_prompts_are_unique_and_sized_from_the_trace() -> None:
    wl = Workload(WorkloadSpec(kind="trace", trace_path=str(BURSTGPT), trace_format="burstgpt",
                               prompt_nonce=3))
    prompts = [wl.get(n) for n in range(4)]
    assert [len(p.as_text().split()) for p in prompts] == [47, 108, 30, 64]
    assert [p.max_tokens for p in prompts] == [18, 23, 27, 12]
    assert prompts[0].as_text().split()[:3] != prompts[1].as_text().split()[:3]
    assert wl.expected_cached([], 0) is None  # BurstGPT says nothing about shared text


def test_conversations_not_requests_are_dealt_the_shared_prefixes() -> None:
    """With T turns and N prefixes, conversation c opens with prefix c mod N, whatever T is
    (dealing by request number gave every conversation prefix 0 when T was a multiple of N)."""
    from llmdeploy.bench.config import LengthDist, WorkloadSpec

    spec = WorkloadSpec(input_tokens=LengthDist.parse(6), output_tokens=LengthDist.parse(2),
                        shared_prefix_tokens=8, prefixes=2, turns=2, prompt_nonce=9)
    wl = Workload(spec)
    firsts = [wl.conversation(c * 2, c).user_turns[0].as_text() for c in range(4)]
    heads = [" ".join(text.split()[:8]) for text in firsts]
    assert heads[0] == heads[2] and heads[1] == heads[3]
    assert heads[0] != heads[1]
    later = wl.conversation(0, 0).user_turns[1].as_text()
    assert not later.startswith(heads[0])
