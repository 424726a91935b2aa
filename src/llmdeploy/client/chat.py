"""Stream a chat completion from an OpenAI-compatible endpoint (Server-Sent Events).

:func:`stream_messages` sends a conversation (:func:`messages_for` makes the one-prompt
one; the interactive session resends its history each turn). It yields the content
deltas as they arrive and fill a :class:`ChatUsage` at the end with what the server reported
(token counts from its final ``usage`` event, the ``finish_reason`` of the choice). Every
failure is an :class:`~llmdeploy.errors.EndpointError` (exit 7) naming the URL.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Sequence
from dataclasses import dataclass

import httpx

from llmdeploy.errors import EndpointError

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": ...}


def messages_for(prompt: str, system: str | None = None) -> list[Message]:
    """The one-prompt conversation: the system prompt, if any, then the user's prompt."""
    messages: list[Message] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": prompt})
    return messages


@dataclass
class ChatUsage:
    """What the server reported about one answer; None where it reported nothing."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None  # stop | length | ... (the last one a choice carried)


@dataclass(frozen=True)
class Sampling:
    """The sampling settings of a request. None leaves a field out (the server's default).

    ``seed`` is OpenAI's ``seed`` field (llama.cpp, vLLM and Ollama's ``/v1`` honour it)."""

    max_tokens: int | None = None
    temperature: float | None = None
    seed: int | None = None

    def body_fields(self) -> dict[str, object]:
        fields: dict[str, object] = {}
        if self.max_tokens is not None:
            fields["max_tokens"] = self.max_tokens
        if self.temperature is not None:
            fields["temperature"] = self.temperature
        if self.seed is not None:
            fields["seed"] = self.seed
        return fields


def stream_messages(
    base_url: str,
    model: str,
    messages: Sequence[Message],
    *,
    sampling: Sampling = Sampling(),
    api_key: str | None = None,
    timeout_s: float = 300.0,
    usage: ChatUsage | None = None,
) -> Generator[str, None, None]:
    """Yield the content deltas of a streamed chat completion of ``messages`` at
    ``base_url`` (``http://host:port/v1``); fill ``usage`` as the stream reports it.

    Closing the generator early (Ctrl-C in the interactive chat) closes the connection, which
    tells the server to stop generating. Raises EndpointError: an HTTP status other than 200
    (with the start of the server's answer), an ``error`` event in the stream, or no answer."""
    body: dict[str, object] = {
        "model": model,
        "messages": list(messages),
        "stream": True,
        "stream_options": {"include_usage": True},
        **sampling.body_fields(),
    }
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    url = base_url.rstrip("/") + "/chat/completions"
    try:
        with httpx.stream(
            "POST", url, json=body, headers=headers, timeout=httpx.Timeout(timeout_s, connect=5.0)
        ) as response:
            if response.status_code != 200:
                response.read()
                raise EndpointError(
                    f"{url} answered HTTP {response.status_code}: {response.text[:300]}",
                    hint=_status_hint(response.status_code, bool(api_key)),
                )
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                try:
                    event = json.loads(payload)
                except ValueError:
                    continue
                if "error" in event:
                    raise EndpointError(f"{url} streamed an error: {event['error']}")
                if usage is not None and event.get("usage"):
                    usage.prompt_tokens = event["usage"].get("prompt_tokens")
                    usage.completion_tokens = event["usage"].get("completion_tokens")
                for choice in event.get("choices") or []:
                    if usage is not None and choice.get("finish_reason"):
                        usage.finish_reason = str(choice["finish_reason"])
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        yield text
    except httpx.HTTPError as exc:
        raise EndpointError(
            f"could not reach {url}: {exc}",
            hint="is the server running and listening there? (a deployment: `llmdeploy "
            "status`)",
        ) from exc


def _status_hint(status: int, sent_key: bool) -> str | None:
    """What to try for a refused request: a key for 401/403 (a LiteLLM router answers a
    missing key with 500), the model name for 404."""
    if status in (401, 403) or (status == 500 and not sent_key):
        return ("the server may want a key: --api-key-env VAR (a `route --run` router: "
                "--api-key-env LITELLM_MASTER_KEY, or its --master-key-env)"
                if not sent_key else "the key was refused: check the variable --api-key-env names")
    if status == 404:
        return "check the model name (--model) and the URL's path (…/v1)"
    return None


def list_models(base_url: str, *, api_key: str | None = None, timeout_s: float = 5.0) -> list[str]:
    """The model ids ``GET {base_url}/models`` lists (OpenAI's shape, ``{"data": [{"id"}]}``),
    in the server's order. Raises EndpointError when the server does not answer that."""
    url = base_url.rstrip("/") + "/models"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = httpx.get(url, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise EndpointError(f"could not reach {url}: {exc}") from exc
    if response.status_code != 200:
        raise EndpointError(f"{url} answered HTTP {response.status_code}: {response.text[:300]}")
    try:
        data = response.json().get("data") or []
        return [str(entry["id"]) for entry in data if isinstance(entry, dict) and "id" in entry]
    except (ValueError, AttributeError) as exc:
        raise EndpointError(f"{url} did not answer a model list: {response.text[:200]}") from exc
