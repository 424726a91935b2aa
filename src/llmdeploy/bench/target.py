"""Resolve what to benchmark: an explicit ``--url``, a running deployment, or backend defaults."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from llmdeploy.bench.config import TargetSpec
from llmdeploy.errors import BenchError, DeploymentNotFoundError

if TYPE_CHECKING:
    from llmdeploy.deploy.discovery import DeploymentEndpoint

ApiChoice = Literal["openai", "ollama"]

# Where each backend listens by default, its API and its metrics path.
BACKEND_DEFAULTS: dict[str, tuple[str, ApiChoice, str | None]] = {
    "vllm": ("http://127.0.0.1:8000", "openai", "/metrics"),
    "llamacpp": ("http://127.0.0.1:8080", "openai", "/metrics"),
    "llama.cpp": ("http://127.0.0.1:8080", "openai", "/metrics"),
    "ollama": ("http://127.0.0.1:11434", "ollama", None),
}
OLLAMA_PORT = 11434

__all__ = ["BACKEND_DEFAULTS", "resolve_target", "split_url"]


def split_url(url: str, api: ApiChoice) -> tuple[str, str]:
    """``http://h:8000/v1`` -> (``http://h:8000``, ``/v1``). OpenAI APIs default to ``/v1``."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BenchError(
            f"bad URL {url!r}", hint="use e.g. --url http://127.0.0.1:8000/v1"
        )
    base = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    if api == "openai":
        for suffix in ("/chat/completions", "/completions"):
            if path.endswith(suffix):
                path = path[: -len(suffix)]
        if not path:
            path = "/v1"
    else:
        for suffix in ("/api/chat", "/api/generate", "/api"):
            if path.endswith(suffix):
                path = path[: -len(suffix)]
                break
    return base, path


def resolve_target(
    *,
    url: str | None = None,
    api: ApiChoice | None = None,
    model: str | None = None,
    profile: str | None = None,
    backend: str | None = None,
    name: str | None = None,
    endpoint: Literal["chat", "completions"] = "chat",
    stream: bool = True,
    api_key: str | None = None,
    metrics_path: str | None = None,
    scrape_metrics: bool = True,
) -> TargetSpec:
    """Build the target. ``--url`` wins; otherwise ask the deployment registry
    (``--profile`` / ``--backend`` / ``--name``); with only ``--backend`` and no running
    deployment, use that backend's default local port."""
    found_metrics: str | None = "/metrics"
    found_backend = backend
    if url is None:
        if profile is None and backend is None and name is None:
            raise BenchError(
                "nothing to benchmark",
                hint="pass --url http://127.0.0.1:8000/v1, --profile NAME or --backend NAME",
            )
        dep = _find_deployment(profile=profile, backend=backend, name=name)
        if dep is not None:
            url = str(dep.base_url)
            api = api or ("ollama" if str(dep.api) == "ollama" else "openai")
            model = model or (str(dep.served_model) if dep.served_model else None)
            found_metrics = dep.metrics_path
            found_backend = str(dep.backend) if dep.backend else backend
        elif backend is not None and backend.lower() in BACKEND_DEFAULTS:
            url, default_api, found_metrics = BACKEND_DEFAULTS[backend.lower()]
            api = api or default_api
        else:
            what = f"profile {profile!r}" if profile else f"backend {backend!r}"
            raise BenchError(
                f"no running deployment for {what}",
                hint="start it with llmdeploy up, or pass --url",
            )
    if api is None:
        api = "ollama" if urlsplit(url).port == OLLAMA_PORT else "openai"
    base, prefix = split_url(url, api)
    if metrics_path is None:
        metrics_path = found_metrics
    if backend is not None and backend.lower() == "ollama" and metrics_path == "/metrics":
        metrics_path = None  # Ollama has no Prometheus endpoint
    return TargetSpec(
        base_url=base,
        api=api,
        endpoint=endpoint,
        api_prefix=prefix,
        model=model,
        stream=stream,
        metrics_path=metrics_path if scrape_metrics else None,
        backend=found_backend,
        profile=profile,
        api_key=api_key,
    )


def _find_deployment(
    *, profile: str | None, backend: str | None, name: str | None
) -> DeploymentEndpoint | None:
    """The running deployment, or None when only a backend was named and none runs."""
    try:
        from llmdeploy.deploy.discovery import find_deployment
    except ImportError:
        if profile is not None or name is not None:
            raise BenchError(
                "this llmdeploy cannot look up deployments yet", hint="pass --url instead"
            ) from None
        return None
    try:
        return find_deployment(profile=profile, backend=backend, name=name)
    except DeploymentNotFoundError:
        if profile is None and name is None:
            return None
        raise
