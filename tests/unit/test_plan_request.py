"""`llmdeploy plan` as one domain call: ``plan_request(PlanRequest, host) -> PlanOutcome``.

The host's probes (host RAM, GPU memory, the model on disk) are injected, so these tests pin
which target a plan uses, which option combinations are usage errors, and that `plan` and the
check `up` runs (``check_profile``) size the same deployment alike.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from typing import Any

import pytest

from llmdeploy.core.model_info import ModelInfo
from llmdeploy.core.model_ref import ModelRef
from llmdeploy.errors import ModelError, PlanError, UsageError
from llmdeploy.planner import PRESETS, check_profile, hypothetical_spec
from llmdeploy.planner.host import Host
from llmdeploy.planner.request import (
    PlanRequest,
    parameters_option,
    plan_request,
    size_option,
)
from llmdeploy.profiles.schema import Profile

GiB = 1024**3
TINY = replace(
    PRESETS["smollm2-135m"],
    format="gguf",
    quantization="Q4_1",
    file_sizes={"SmolLM2-135M-Instruct.Q4_1.gguf": 98_362_432},
)
LLAMA2 = replace(PRESETS["llama-2-7b"], quantization="FP16")


class FakeHost:
    """Fixed figures, and a record of which probes a plan called."""

    def __init__(
        self, *, ram: int = 64 * GiB, gpu: int | None = None, model: ModelInfo = TINY
    ) -> None:
        self.ram, self.gpu, self.model = ram, gpu, model
        self.calls: list[str] = []

    def host(self) -> Host:
        return Host(memory_bytes=self._ram, gpu_memory=self._gpu, model_info=self._model)

    def _ram(self) -> int:
        self.calls.append("ram")
        return self.ram

    def _gpu(self, accelerator: str) -> tuple[int | None, str]:
        self.calls.append(f"gpu:{accelerator}")
        return self.gpu, "fake probe" if self.gpu else "no GPU here"

    def _model(self, ref: ModelRef | str) -> tuple[ModelInfo, str]:
        self.calls.append("model")
        return self.model, "the test's model"


def profile(backend: dict[str, Any], *, accelerator: str = "cpu", memory: str | None = None) -> Profile:
    data: dict[str, Any] = {
        "name": "p",
        "accelerator": accelerator,
        "backend": backend,
        "model": {
            "ref": "hf://example/model"
            if backend["kind"] == "vllm"
            else "file:///models/SmolLM2-135M-Instruct.Q4_1.gguf"
        },
        "image": "example.invalid/server:1",
    }
    if accelerator != "cpu":  # a replica's GPUs: as many as tensor parallelism shards over
        data["gpus"] = backend.get("tensor_parallel_size", 1)
    if memory:
        data["resources"] = {"memory": memory}
    return Profile.model_validate(data)


VLLM_GPU = {"kind": "vllm", "max_model_len": 4096, "max_num_seqs": 4}
LLAMACPP = {"kind": "llamacpp", "ctx_size": 2048, "parallel": 2}


# --------------------------------------------------------------------------- one rule


def test_plan_and_ups_check_size_a_profile_alike() -> None:
    """`plan` and the check `up` runs build the same target from the same rule."""
    gpu = profile({**VLLM_GPU, "tensor_parallel_size": 2}, accelerator="cuda")
    fake = FakeHost(gpu=16 * GiB, model=LLAMA2)
    outcome = plan_request(PlanRequest(profile=gpu), fake.host())
    assert outcome.report == check_profile(gpu, LLAMA2, available_bytes=16 * GiB)
    assert outcome.report.available_bytes == 32 * GiB
    assert outcome.report.target == "2 x 16.00 GiB GPU"
    cpu = profile(LLAMACPP, memory="1g")
    outcome = plan_request(PlanRequest(profile=cpu), FakeHost(ram=8 * GiB).host())
    assert outcome.report == check_profile(cpu, TINY, available_bytes=8 * GiB)


@pytest.mark.parametrize(
    ("backend", "device", "tp", "devices"),
    [("vllm", "gpu", 4, 4), ("vllm", "cpu", 2, 1), ("llamacpp", "gpu", 1, 1), ("ollama", "gpu", 1, 1)],
)
def test_the_gpus_a_deployment_uses(backend: str, device: str, tp: int, devices: int) -> None:
    spec = hypothetical_spec(
        TINY, backend=backend, device=device, context=1024, sequences=1,  # type: ignore[arg-type]
        tensor_parallel_size=tp,
    )  # fmt: skip
    assert spec.devices == devices


def test_tensor_parallel_what_if_multiplies_the_gpu_target() -> None:
    gpu = profile(VLLM_GPU, accelerator="cuda")
    fake = FakeHost(gpu=24 * GiB, model=LLAMA2)
    one = plan_request(PlanRequest(profile=gpu), fake.host())
    two = plan_request(PlanRequest(profile=gpu, tensor_parallel_size=2), fake.host())
    assert one.report.available_bytes == 24 * GiB and two.report.available_bytes == 48 * GiB
    hypothetical = plan_request(
        PlanRequest(arch="llama-2-7b", quantization="FP16", context=4096, tensor_parallel_size=2,
                    gpu_memory_bytes=24 * GiB),
        fake.host(),
    )  # fmt: skip
    assert hypothetical.report.available_bytes == 48 * GiB
    assert hypothetical.report.target == "2 x 24.00 GiB GPU"
    # the suggested GPU count is planned on the same rule
    tight = plan_request(PlanRequest(profile=gpu, sequences=16), fake.host())
    more = next(s for s in tight.report.suggestions if s.kind == "tensor_parallel")
    assert more.target.devices == more.spec.tensor_parallel_size == more.spec.devices


# --------------------------------------------------------------------------- targets and probes


def test_gpu_memory_comes_from_the_probe_unless_given() -> None:
    gpu = profile(VLLM_GPU, accelerator="cuda")
    fake = FakeHost(gpu=80 * GiB, model=LLAMA2)
    assert plan_request(PlanRequest(profile=gpu), fake.host()).report.available_bytes == 80 * GiB
    assert fake.calls == ["model", "gpu:cuda"]  # no host RAM for a GPU plan
    fake.calls.clear()
    given = plan_request(PlanRequest(profile=gpu, gpu_memory_bytes=24 * GiB), fake.host())
    assert given.report.available_bytes == 24 * GiB and "gpu:cuda" not in fake.calls


def test_an_unknown_gpu_memory_is_a_usage_error_naming_the_probe() -> None:
    rocm = profile(VLLM_GPU, accelerator="rocm")
    fake = FakeHost(gpu=None, model=LLAMA2)
    with pytest.raises(UsageError, match=r"runs on rocm and the GPU memory is unknown") as info:
        plan_request(PlanRequest(profile=rocm), fake.host())
    assert fake.calls[-1] == "gpu:rocm"
    assert info.value.hint is not None and "--gpu-memory" in info.value.hint


def test_rocm_profiles_are_not_sized_with_nvidia_smi() -> None:
    from llmdeploy.planner.host import gpu_memory

    size, why = gpu_memory("rocm")
    assert size is None and "rocm" in why


def test_cpu_target_is_the_limit_or_host_ram_or_memory() -> None:
    fake = FakeHost(ram=4 * GiB)
    limited = plan_request(PlanRequest(profile=profile(LLAMACPP, memory="1g")), fake.host())
    assert limited.report.available_bytes == GiB and "resources.memory 1g" in limited.report.target
    above_host = plan_request(PlanRequest(profile=profile(LLAMACPP, memory="8g")), fake.host())
    assert above_host.report.available_bytes == 4 * GiB and above_host.report.target == "host RAM"
    given = plan_request(
        PlanRequest(profile=profile(LLAMACPP, memory="1g"), memory_bytes=2 * GiB), fake.host()
    )
    assert given.report.available_bytes == 2 * GiB and given.report.target == "--memory"
    hypothetical = plan_request(PlanRequest(arch="smollm2-135m", context=2048), fake.host())
    assert hypothetical.report.available_bytes == 4 * GiB
    assert hypothetical.report.target == "host RAM"


def test_hypothetical_plan_is_on_a_gpu_only_with_gpu_memory() -> None:
    fake = FakeHost()
    on_gpu = plan_request(
        PlanRequest(arch="llama-2-7b", context=4096, gpu_memory_bytes=24 * GiB), fake.host()
    )
    assert on_gpu.spec.device == "gpu" and "ram" not in fake.calls
    on_cpu = plan_request(PlanRequest(arch="llama-2-7b", context=4096), fake.host())
    assert on_cpu.spec.device == "cpu"


# --------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (PlanRequest(), "nothing to plan"),
        (PlanRequest(arch="no-such-arch"), "no architecture preset named 'no-such-arch'"),
        (PlanRequest(profile=profile(LLAMACPP), backend="vllm"), "--backend is for hypothetical"),
        (PlanRequest(arch="llama-2-7b", backend="tgi"), "--backend: 'tgi'"),
        (PlanRequest(parameters=7_000_000_000, layers=32), "--context is needed"),
        (PlanRequest(arch="llama-2-7b", quantization="Q9_Z"), "--quant: unknown format 'Q9_Z'"),
        (PlanRequest(profile=profile(LLAMACPP), quantization="Q9_Z"), "--quant: unknown format"),
        (PlanRequest(profile=profile(LLAMACPP), kv_cache_dtype="q7"), "--kv-cache-dtype"),
        (PlanRequest(profile=profile(LLAMACPP), tensor_parallel_size=2),
         "--tensor-parallel applies to vLLM; this plan is for llamacpp"),
        (PlanRequest(arch="smollm2-135m", backend="ollama", cpu_kv_space_gib=2),
         "--cpu-kv-space applies to vLLM; this plan is for ollama"),
        (PlanRequest(profile=profile(LLAMACPP), gpu_memory_bytes=GiB),
         "--gpu-memory is for GPU profiles; p runs on the CPU"),
        (PlanRequest(profile=profile(VLLM_GPU, accelerator="cuda"), memory_bytes=GiB),
         "--memory is for CPU profiles; p runs on cuda"),
        (PlanRequest(arch="llama-2-7b", memory_bytes=GiB, gpu_memory_bytes=GiB),
         "--memory is for CPU plans; --gpu-memory makes this a GPU plan"),
    ],
)  # fmt: skip
def test_usage_errors(request_: PlanRequest, message: str) -> None:
    with pytest.raises(UsageError) as info:
        plan_request(request_, FakeHost(gpu=24 * GiB).host())
    assert message in info.value.message
    assert UsageError.exit_code == 2


def test_option_values_are_parsed_once_with_the_flag_in_the_message() -> None:
    assert size_option("--gpu-memory", "24GiB") == 24 * GiB
    assert size_option("--memory", None) is None
    with pytest.raises(UsageError, match="--memory: not a size: 'lots'"):
        size_option("--memory", "lots")
    with pytest.raises(UsageError, match="--gpu-memory must be positive"):
        size_option("--gpu-memory", "0")
    assert parameters_option("135M") == 135_000_000
    with pytest.raises(UsageError, match="--params: not a parameter count"):
        parameters_option("0")


# --------------------------------------------------------------------------- the outcome


def test_a_misfit_is_an_outcome_and_its_error_names_the_first_suggestion() -> None:
    outcome = plan_request(
        PlanRequest(arch="llama-2-7b", quantization="FP16", context=4096, sequences=8,
                    gpu_memory_bytes=24 * GiB),
        FakeHost().host(),
    )  # fmt: skip
    assert outcome.fits is False and outcome.title == "hypothetical llama-2-7b"
    error = outcome.misfit()
    assert isinstance(error, PlanError) and error.exit_code == 10
    assert error.message.startswith("hypothetical llama-2-7b does not fit: ")
    assert error.hint == f"for example {outcome.report.suggestions[0].summary}"
    data = outcome.to_json()
    assert data["plan"] == "hypothetical llama-2-7b" and data["fits"] is False
    assert data["model"]["origin"] == "preset llama-2-7b" and data["model"]["layers"] == 32


def test_model_figures_lay_over_the_profiles_model_and_errors_name_it() -> None:
    unknown = ModelInfo(format="safetensors", parameters=3_000_000_000)
    fake = FakeHost(gpu=24 * GiB, model=unknown)
    gpu = profile(VLLM_GPU, accelerator="cuda")
    with pytest.raises(ModelError, match=r"\(model: the test's model\)"):
        plan_request(PlanRequest(profile=gpu), fake.host())
    shaped = plan_request(PlanRequest(profile=gpu, arch="mistral-7b", layers=30), fake.host())
    assert shaped.info.layers == 30 and shaped.info.kv_heads == 8  # explicit, then the preset
    assert shaped.origin == "the test's model"


def test_the_planner_does_not_import_engines_or_the_cli() -> None:
    code = (
        "import sys, llmdeploy.planner.request, llmdeploy.planner.preflight;"
        "bad = [m for m in sys.modules if m.startswith(('llmdeploy.engines', 'llmdeploy.cli',"
        " 'llmdeploy.deploy', 'typer', 'rich'))]; print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
