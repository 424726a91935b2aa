"""Look up the backend adapter for a profile's ``backend.kind``.

Each adapter's module is imported when a profile asks for it, not before: the Ollama
adapter brings its API client (httpx) and Modelfile templates (jinja2), about 150 ms that a
llama.cpp deployment has no use for.
"""

from __future__ import annotations

import importlib

from llmdeploy.backends.base import Backend
from llmdeploy.errors import ProfileError

# backend.kind -> (module, class)
_BACKENDS: dict[str, tuple[str, str]] = {
    "llamacpp": ("llmdeploy.backends.llamacpp", "LlamaCppServer"),
    "vllm": ("llmdeploy.backends.vllm", "VllmServer"),
    "ollama": ("llmdeploy.backends.ollama", "OllamaServer"),
}


def get_backend(kind: str) -> Backend:
    """A new adapter for ``kind``; ProfileError naming the known kinds for any other."""
    try:
        module, name = _BACKENDS[kind]
    except KeyError:
        raise ProfileError(
            f"unknown backend {kind!r}", hint=f"known backends: {', '.join(sorted(_BACKENDS))}"
        ) from None
    backend: Backend = getattr(importlib.import_module(module), name)()
    return backend
