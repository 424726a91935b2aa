"""llama.cpp's ``llama-server``: argv, health and metrics; the image runs it as entrypoint.

The same argv works with the upstream images (``ghcr.io/ggml-org/llama.cpp:server``, whose
entrypoint is ``llama-server``) and with the locally built CPU image (built from the
``llamacpp-cpu`` Containerfile, whose ``llama-server`` runs the same C++ server through the
prebuilt ``xllamacpp`` wheel).
"""

from __future__ import annotations

from llmdeploy import __version__
from llmdeploy.backends.base import RunningServer, build_base_image
from llmdeploy.core.launch import BuildRecipe, ModelMount, ServerLaunch, content_tag
from llmdeploy.core.reporting import Reporter
from llmdeploy.profiles.schema import LlamaCppBackend, Profile

CONTAINER_PORT = 8080
# the uid of the llamacpp-cpu image's user; llama-server writes nothing but /tmp, and the
# upstream images' binaries are world-readable, so it runs as this uid on a read-only root
SERVER_UID = 10001
XLLAMACPP_VERSION = "2026.10.11549"
UPSTREAM_IMAGES = {
    "cpu": "ghcr.io/ggml-org/llama.cpp:server",
    "cuda": "ghcr.io/ggml-org/llama.cpp:server-cuda",
    "rocm": "ghcr.io/ggml-org/llama.cpp:server-rocm",
    "xpu": "ghcr.io/ggml-org/llama.cpp:server-intel",  # SYCL build for Intel GPUs
}
ALL_LAYERS = 999
# libllama's INFO lines (``llama_kv_cache: size = ... MiB``, the cache the server really built,
# which `up` and `status` compare with the plan) are printed from this verbosity on; the
# server's default, 3, hides them (llama.cpp ``common/log.h``; Ollama runs its llama-server
# with the same flag for the same lines, ``llm/llama_server.go``)
KV_LOG_VERBOSITY = 4
VERBOSITY_FLAGS = (
    "-lv",
    "--verbosity",
    "--log-verbosity",
    "-v",
    "--verbose",
    "--log-verbose",
    "--log-disable",
)


def sets_verbosity(extra_args: tuple[str, ...]) -> bool:
    """Whether the profile's own flags set llama-server's log verbosity (then they decide)."""
    return any(arg.split("=", 1)[0] in VERBOSITY_FLAGS for arg in extra_args)


class LlamaCppServer:
    kind = "llamacpp"

    def describe(self, profile: Profile, model: ModelMount) -> ServerLaunch:
        options = profile.backend
        assert isinstance(options, LlamaCppBackend)
        name = profile.model.served_name
        args = [
            "--model", model.container_path,
            "--host", "0.0.0.0",  # inside the container; the host side is profile.server.host
            "--port", str(CONTAINER_PORT),
            "--ctx-size", str(options.ctx_size),
            "--parallel", str(options.parallel),
            "--alias", name,
        ]  # fmt: skip
        if options.threads is not None:
            args += ["--threads", str(options.threads)]
        if profile.accelerator != "cpu":  # the schema refuses gpu_layers on the CPU
            layers = ALL_LAYERS if options.gpu_layers is None else options.gpu_layers
            args += ["--n-gpu-layers", str(layers)]
        if options.metrics:
            args.append("--metrics")
        if not sets_verbosity(options.extra_args):
            args += ["--log-verbosity", str(KV_LOG_VERBOSITY)]
        args += list(options.extra_args)
        health = profile.health.path or "/health"
        return ServerLaunch(
            args=tuple(args),
            container_port=CONTAINER_PORT,
            health_path=health,
            api="openai",
            api_base_path="/v1",
            served_model=name,
            metrics_path="/metrics" if options.metrics else None,
            # /health answers 503 while the model loads, 200 once it can serve
            ready_path=profile.probes.ready_path or health,
            live_path=profile.probes.live_path or health,
            run_as_user=SERVER_UID,
            read_only_root=True,
            start_s=15,
        )

    def default_image(self, profile: Profile) -> str:
        return UPSTREAM_IMAGES[profile.accelerator]

    def build_recipe(self, profile: Profile) -> BuildRecipe:
        base = build_base_image(profile, upstream_image=UPSTREAM_IMAGES[profile.accelerator])
        template, context = "llamacpp-cpu.Containerfile.j2", ("llama-server",)
        variables = {
            "base_image": base,
            "xllamacpp_version": XLLAMACPP_VERSION,
            "llmdeploy_version": __version__,
        }
        return BuildRecipe(
            template=template,
            context_files=context,
            default_tag=content_tag(
                "localhost/llmdeploy/llamacpp-cpu", __version__,
                template=template, context_files=context, variables=variables,
            ),
            variables=variables,
        )

    def after_healthy(self, server: RunningServer, reporter: Reporter) -> None:
        """llama-server loads the model before /health answers 200: nothing left to do."""
