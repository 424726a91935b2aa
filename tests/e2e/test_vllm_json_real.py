"""Our ``--vllm-json`` read by vLLM's own result readers, in the vLLM CPU image.

vLLM's readers: ``vllm bench sweep`` loads each run's result with ``json.load`` and
``vllm bench sweep plot`` gathers ``summary.json`` lists and looks metrics up with
``_get_metric`` (its defaults: ``request_throughput`` against ``p99_e2el_ms``);
``save_to_pytorch_benchmark_format`` turns a result into PyTorch benchmark records. The image
is the one ``up --profile cpu-vllm`` runs, built here when missing (``built_image``).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from e2e_helpers import built_image, engine_ready, unavailable

from llmdeploy.bench.config import (
    BenchConfig,
    LengthDist,
    LoadSpec,
    StopSpec,
    TargetSpec,
    WorkloadSpec,
)
from llmdeploy.bench.mock_server import MockConfig, running_mock_server
from llmdeploy.bench.runner import run_bench
from llmdeploy.bench.vllm_json import write_vllm_json

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

READER = r"""
import json, os, sys, argparse
from pathlib import Path
from vllm.benchmarks.sweep import plot as sweep_plot
from vllm.benchmarks import serve
root = Path("/results")
out = {}
# 1. vllm bench sweep: one result per run file, read with json.load
for f in sorted(root.glob("exp/run=*.json")):
    with f.open("rb") as fh:
        run = json.load(fh)
    out[f.name] = {k: sweep_plot._get_metric(run, k) for k in sys.argv[1].split(",")}
# 2. vllm bench sweep plot: gathers **/summary.json and groups runs (dry run: no pandas here)
sweep_plot.plot(root, Path("/tmp/figs"), ["max_concurrency"], [], [], ["request_rate"],
                var_x="request_throughput", var_y="p99_e2el_ms",
                filter_by=sweep_plot.PlotFilters(), bin_by=sweep_plot.PlotBinners(),
                scale_x=None, scale_y=None, dry_run=True)
runs = sweep_plot._convert_inf_nan_strings(sweep_plot._json_load_bytes(root / "exp/summary.json"))
out["summary"] = [[sweep_plot._get_metric(r, "request_throughput"),
                   sweep_plot._get_metric(r, "p99_e2el_ms")] for r in runs]
# 3. PyTorch benchmark records, as vllm bench serve --save-result makes them
os.environ["SAVE_TO_PYTORCH_BENCHMARK_FORMAT"] = "1"
args = argparse.Namespace(model=runs[0]["model_id"], header=None)
serve.save_to_pytorch_benchmark_format(args, runs[0], "/tmp/res.json")
records = json.load(open("/tmp/res.pytorch.json"))
out["pytorch"] = {r["metric"]["name"]: r["metric"]["benchmark_values"] for r in records}
print("RESULT " + json.dumps(out))
"""

KEYS = ("completed", "failed", "total_input_tokens", "total_output_tokens",
        "request_throughput", "output_throughput", "mean_ttft_ms", "median_ttft_ms",
        "p99_ttft_ms", "mean_tpot_ms", "p99_itl_ms", "p99_e2el_ms", "max_concurrency")


def test_vllm_reads_our_result_json(tmp_path: Path) -> None:
    reason = engine_ready("podman")
    if reason:
        unavailable(reason)
    image = built_image("cpu-vllm", "podman", tmp_path, "model")
    with running_mock_server(MockConfig(ttft_ms=2, itl_ms=1)) as server:
        report = run_bench(BenchConfig(
            target=TargetSpec(base_url=f"http://127.0.0.1:{server.port}"),
            workload=WorkloadSpec(input_tokens=LengthDist.parse(8),
                                  output_tokens=LengthDist.parse(5)),
            stages=[LoadSpec(mode="concurrency", value=1), LoadSpec(mode="concurrency", value=4)],
            stop=StopSpec(requests=12, timeout_s=10),
        ))
    exp = tmp_path / "exp"
    exp.mkdir()
    write_vllm_json(report, tmp_path / "all.json")
    ours = [json.loads(line) for line in (tmp_path / "all.json").read_text().splitlines()]
    for i, result in enumerate(ours):
        (exp / f"run={i}.json").write_text(json.dumps(result))
    (exp / "summary.json").write_text(json.dumps(ours))
    for folder in (tmp_path, exp):  # the image runs as an unprivileged user
        folder.chmod(0o755)
    done = subprocess.run(
        ["podman", "run", "--rm", "--network", "none", "-v", f"{tmp_path}:/results:ro,Z",
         "--entrypoint", "python3", image, "-c", READER, ",".join(KEYS)],
        capture_output=True, text=True, timeout=600,
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert done.returncode == 0 and line, done.stderr[-3000:]
    got = json.loads(line[len("RESULT "):])
    for i, result in enumerate(ours):
        assert got[f"run={i}.json"] == {k: result[k] for k in KEYS}
    assert got["summary"] == [[r["request_throughput"], r["p99_e2el_ms"]] for r in ours]
    assert got["pytorch"]["p99_ttft_ms"] == [ours[0]["p99_ttft_ms"]]
    assert set(got["pytorch"]) == {
        f"{s}_{m}_ms" for m in ("ttft", "tpot", "itl") for s in ("mean", "median", "std", "p99")}


