"""Stream a chat completion from an OpenAI-compatible endpoint (Server-Sent Events)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from llmdeploy.errors import EndpointError


@dataclass
class ChatUsage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


def stream_chat(
    base_url: str,
    model: str,
    prompt: str,
    *,
    system: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    api_key: str | None = None,
    timeout_s: float = 300.0,
    usage: ChatUsage | None = None,
) -> Iterator[str]:
    """Yield the content deltas of a streamed chat completion; fill ``usage`` at the end."""
    messages = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": prompt})
    body: dict[str, object] = {
        "model": model,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if temperature is not None:
        body["temperature"] = temperature
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    url = base_url.rstrip("/") + "/chat/completions"
    try:
        with httpx.stream(
            "POST", url, json=body, headers=headers, timeout=httpx.Timeout(timeout_s, connect=5.0)
        ) as response:
            if response.status_code != 200:
                response.read()
                raise EndpointError(
                    f"{url} answered HTTP {response.status_code}: {response.text[:300]}"
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
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        yield text
    except httpx.HTTPError as exc:
        raise EndpointError(
            f"could not reach {url}: {exc}",
            hint="is the deployment running? `llmdeploy status`",
        ) from exc
