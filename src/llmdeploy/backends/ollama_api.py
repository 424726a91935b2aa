"""The seam between the Ollama backend and a running Ollama server: its HTTP API (Ollama 0.32,
``docs/api.md``) through the ``ollama`` Python client, and httpx for the blob upload (which the
client cannot stream with progress, nor skip when the server already has the blob).

Errors come out as :class:`OllamaApiError` (status and the server's message); the backend
translates them into llmdeploy's exception tree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from llmdeploy.errors import DeploymentError, EndpointError, ModelError

TIMEOUT = httpx.Timeout(600.0, connect=10.0)  # per read: creating from a big GGUF is quiet
UPLOAD_CHUNK = 8 * 1024 * 1024


class ByteCallback(Protocol):
    """Told the bytes sent so far and the total, as an upload proceeds."""

    def __call__(self, completed: int, total: int) -> None: ...


@dataclass
class OllamaApiError(Exception):
    """Ollama answered with an error (status -1: inside a 200 stream), or did not answer."""

    message: str
    status_code: int = -1
    unreachable: bool = False

    def __str__(self) -> str:
        return self.message


class OllamaApi:
    """The few Ollama API calls llmdeploy makes, with errors as ``OllamaApiError``."""

    def __init__(self, base_url: str, *, timeout: httpx.Timeout = TIMEOUT) -> None:
        try:
            import ollama
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise DeploymentError(
                "the Ollama backend needs the `ollama` Python package",
                hint="pip install 'llmdeploy[ollama]'",
            ) from exc
        self._base_url = base_url.rstrip("/")
        self._response_error: type[Exception] = ollama.ResponseError
        self._client = ollama.Client(host=self._base_url, timeout=timeout)
        self._http = httpx.Client(base_url=self._base_url, timeout=timeout)

    def close(self) -> None:
        self._http.close()
        self._client.close()  # type: ignore[no-untyped-call]  # ollama leaves it unannotated

    def pull(self, model: str) -> Iterator[dict[str, Any]]:
        return self._stream(lambda: self._client.pull(model, stream=True))

    def create(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """POST /api/create with ``body`` (its JSON keys; ``from`` is ``from_`` in the client)."""
        client = self._client
        return self._stream(
            lambda: client.create(
                model=body["model"],
                from_=body.get("from"),
                files=body.get("files"),
                parameters=body.get("parameters"),
                template=body.get("template"),
                system=body.get("system"),
                stream=True,
            )
        )

    def load(self, model: str, keep_alive: str) -> None:
        """Load the model into memory: /api/generate with no prompt (documented)."""
        try:
            self._client.generate(model=model, keep_alive=_keep_alive(keep_alive))
        except (ConnectionError, httpx.HTTPError, self._response_error) as exc:
            error = self._error(exc)
            if error.unreachable:
                raise unreachable(error) from exc
            raise DeploymentError(
                f"Ollama could not load {model}: {error.message}",
                hint="see `llmdeploy logs`; a model larger than the container's memory "
                "limit (resources.memory) cannot load",
            ) from exc

    def blob_exists(self, digest: str) -> bool:
        try:
            response = self._http.head(f"/api/blobs/{digest}")
        except httpx.HTTPError as exc:
            raise unreachable(self._error(exc)) from exc
        return response.status_code == 200

    def push_blob(self, digest: str, path: Path, progress: ByteCallback) -> None:
        size = path.stat().st_size

        def chunks() -> Iterator[bytes]:
            sent = 0
            with path.open("rb") as handle:
                while chunk := handle.read(1024 * 1024):
                    sent += len(chunk)
                    yield chunk
                    progress(sent, size)

        try:
            response = self._http.post(
                f"/api/blobs/{digest}", content=chunks(), headers={"Content-Length": str(size)}
            )
        except httpx.HTTPError as exc:
            raise unreachable(self._error(exc)) from exc
        if response.status_code not in (200, 201):
            raise ModelError(
                f"Ollama refused the upload of {path.name}: HTTP {response.status_code} "
                f"{_error_text(response)}",
                hint="the file may have changed while it was sent; run `llmdeploy up` again",
            )

    def _stream(self, start: Callable[[], Iterable[Any]]) -> Iterator[dict[str, Any]]:
        try:
            for part in start():
                yield part.model_dump(exclude_none=True)
        except (ConnectionError, httpx.HTTPError, self._response_error) as exc:
            raise self._error(exc) from exc

    def _error(self, exc: Exception) -> OllamaApiError:
        if isinstance(exc, self._response_error):
            return OllamaApiError(
                str(getattr(exc, "error", exc)), status_code=int(getattr(exc, "status_code", -1))
            )
        return OllamaApiError(f"{self._base_url}: {exc or type(exc).__name__}", unreachable=True)


def _keep_alive(value: str) -> str | float:
    """OLLAMA_KEEP_ALIVE syntax (a Go duration or seconds) as the API's keep_alive takes it."""
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        return text


def _error_text(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    return str(data.get("error", data)) if isinstance(data, dict) else str(data)[:200]


def unreachable(error: OllamaApiError) -> EndpointError:
    """The error for a server that did not answer (the container may have stopped)."""
    return EndpointError(
        f"could not reach Ollama: {error.message}",
        hint="the container may have stopped: `llmdeploy logs` shows why",
    )
