"""The profile's sections for targets past one host: gpus, xpu, scale, probes, kubernetes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from llmdeploy.deploy.export import parse_replicas
from llmdeploy.deploy.plan import plan_deployment
from llmdeploy.errors import UsageError
from llmdeploy.profiles.schema import Profile

VLLM: dict[str, Any] = {"name": "v", "backend": {"kind": "vllm"},
                        "model": {"ref": "hf://Qwen/Qwen2.5-7B-Instruct"}}


def profile(**changes: Any) -> Profile:
    return Profile.model_validate({**VLLM, **changes})


def test_gpus_default_to_one_on_a_gpu_and_none_on_the_cpu() -> None:
    assert profile(accelerator="cuda").gpu_count == 1
    assert profile(accelerator="cuda", gpus=4).gpu_count == 4
    assert profile().gpu_count == 0


def test_a_replica_asks_the_engines_for_its_gpus() -> None:
    planned = plan_deployment(profile(accelerator="cuda", gpus=2,
                                      backend={"kind": "vllm", "tensor_parallel_size": 2}),
                              model_dir=Path("/m"), model_filename="")
    assert planned.run.gpu is not None and planned.run.gpu.count == 2


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"accelerator": "cuda", "backend": {"kind": "vllm", "tensor_parallel_size": 2}},
     "backend.tensor_parallel_size", "but gpus is 1"),
    ({"gpus": 2}, "gpus", "accelerator is cpu"),
    ({"accelerator": "xpu"}, "image", "no official image for accelerator 'xpu'"),
    ({"scale": {"min_replicas": 3, "max_replicas": 2}}, "scale", "above max_replicas"),
    ({"scale": {"min_replicas": 0, "autoscaler": "hpa"}}, "scale", "needs autoscaler: keda"),
    ({"kubernetes": {"namespace": "Not_A_Label"}}, "kubernetes.namespace", "not a DNS label"),
    ({"kubernetes": {"labels": {"bad key!": "x"}}}, "kubernetes.labels", "label key"),
    ({"probes": {"ready_path": "health"}}, "probes.ready_path", "not an HTTP path"),
])
def test_bad_target_settings_name_the_field(changes: dict[str, Any], field: str,
                                           words: str) -> None:
    with pytest.raises(ValidationError) as info:
        profile(**changes)
    text = str(info.value)
    assert words in text and (field in text or field.split(".")[0] in text)


def test_xpu_runs_llamacpps_intel_image() -> None:
    llama = Profile.model_validate({"name": "x", "accelerator": "xpu",
                                    "backend": {"kind": "llamacpp"},
                                    "model": {"ref": "file:///m/model.gguf"}})
    planned = plan_deployment(llama, model_dir=Path("/m"),
                              model_filename="model.gguf")
    assert planned.run.image == "ghcr.io/ggml-org/llama.cpp:server-intel"
    assert planned.run.gpu is not None and planned.run.gpu.vendor == "intel"


@pytest.mark.parametrize(("text", "expected"), [("2:8", (2, 8)), ("3", (3, 3)), ("0:4", (0, 4))])
def test_replicas_option(text: str, expected: tuple[int, int]) -> None:
    assert parse_replicas(text) == expected


@pytest.mark.parametrize("text", ["8:2", "x", "1:y", "0", "-1:3"])
def test_bad_replicas_option_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError):
        parse_replicas(text)
