"""The inference APIs the bench speaks: request bodies and response collectors.

``openai`` (vLLM, llama.cpp, LM Studio, ...): ``POST {prefix}/chat/completions`` and
``{prefix}/completions``, streamed as SSE with ``stream_options.include_usage`` so the last
event carries the server's own token counts. ``ollama``: ``POST /api/chat`` and
``/api/generate``, streamed as NDJSON whose final ``done`` line carries ``eval_count`` and
``prompt_eval_count``.

A collector is the :class:`~llmdeploy.bench.http.BodySink` for one request. It stamps each
event that carries generated text (a *content chunk*) with its arrival time, keeps the server's
usage numbers, counts malformed events (skipped, never fatal) and records an error cause:
``http_<status>`` or ``server_error`` (an error object inside the stream).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from llmdeploy.bench.streams import NdjsonDecoder, SseDecoder

ApiName = Literal["openai", "ollama"]
EndpointName = Literal["chat", "completions"]

_loads = json.loads

__all__ = ["Collector", "Prompt", "build_body", "endpoint_path"]


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
    extra_body: dict[str, Any] | None = None,
) -> bytes:
    """The JSON request body, as bytes ready to send."""
    body: dict[str, Any] = {"model": model, "stream": stream}
    if endpoint == "chat":
        body["messages"] = prompt.as_messages()
    else:
        body["prompt"] = prompt.as_text()
    if api == "openai":
        if prompt.max_tokens is not None:
            body["max_tokens"] = prompt.max_tokens
        if stream:
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
            if isinstance(value, dict) and isinstance(body.get(key), dict):
                body[key] = {**body[key], **value}
            else:
                body[key] = value
    return json.dumps(body, separators=(",", ":")).encode()


class Collector:
    """Collects one response: content-chunk times, usage, error cause. A ``BodySink``."""

    __slots__ = (
        "_body",
        "_decoder",
        "_event",
        "api",
        "done",
        "end_t",
        "error",
        "error_detail",
        "malformed",
        "output_tokens",
        "prompt_tokens",
        "status",
        "stream",
        "token_times",
    )

    def __init__(self, api: ApiName, stream: bool) -> None:
        self.api = api
        self.stream = stream
        self.status = 0
        self.token_times: list[float] = []
        self.prompt_tokens: int | None = None
        self.output_tokens: int | None = None
        self.error: str | None = None
        self.error_detail: str | None = None
        self.malformed = 0
        self.done = False
        self.end_t = 0.0
        self._body: list[bytes] = []
        self._event = self._openai_event if api == "openai" else self._ollama_event
        self._decoder: SseDecoder | NdjsonDecoder | None = None
        if stream:
            self._decoder = (
                SseDecoder(self._event) if api == "openai" else NdjsonDecoder(self._event)
            )

    # BodySink ---------------------------------------------------------------------
    def on_status(self, status: int) -> None:
        self.status = status
        if status >= 400:
            self._decoder = None  # error bodies are read whole, never parsed as a stream

    def on_body(self, data: bytes, t: float) -> None:
        if self._decoder is not None:
            self._decoder.feed(data, t)
        else:
            self._body.append(data)

    def on_end(self, t: float) -> None:
        self.end_t = t
        if self.status >= 400 or self.status < 200:
            detail = b"".join(self._body)[:300].decode("utf-8", "replace").strip()
            self.error = f"http_{self.status}"
            self.error_detail = detail or None
            return
        if self._decoder is not None:
            self._decoder.close(t)
            return
        body = b"".join(self._body)
        self._body = []
        if self.api == "openai":
            self._openai_whole(body)
        else:
            self._ollama_whole(body)

    # events -------------------------------------------------------------------------
    def _set_error(self, err: Any) -> None:
        self.error = "server_error"
        if isinstance(err, dict):
            err = err.get("message", err)
        self.error_detail = str(err)[:300]

    def _event_object(self, payload: bytes) -> dict[str, Any] | None:
        """A stream event as a JSON object; malformed lines are counted, errors recorded."""
        try:
            obj = _loads(payload)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            self.malformed += 1
            return None
        if obj.get("error"):
            self._set_error(obj["error"])
            return None
        return obj

    def _openai_event(self, payload: bytes, t: float) -> None:
        if payload == b"[DONE]":
            self.done = True
            return
        obj = self._event_object(payload)
        if obj is None:
            return
        choices = obj.get("choices")
        if choices:
            for choice in choices:
                delta = choice.get("delta")
                if delta is not None:
                    content = (
                        delta.get("content")
                        or delta.get("reasoning_content")
                        or delta.get("reasoning")
                    )
                else:
                    content = choice.get("text")
                if content:
                    self.token_times.append(t)
                    break
        usage = obj.get("usage")
        if usage:
            self.prompt_tokens = usage.get("prompt_tokens")
            self.output_tokens = usage.get("completion_tokens")

    def _ollama_event(self, payload: bytes, t: float) -> None:
        obj = self._event_object(payload)
        if obj is None:
            return
        message = obj.get("message")
        if message is not None:
            content = message.get("content") or message.get("thinking")
        else:
            content = obj.get("response") or obj.get("thinking")
        if content:
            self.token_times.append(t)
        if obj.get("done"):
            self.done = True
            self.output_tokens = obj.get("eval_count")
            self.prompt_tokens = obj.get("prompt_eval_count")

    def _openai_whole(self, body: bytes) -> None:
        try:
            obj = _loads(body)
        except ValueError:
            self.error = "protocol"
            self.error_detail = "response body is not JSON"
            return
        if not isinstance(obj, dict):
            self.error, self.error_detail = "protocol", "response body is not a JSON object"
            return
        if obj.get("error"):
            self._set_error(obj["error"])
            return
        usage = obj.get("usage") or {}
        self.prompt_tokens = usage.get("prompt_tokens")
        self.output_tokens = usage.get("completion_tokens")
        self.done = True

    def _ollama_whole(self, body: bytes) -> None:
        try:
            obj = _loads(body)
        except ValueError:
            self.error, self.error_detail = "protocol", "response body is not JSON"
            return
        if not isinstance(obj, dict):
            self.error, self.error_detail = "protocol", "response body is not a JSON object"
            return
        if obj.get("error"):
            self._set_error(obj["error"])
            return
        self.prompt_tokens = obj.get("prompt_eval_count")
        self.output_tokens = obj.get("eval_count")
        self.done = True
