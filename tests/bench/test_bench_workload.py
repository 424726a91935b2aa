"""Workloads: length distributions, seeded synthetic prompts, dataset files."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from llmdeploy.bench.config import LengthDist, WorkloadSpec
from llmdeploy.bench.workload import Workload, load_dataset, sample_length
from llmdeploy.errors import BenchError, UsageError


def test_length_specs() -> None:
    assert LengthDist.parse("64").describe() == "64"
    u = LengthDist.parse("uniform:10:20")
    rng = random.Random(0)
    vals = [sample_length(u, rng) for _ in range(500)]
    assert min(vals) >= 10 and max(vals) <= 20 and len(set(vals)) == 11
    n = LengthDist.parse("normal:100:30:80:120")
    vals = [sample_length(n, rng) for _ in range(500)]
    assert min(vals) >= 80 and max(vals) <= 120


@pytest.mark.parametrize("bad", ["0", "uniform:5", "normal:x:1", "uniform:9:3", "poisson:3"])
def test_bad_length_specs(bad: str) -> None:
    with pytest.raises(UsageError):
        LengthDist.parse(bad)


def test_synthetic_prompts_are_reproducible_and_sized_in_words() -> None:
    spec = WorkloadSpec(input_tokens=LengthDist.parse("uniform:20:40"),
                        output_tokens=LengthDist.parse(16), seed=3)
    a, b = Workload(spec), Workload(spec)
    for i in range(20):
        pa, pb = a.get(i), b.get(i)
        assert pa.text == pb.text and pa.max_tokens == 16
        assert 20 <= len((pa.text or "").split()) <= 40
    other = Workload(spec.model_copy(update={"seed": 4}))
    assert other.get(0).text != a.get(0).text


def test_jsonl_dataset_with_prompts_and_messages(tmp_path: Path) -> None:
    f = tmp_path / "d.jsonl"
    f.write_text(
        json.dumps({"prompt": "hello", "output_tokens": 7}) + "\n\n"
        + json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n"
        + json.dumps("plain string") + "\n"
    )
    prompts = load_dataset(f)
    assert [p.as_text() for p in prompts] == ["hello", "hi", "plain string"]
    assert prompts[0].max_tokens == 7 and prompts[1].messages is not None


def test_sharegpt_json(tmp_path: Path) -> None:
    f = tmp_path / "sg.json"
    f.write_text(json.dumps([
        {"conversations": [{"from": "human", "value": "Q1"}, {"from": "gpt", "value": "A" * 40}]},
        {"conversations": [{"from": "gpt", "value": "no human turn"}]},
    ]))
    prompts = load_dataset(f)
    assert len(prompts) == 1 and prompts[0].text == "Q1" and prompts[0].max_tokens == 10


def test_dataset_errors_name_the_file(tmp_path: Path) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text('{"prompt": "ok"}\n{oops\n')
    with pytest.raises(BenchError, match="line 2"):
        load_dataset(f)
    with pytest.raises(BenchError):
        load_dataset(tmp_path / "missing.jsonl")


def test_dataset_workload_cycles_and_output_override(tmp_path: Path) -> None:
    f = tmp_path / "d.jsonl"
    f.write_text("\n".join(json.dumps({"prompt": f"p{i}"}) for i in range(3)))
    spec = WorkloadSpec(kind="dataset", dataset_path=str(f), dataset_shuffle=False,
                        output_tokens=LengthDist.parse(5), unique_prompts=False)
    w = Workload(spec)
    assert [w.get(i).text for i in range(4)] == ["p0", "p1", "p2", "p0"]
    assert w.get(0).max_tokens == 5
    # unique prompts (the default): the cycled entry gets its own leading words
    u = Workload(spec.model_copy(update={"unique_prompts": True}))
    texts = [u.get(i).text or "" for i in range(4)]
    assert [t.split("\n")[-1] for t in texts] == ["p0", "p1", "p2", "p0"]
    assert texts[0] != texts[3] and texts[0].split()[:3] != texts[3].split()[:3]
