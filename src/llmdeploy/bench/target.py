"""Resolve what to benchmark: an explicit ``--url``, a running deployment, or backend defaults.

The API kind is decided here and nowhere else (:func:`resolve_target`), in this order:
``--api`` > the deployment's labels or ``--backend`` > the URL path (``/v1``,
``/chat/completions``, ``/completions`` mean OpenAI; ``/api``, ``/api/chat``,
``/api/generate`` mean Ollama) > the port (11434 is Ollama's) > OpenAI. A guess from the
port or the default is marked as such in :attr:`TargetSpec.api_source`; the runner confirms
it with the server's model listing before the first stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from llmdeploy.bench.config import ApiSource, TargetSpec
from llmdeploy.core.api_url import (
    OLLAMA_NATIVE_PATHS,
    OPENAI_ENDPOINTS,
    api_url_problem,
    openai_base_path,
    shown_url,
)
from llmdeploy.errors import DeploymentNotFoundError, UsageError

ApiChoice = Literal["openai", "ollama"]


@dataclass(frozen=True)
class RunningEndpoint:
    """What a deployment lookup found for ``--profile`` / ``--deployment`` / ``--backend``:
    plain data, so the bench needs no deployment code. ``base_url`` is ``http://host:port``;
    ``api`` is ``openai`` or ``ollama``; empty strings mean "not recorded"."""

    base_url: str
    api: str
    served_model: str | None = None
    metrics_path: str | None = "/metrics"
    backend: str | None = None

# Where each backend listens by default, its API and its metrics path.
BACKEND_DEFAULTS: dict[str, tuple[str, ApiChoice, str | None]] = {
    "vllm": ("http://127.0.0.1:8000", "openai", "/metrics"),
    "llamacpp": ("http://127.0.0.1:8080", "openai", "/metrics"),
    "llama.cpp": ("http://127.0.0.1:8080", "openai", "/metrics"),
    "ollama": ("http://127.0.0.1:11434", "ollama", None),
}
OLLAMA_PORT = 11434
_OPENAI_PATHS = ("/v1", *OPENAI_ENDPOINTS)
_OLLAMA_PATHS = OLLAMA_NATIVE_PATHS

__all__ = [
    "BACKEND_DEFAULTS",
    "RunningEndpoint",
    "api_of_path",
    "resolve_target",
    "split_url",
]


def _parts(url: str) -> tuple[str, str, int | None]:
    """(origin, path without trailing slash, port) of an http(s) URL; UsageError otherwise."""
    problem = api_url_problem(url)
    if problem is not None:
        raise UsageError(f"bad URL {shown_url(url)!r}: {problem}",
                         hint="use e.g. --url http://127.0.0.1:8000/v1 (a key: --api-key or "
                         "$LLMDEPLOY_API_KEY)")
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/"), parts.port


def api_of_path(path: str) -> ApiChoice | None:
    """The API a URL path names: ``/v1`` ... is OpenAI's, ``/api`` ... Ollama's; else None."""
    p = path.rstrip("/")
    if p.endswith(_OLLAMA_PATHS):
        return "ollama"
    if p.endswith(_OPENAI_PATHS) or "/v1/" in p:
        return "openai"
    return None


def split_url(url: str, api: ApiChoice) -> tuple[str, str]:
    """``http://h:8000/v1`` -> (``http://h:8000``, ``/v1``). OpenAI APIs default to ``/v1``."""
    base, path, _ = _parts(url)
    if api == "openai":
        path = openai_base_path(path)
    else:
        for suffix in _OLLAMA_PATHS[::-1]:
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
    stream_usage: bool = True,
    api_key: str | None = None,
    metrics_path: str | None = None,
    scrape_metrics: bool = True,
    deployment: RunningEndpoint | None = None,
) -> TargetSpec:
    """Build the target. ``--url`` wins; otherwise the running ``deployment`` the caller
    looked up for ``--profile`` / ``--backend`` / ``--name``; with only ``--backend`` and no
    running deployment, that backend's default local port.

    Raises UsageError for a bad URL, API key or metrics path, an unknown backend, nothing to
    benchmark, or an ``--api`` that contradicts the URL path; DeploymentNotFoundError for a
    profile or name without a ``deployment``."""
    if api_key is not None and not (api_key.isascii() and api_key.isprintable()):
        raise UsageError("the API key must be printable ASCII (it is sent as an HTTP header)")
    if metrics_path is not None and not metrics_path.startswith("/"):
        raise UsageError(f"--metrics-path must start with '/' (got {metrics_path!r})")
    found_metrics: str | None = "/metrics"
    found_backend = backend
    source: ApiSource | None = "flag" if api is not None else None
    if backend is not None and backend.lower() not in BACKEND_DEFAULTS:
        raise UsageError(
            f"unknown backend {backend!r}",
            hint=f"use one of {', '.join(sorted(BACKEND_DEFAULTS))}",
        )
    if url is None:
        if profile is None and backend is None and name is None:
            raise UsageError(
                "nothing to benchmark",
                hint="pass --url http://127.0.0.1:8000/v1, --profile NAME or --backend NAME",
            )
        dep = deployment
        if dep is None and (profile is not None or name is not None):
            # the caller's lookup reports this with the engines it searched; a safety net
            raise DeploymentNotFoundError(f"no running deployment {name or profile!r}")
        if dep is not None:
            url = dep.base_url
            if api is None:
                api, source = ("ollama" if dep.api == "ollama" else "openai"), "deployment"
            model = model or dep.served_model or None
            found_metrics = dep.metrics_path
            found_backend = dep.backend or backend
        else:
            assert backend is not None  # a profile or name that runs nothing raised above
            url, default_api, found_metrics = BACKEND_DEFAULTS[backend.lower()]
            if api is None:
                api, source = default_api, "backend"
    _, path, port = _parts(url)
    path_api = api_of_path(path)
    if source == "flag" and path_api is not None and path_api != api:
        what = "OpenAI-compatible" if path_api == "openai" else "Ollama's native"
        raise UsageError(
            f"--api {api} contradicts the URL path {path!r}, which is the {what} API",
            hint="drop --api, or give the server root, e.g. --url http://127.0.0.1:11434 "
            "--api ollama",
        )
    if api is None:
        if path_api is not None:
            api, source = path_api, "url"
        elif port == OLLAMA_PORT:
            api, source = "ollama", "port"
        else:
            api, source = "openai", "default"
    assert source is not None
    base, prefix = split_url(url, api)
    if metrics_path is None:
        metrics_path = found_metrics
    if backend is not None and backend.lower() == "ollama" and metrics_path == "/metrics":
        metrics_path = None  # Ollama has no Prometheus endpoint
    return TargetSpec(
        base_url=base,
        api=api,
        api_source=source,
        endpoint=endpoint,
        api_prefix=prefix,
        model=model,
        stream=stream,
        stream_usage=stream_usage,
        metrics_path=metrics_path if scrape_metrics else None,
        backend=found_backend,
        profile=profile,
        api_key=api_key,
    )

