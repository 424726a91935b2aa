"""The inference APIs the bench speaks: what a request sends.

``openai`` (vLLM, llama.cpp, LM Studio, ...): ``POST {prefix}/chat/completions`` and
``{prefix}/completions``, streamed as SSE with ``stream_options.include_usage`` so the last
event carries the server's own token counts. ``ollama``: ``POST /api/chat`` and
``/api/generate``, streamed as NDJSON whose final ``done`` line carries ``eval_count`` and
``prompt_eval_count``. What comes back is read by :mod:`llmdeploy.bench.collector`.

Two request fields are optional and not part of every server's schema
(:data:`OPTIONAL_FIELDS`): ``stream_options`` (OpenAI's, refused by some strict servers) and
``ignore_eos`` (vLLM and llama.cpp). Each can be switched off, and the runner drops one that
the server refuses.
"""

from __future__ import annotations

import json
from typing import Any, Literal

ApiName = Literal["openai", "ollama"]
EndpointName = Literal["chat", "completions"]

OPTIONAL_FIELDS = ("stream_options", "ignore_eos")

__all__ = ["OPTIONAL_FIELDS", "ApiName", "EndpointName", "Prompt", "build_body", "endpoint_path"]


class Prompt:
    """One request's input: plain text or chat messages, and its output-length cap."""

    __slots__ = ("max_tokens", "messages", "text")

    def __init__(
        self,
        text: str | None = None,
        messages: list[dict[str, str]] | None = None,
        max_tokens: int | None = None,
    ) -> None:
        if text is None and messages is None:
            raise ValueError("a prompt needs text or messages")
        self.text = text
        self.messages = messages
        self.max_tokens = max_tokens

    def as_messages(self) -> list[dict[str, str]]:
        if self.messages is not None:
            return self.messages
        return [{"role": "user", "content": self.text or ""}]

    def as_text(self) -> str:
        if self.text is not None:
            return self.text
        return "\n".join(str(m.get("content", "")) for m in self.messages or [])


def endpoint_path(api: ApiName, endpoint: EndpointName, api_prefix: str = "/v1") -> str:
    prefix = api_prefix.rstrip("/")
    if api == "ollama":
        return f"{prefix}/api/chat" if endpoint == "chat" else f"{prefix}/api/generate"
    return f"{prefix}/chat/completions" if endpoint == "chat" else f"{prefix}/completions"


def build_body(
    api: ApiName,
    endpoint: EndpointName,
    model: str,
    prompt: Prompt,
    *,
    stream: bool,
    ignore_eos: bool,
    stream_usage: bool = True,
    extra_body: dict[str, Any] | None = None,
) -> bytes:
    """The JSON request body, as bytes ready to send.

    ``stream_usage`` asks an OpenAI server for a final usage event (``stream_options``);
    ``ignore_eos`` asks vLLM / llama.cpp to generate exactly ``max_tokens``. ``extra_body`` is
    merged last (objects one level deep); a key set to ``null`` there removes the field."""
    body: dict[str, Any] = {"model": model, "stream": stream}
    if endpoint == "chat":
        body["messages"] = prompt.as_messages()
    else:
        body["prompt"] = prompt.as_text()
    if api == "openai":
        if prompt.max_tokens is not None:
            body["max_tokens"] = prompt.max_tokens
        if stream and stream_usage:
            body["stream_options"] = {"include_usage": True}
        if ignore_eos:
            body["ignore_eos"] = True
    else:
        options: dict[str, Any] = {}
        if prompt.max_tokens is not None:
            options["num_predict"] = prompt.max_tokens
        if options:
            body["options"] = options
    if extra_body:
        for key, value in extra_body.items():
            if value is None:
                body.pop(key, None)
            elif isinstance(value, dict) and isinstance(body.get(key), dict):
                merged = {**body[key], **value}
                body[key] = {k: v for k, v in merged.items() if v is not None}
            else:
                body[key] = value
    return json.dumps(body, separators=(",", ":")).encode()
