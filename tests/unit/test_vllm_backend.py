from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from llmdeploy.core.engine_traits import DOCKER, PODMAN
from llmdeploy.deploy.plan import plan_deployment
from llmdeploy.profiles.loader import resolve
from llmdeploy.profiles.schema import Profile
from llmdeploy.render.command_line import run_argv

STORE = Path("/store/smollm2-hf-bfloat16")


def vllm_profile(accelerator: str = "cuda", **backend: object) -> Profile:
    return Profile.model_validate({
        "name": "v",
        "accelerator": accelerator,
        "backend": {"kind": "vllm", **backend},
        "model": {"ref": "hf://Qwen/Qwen2.5-0.5B-Instruct", "name": "qwen"},
        # a replica's GPUs: as many as tensor parallelism shards over
        **({} if accelerator == "cpu" else {"gpus": backend.get("tensor_parallel_size", 1)}),
    })


def plan(profile: Profile):  # type: ignore[no-untyped-def]
    return plan_deployment(profile, model_dir=STORE, model_filename="")


def test_args_from_the_profile() -> None:
    result = plan(vllm_profile(
        max_model_len=8192, max_num_seqs=32, gpu_memory_utilization=0.85,
        tensor_parallel_size=2, dtype="bfloat16", quantization="fp8", kv_cache_dtype="fp8",
        enforce_eager=True, extra_args=["--enable-prefix-caching"],
    ))
    assert result.run.args == (
        "--model", "/models", "--served-model-name", "qwen", "--host", "0.0.0.0",
        "--port", "8000", "--max-model-len", "8192", "--max-num-seqs", "32",
        "--gpu-memory-utilization", "0.85", "--tensor-parallel-size", "2",
        "--dtype", "bfloat16", "--quantization", "fp8", "--kv-cache-dtype", "fp8",
        "--enforce-eager", "--enable-prefix-caching",
    )  # fmt: skip
    assert result.launch.health_path == "/health" and result.launch.metrics_path == "/metrics"
    assert result.run.env["HF_HUB_OFFLINE"] == "1"
    assert result.endpoint == "http://127.0.0.1:8080"


def test_gpu_container_options_per_engine() -> None:
    result = plan(vllm_profile())
    assert result.run.ipc_mode == "host"
    podman = " ".join(run_argv(result.run, PODMAN))
    docker = " ".join(run_argv(result.run, DOCKER))
    assert "--device nvidia.com/gpu=0" in podman and "--ipc host" in podman  # gpus: 1
    assert "--gpus 1" in docker
    assert "--mount" not in docker and f"--volume {STORE}:/models:ro" in docker


def test_api_key_comes_from_the_environment_by_name() -> None:
    result = plan(vllm_profile(api_key_env="MY_VLLM_KEY"))
    assert result.run.secret_env == {"VLLM_API_KEY": "MY_VLLM_KEY"}
    argv = run_argv(result.run, DOCKER)
    assert "VLLM_API_KEY=${MY_VLLM_KEY}" in argv
    assert not any("--api-key" in a for a in argv)


@pytest.mark.parametrize("flag", ["--port", "--max-model-len=4096", "--api-key", "-tp"])
def test_extra_args_cannot_override_profile_fields(flag: str) -> None:
    with pytest.raises(ValueError, match="is set from the profile"):
        vllm_profile(extra_args=[flag, "1"])


def test_cpu_options() -> None:
    profile = Profile.model_validate({
        "name": "c", "accelerator": "cpu",
        "backend": {"kind": "vllm", "cpu_kvcache_space_gib": 2, "enforce_eager": True},
        "model": {"ref": "file:///m/hf-folder"},
        "build": {"base_image": "localhost/base:1"},
        "resources": {"cpus": 2},
    })
    result = plan(profile)
    assert result.run.env["VLLM_CPU_KVCACHE_SPACE"] == "2"
    assert result.run.env["OMP_NUM_THREADS"] == "2"
    assert result.run.shm_size == "1g" and result.run.ipc_mode is None and result.run.gpu is None
    assert result.images.build_tag is not None and "vllm-cpu" in result.images.build_tag
    assert result.images.recipe is not None and result.images.recipe.wheelhouse == "vllm"
    with pytest.raises(ValidationError, match="backend.gpu_memory_utilization"):
        Profile.model_validate({**profile.model_dump(mode="json"), "backend": {
            "kind": "vllm", "cpu_kvcache_space_gib": 2, "gpu_memory_utilization": 0.5}})


