"""Look up the backend adapter for a profile's ``backend.kind``."""

from __future__ import annotations

from llmdeploy.backends.base import Backend
from llmdeploy.backends.llamacpp import LlamaCppServer
from llmdeploy.backends.ollama import OllamaServer
from llmdeploy.backends.vllm import VllmServer
from llmdeploy.errors import ProfileError

_BACKENDS: dict[str, type[Backend]] = {
    "llamacpp": LlamaCppServer,
    "vllm": VllmServer,
    "ollama": OllamaServer,
}


def get_backend(kind: str) -> Backend:
    try:
        return _BACKENDS[kind]()
    except KeyError:
        raise ProfileError(
            f"unknown backend {kind!r}", hint=f"known backends: {', '.join(sorted(_BACKENDS))}"
        ) from None
