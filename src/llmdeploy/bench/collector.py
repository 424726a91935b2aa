"""What came back: the response collector of one request, and the server's own message.

A collector is the :class:`~llmdeploy.bench.http.BodySink` for one request. It stamps each
event that carries generated text (a *content chunk*) with its arrival time, keeps the server's
usage numbers (and cached prompt tokens where the server reports them), counts malformed
events (skipped, never fatal) and decides the outcome. A request **succeeds** only when it
brought generated text (content chunks, or non-empty text in a whole response) or a positive
output-token count; otherwise its error cause is one of:

    http_<status>         the server answered an HTTP error (its message is kept)
    server_error          an error object inside a 200 response or stream
    empty_response        a well-formed 200 answer with no generated text and no token count
    unparseable_response  a 200 body from which no event / JSON object could be read
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, Literal

from llmdeploy.bench.protocols import ApiName
from llmdeploy.bench.streams import NdjsonDecoder, SseDecoder

EMPTY = "empty_response"
UNPARSEABLE = "unparseable_response"
SERVER_ERROR = "server_error"
_HEAD_BYTES = 4096  # the start of a streamed body kept to explain an unparseable one
_DETAIL_CHARS = 300

_loads = json.loads

__all__ = ["EMPTY", "SERVER_ERROR", "UNPARSEABLE", "Collector", "server_message"]


def server_message(body: bytes, limit: int = _DETAIL_CHARS) -> str | None:
    """The human message in an error body: ``error.message``, ``message``, ``detail`` (also
    FastAPI/pydantic detail lists, as ``field: msg``), a plain ``error`` string, or else the
    start of the body with whitespace collapsed (an HTML page, a proxy's text)."""
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return None
    msg: str | None = None
    if text[:1] in ("{", "["):
        try:
            msg = _message_of(_loads(text))
        except (ValueError, RecursionError):
            msg = None
    if not msg:
        msg = " ".join(text.split())
    return msg[:limit]


def _message_of(obj: Any, depth: int = 0) -> str | None:
    if depth > 4:
        return None
    if isinstance(obj, str):
        return obj.strip() or None
    if isinstance(obj, dict):
        for key in ("error", "message", "detail", "msg"):
            value = obj.get(key)
            if value:
                found = _message_of(value, depth + 1)
                if found:
                    return found
        return None
    if isinstance(obj, list):
        parts: list[str] = []
        for item in obj[:5]:
            if isinstance(item, dict) and isinstance(item.get("msg"), str):
                loc = item.get("loc")
                where = (
                    ".".join(str(x) for x in loc if x != "body") if isinstance(loc, list) else ""
                )
                parts.append(f"{where}: {item['msg']}" if where else item["msg"])
            else:
                found = _message_of(item, depth + 1)
                if found:
                    parts.append(found)
        return "; ".join(parts) or None
    return None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class Collector:
    """Collects one response: content-chunk times (``time.monotonic()`` - ``origin``),
    usage, outcome; ``end_t`` is the monotonic time of the end. A ``BodySink``."""

    __slots__ = (
        "_body",
        "_decoder",
        "_event",
        "_head",
        "_head_open",
        "answered_model",
        "api",
        "cached_tokens",
        "done",
        "done_with_text",
        "end_t",
        "error",
        "error_body",
        "error_detail",
        "events",
        "malformed",
        "origin",
        "output_tokens",
        "prompt_tokens",
        "status",
        "stream",
        "token_times",
    )

    def __init__(self, api: ApiName, stream: bool, origin: float = 0.0) -> None:
        self.api = api
        # content-chunk times are kept relative to origin (the run's), so a stage's
        # millions of them need no second pass to be made relative after the stage
        self.origin = origin
        self.stream = stream
        self.status = 0
        self.token_times: list[float] = []  # seconds after origin
        self.prompt_tokens: int | None = None
        self.output_tokens: int | None = None
        self.cached_tokens: int | None = None
        self.error: str | None = None
        self.error_detail: str | None = None
        self.error_body = b""  # an HTTP error's body (start), for callers that inspect it
        self.malformed = 0
        self.events = 0  # stream events without generated text (role, usage, [DONE], ...)
        self.done = False
        self.done_with_text = False  # a whole (non-streamed) answer carried text
        self.answered_model: str | None = None  # the "model" the server says answered
        self.end_t = 0.0
        self._body: list[bytes] = []
        self._head = b""  # the body's start, kept until an event is recognised
        self._head_open = stream
        self._event = self._openai_event if api == "openai" else self._ollama_event
        self._decoder: SseDecoder | NdjsonDecoder | None = None
        if stream:
            self._decoder = (
                SseDecoder(self._event) if api == "openai" else NdjsonDecoder(self._event)
            )

    @property
    def ok(self) -> bool:
        """Success, defined positively: generated text or a positive output-token count."""
        if self.error is not None:
            return False
        return bool(self.token_times) or (self.output_tokens or 0) > 0 or self.done_with_text

    def token_count(self) -> tuple[int | None, Literal["usage", "chunks", "none"]]:
        """Output tokens and where the number came from: the server's positive count, else
        the number of content chunks (streams), else unknown."""
        n = self.output_tokens
        if n is not None and n > 0:
            return n, "usage"
        if self.token_times:
            return len(self.token_times), "chunks"
        return None, "none"

    # BodySink ---------------------------------------------------------------------
    def on_status(self, status: int) -> None:
        self.status = status
        if not 200 <= status < 300:
            self._decoder = None  # error bodies are read whole, never parsed as a stream

    def on_body(self, data: bytes, t: float) -> None:
        decoder = self._decoder
        if decoder is not None:
            if self._head_open:
                self._keep_head(data)
            decoder.feed(data, t)
        else:
            self._body.append(data)

    def _keep_head(self, data: bytes) -> None:
        if self.events or self.token_times or len(self._head) >= _HEAD_BYTES:
            self._head_open = False  # the stream is parseable: no need to explain it
            return
        self._head += data[: _HEAD_BYTES - len(self._head)]

    def on_end(self, t: float) -> None:
        self.end_t = t
        if not 200 <= self.status < 300:
            body = b"".join(self._body)
            self._body = []
            self.error = f"http_{self.status}"
            self.error_body = body[:_HEAD_BYTES]
            self.error_detail = server_message(body)
            return
        if self._decoder is not None:
            self._decoder.close(t)
            self._judge_stream()
            return
        body = b"".join(self._body)
        self._body = []
        self._judge_whole(body)

    # outcome ------------------------------------------------------------------------
    def _judge_stream(self) -> None:
        if self.error is not None:
            return
        if self.events == 0 and not self.token_times:
            head = self._head
            if not head.strip():
                self.error, self.error_detail = EMPTY, "HTTP 200 with an empty body"
                return
            obj = None
            with contextlib.suppress(ValueError, RecursionError):
                obj = _loads(head)
            if isinstance(obj, dict) and obj.get("error"):
                self._set_error(obj["error"])
                return
            self.error = UNPARSEABLE
            kind = "an event stream" if self.api == "openai" else "NDJSON lines"
            self.error_detail = f"expected {kind}; the body starts: {server_message(head)}"
            return
        if not self.token_times and not (self.output_tokens or 0) > 0:
            self.error = EMPTY
            self.error_detail = (
                f"HTTP 200 stream of {self.events} event(s), none with generated text "
                "or an output-token count"
            )

    def _judge_whole(self, body: bytes) -> None:
        try:
            obj = _loads(body)
        except (ValueError, RecursionError):
            obj = None
        if not isinstance(obj, dict):
            self.error = EMPTY if not body.strip() else UNPARSEABLE
            self.error_detail = (
                "HTTP 200 with an empty body"
                if not body.strip()
                else f"expected a JSON object; the body starts: {server_message(body)}"
            )
            return
        if obj.get("error"):
            self._set_error(obj["error"])
            return
        self._note_model(obj)
        if self.api == "openai":
            self._openai_whole(obj)
        else:
            self._ollama_whole(obj)
        self.done = True
        if not self.done_with_text and not (self.output_tokens or 0) > 0:
            self.error = EMPTY
            self.error_detail = "HTTP 200 answer with no generated text and no output-token count"

    # events -------------------------------------------------------------------------
    def _set_error(self, err: Any) -> None:
        self.error = SERVER_ERROR
        msg = _message_of(err) if not isinstance(err, str) else err
        self.error_detail = (msg or str(err))[:_DETAIL_CHARS]

    def _event_object(self, payload: bytes) -> dict[str, Any] | None:
        """A stream event as a JSON object; malformed lines are counted, errors recorded."""
        try:
            obj = _loads(payload)
        except (ValueError, RecursionError):
            obj = None
        if not isinstance(obj, dict):
            self.malformed += 1
            return None
        if obj.get("error"):
            self.events += 1
            self._set_error(obj["error"])
            return None
        if self.answered_model is None:
            self._note_model(obj)
        return obj

    def _note_model(self, obj: dict[str, Any]) -> None:
        model = obj.get("model")
        if isinstance(model, str) and model:
            self.answered_model = model

    def _usage(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        self.prompt_tokens = _int_or_none(usage.get("prompt_tokens"))
        self.output_tokens = _int_or_none(usage.get("completion_tokens"))
        details = usage.get("prompt_tokens_details")
        if isinstance(details, dict):
            cached = _int_or_none(details.get("cached_tokens"))
            if cached is not None:
                self.cached_tokens = cached

    def _timings(self, timings: Any) -> None:
        # llama.cpp: prompt tokens served from its cache, when usage does not say
        if self.cached_tokens is None and isinstance(timings, dict):
            self.cached_tokens = _int_or_none(timings.get("cache_n"))

    def _openai_event(self, payload: bytes, t: float) -> None:
        if payload == b"[DONE]":
            self.done = True
            self.events += 1
            return
        obj = self._event_object(payload)
        if obj is None:
            return
        try:
            choices = obj.get("choices")
            if choices:
                for choice in choices:
                    delta = choice.get("delta")
                    content = _generated_text(delta) if delta is not None else choice.get("text")
                    if content:
                        self.token_times.append(t - self.origin)
                        break
                else:
                    self._quiet_event(obj)
            else:
                self._quiet_event(obj)
        except (AttributeError, TypeError):  # choices / delta of an unexpected shape
            self.malformed += 1
            return
        usage = obj.get("usage")
        if usage:
            self._usage(usage)

    def _quiet_event(self, obj: dict[str, Any]) -> None:
        """An event without generated text (role, usage, finish): counted; may carry
        llama.cpp's timings."""
        self.events += 1
        timings = obj.get("timings")
        if timings:
            self._timings(timings)

    def _ollama_event(self, payload: bytes, t: float) -> None:
        obj = self._event_object(payload)
        if obj is None:
            return
        if _ollama_text(obj):
            self.token_times.append(t - self.origin)
        else:
            self.events += 1
        if obj.get("done"):
            self.done = True
            self.output_tokens = _int_or_none(obj.get("eval_count"))
            self.prompt_tokens = _int_or_none(obj.get("prompt_eval_count"))

    def _openai_whole(self, obj: dict[str, Any]) -> None:
        self._usage(obj.get("usage"))
        self._timings(obj.get("timings"))
        choices = obj.get("choices")
        if not isinstance(choices, list):
            return
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            message = choice.get("message")
            text = _generated_text(message) if isinstance(message, dict) else choice.get("text")
            if text:
                self.done_with_text = True
                return

    def _ollama_whole(self, obj: dict[str, Any]) -> None:
        self.prompt_tokens = _int_or_none(obj.get("prompt_eval_count"))
        self.output_tokens = _int_or_none(obj.get("eval_count"))
        if _ollama_text(obj):
            self.done_with_text = True


def _generated_text(part: dict[str, Any]) -> Any:
    """The text a chat ``delta`` or ``message`` carries: content, or reasoning text (vLLM's
    ``reasoning_content``, newer servers' ``reasoning``), which is generated tokens too."""
    return part.get("content") or part.get("reasoning_content") or part.get("reasoning")


def _ollama_text(obj: dict[str, Any]) -> Any:
    """The text an Ollama line or answer carries: ``message.content`` (chat) or
    ``response`` (generate), else the reasoning text (``thinking``), generated tokens too."""
    message = obj.get("message")
    if isinstance(message, dict):
        return message.get("content") or message.get("thinking")
    return obj.get("response") or obj.get("thinking")