def test_format_mismatches_are_caught_at_validation() -> None:
    with pytest.raises(ValueError, match="use backend.kind: llamacpp"):
        Profile.model_validate({"name": "g", "backend": {"kind": "vllm"},
                                "model": {"ref": "file:///m/x.Q4_K_M.gguf"}, "image": "i"})
    with pytest.raises(ValueError, match="use backend.kind: vllm"):
        Profile.model_validate({"name": "s", "backend": {"kind": "llamacpp"},
                                "model": {"ref": "hf://Qwen/Qwen2.5-7B-Instruct"}, "image": "i"})
    # a GGUF explicitly converted for vLLM is fine
    Profile.model_validate({"name": "ok", "backend": {"kind": "vllm"},
                            "model": {"ref": "file:///m/x.gguf", "convert": "hf"}, "image": "i"})


def test_builtin_vllm_profiles() -> None:
    cpu = resolve("cpu-vllm", env={}).profile
    assert cpu.backend.kind == "vllm" and cpu.accelerator == "cpu"
    assert cpu.model.convert == "hf"
    prod = resolve("prod-vllm", env={}).profile
    assert prod.accelerator == "cuda" and prod.engine == "docker"
    assert prod.server.host == "127.0.0.1"


def test_rendered_secret_reference_is_expanded_by_the_shell() -> None:
    import os
    import subprocess

    from llmdeploy.render.command_line import shell_line

    argv = run_argv(plan(vllm_profile(api_key_env="MY_VLLM_KEY")).run, DOCKER)
    at = argv.index("--env", argv.index("VLLM_API_KEY=${MY_VLLM_KEY}") - 1)
    line = shell_line(["printf", "%s", argv[at + 1]], wrap=True)
    assert "s3cret" not in line  # the rendered text holds only the variable's name
    shown = subprocess.run(["sh", "-c", line], capture_output=True, text=True, check=True,
                           env={**os.environ, "MY_VLLM_KEY": "s3cret"}).stdout
    assert shown == "VLLM_API_KEY=s3cret"


def test_one_vllm_version_for_every_accelerator() -> None:
    """The CUDA and ROCm images and the CPU build run the same pinned vLLM release."""
    import re

    from llmdeploy.backends.vllm import VLLM_VERSION
    from llmdeploy.profiles.loader import resolve

    assert plan(vllm_profile()).run.image == f"docker.io/vllm/vllm-openai:v{VLLM_VERSION}"
    assert plan(vllm_profile("rocm")).run.image == (
        f"docker.io/vllm/vllm-openai-rocm:v{VLLM_VERSION}")
    cpu = Profile.model_validate({
        "name": "c", "backend": {"kind": "vllm"}, "model": {"ref": "file:///m/hf-folder"},
        "build": {}})
    recipe = plan(cpu).images.recipe
    assert recipe is not None and recipe.variables["vllm_version"] == VLLM_VERSION
    prod = resolve("prod-vllm", env={}).profile
    assert prod.image is None and plan(prod).run.image == plan(vllm_profile()).run.image
    script = (Path(__file__).parents[2] / "scripts" / "make-vllm-wheelhouse.sh").read_text()
    found = re.search(r'VLLM_VERSION="\$\{VLLM_VERSION:-([0-9.]+)\}"', script)
    assert found and found.group(1) == VLLM_VERSION  # the wheelhouse the CPU image installs
