"""The bytes of one mock answer, in the shape of the API that was called: OpenAI SSE chunks
(with vLLM's role-only first chunk and the usage event when asked for) or Ollama NDJSON
lines, streamed, or one whole JSON answer."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["STREAM_HEAD", "Generation", "chunk"]


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


class Generation:
    """Bytes of one mock response in the shape of the API that was called."""

    def __init__(
        self,
        kind: str,
        model: str,
        n: int,
        prompt_tokens: int,
        include_usage: bool,
        usage_in_whole: bool,
        *,
        eol: bytes = b"\n",
        cached_tokens: int | None = None,
    ) -> None:
        self.kind = kind
        self.model = model
        self.n = n
        self.prompt_tokens = prompt_tokens
        self.include_usage = include_usage
        self.usage_in_whole = usage_in_whole
        self.cached_tokens = cached_tokens
        self.sse = kind in ("chat", "completions")
        self.eol = eol
        mj = json.dumps(model)
        piece = {
            "chat": '{"id":"mock","object":"chat.completion.chunk","model":MODEL,'
            '"choices":[{"index":0,"delta":{"content":" tok"},"finish_reason":null}]}',
            "completions": '{"id":"mock","object":"text_completion","model":MODEL,'
            '"choices":[{"index":0,"text":" tok","finish_reason":null}]}',
            "ollama-chat": '{"model":MODEL,"message":{"role":"assistant","content":" tok"},'
            '"done":false}',
            "ollama-generate": '{"model":MODEL,"response":" tok","done":false}',
        }[kind].replace("MODEL", mj)
        self._tok = chunk(self._event(piece.encode()))

    def _event(self, payload: bytes) -> bytes:
        if self.sse:
            return b"data: " + payload + self.eol + self.eol
        return payload + b"\n"

    def _usage(self) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.n,
            "total_tokens": self.prompt_tokens + self.n,
        }
        if self.cached_tokens is not None:
            usage["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        return usage

    def opening(self) -> bytes:
        if self.kind == "chat":  # vLLM sends a role-only chunk first; it is not a token
            return chunk(
                self._event(
                    b'{"id":"mock","object":"chat.completion.chunk","choices":[{"index":0,'
                    b'"delta":{"role":"assistant","content":""},"finish_reason":null}]}'
                )
            )
        return b""

    def token(self, k: int) -> bytes:
        return self._tok

    def closing(self) -> bytes:
        if self.sse:
            parts = []
            if self.include_usage:
                usage = {"id": "mock", "choices": [], "usage": self._usage()}
                parts.append(self._event(json.dumps(usage).encode()))
            parts.append(self._event(b"[DONE]"))
            return chunk(b"".join(parts)) + b"0\r\n\r\n"
        final: dict[str, Any] = {"model": self.model, "done": True, "done_reason": "length"}
        if self.kind == "ollama-chat":
            final["message"] = {"role": "assistant", "content": ""}
        else:
            final["response"] = ""
        if self.usage_in_whole:
            final["prompt_eval_count"] = self.prompt_tokens
            final["eval_count"] = self.n
        elif self.n == 0:
            final["eval_count"] = 0  # an empty answer: Ollama counts zero tokens
        return chunk(self._event(json.dumps(final).encode())) + b"0\r\n\r\n"

    def whole(self, with_text: bool = True) -> bytes:
        text = " tok" * self.n if with_text else ""
        obj: dict[str, Any]
        if self.kind == "chat":
            obj = {
                "id": "mock",
                "object": "chat.completion",
                "model": self.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "length",
                    }
                ]
                if with_text
                else [],
            }
        elif self.kind == "completions":
            obj = {
                "id": "mock",
                "object": "text_completion",
                "model": self.model,
                "choices": [{"index": 0, "text": text, "finish_reason": "length"}],
            }
        else:
            obj = {"model": self.model, "done": True, "done_reason": "length"}
            if self.kind == "ollama-chat":
                obj["message"] = {"role": "assistant", "content": text}
            else:
                obj["response"] = text
            if self.usage_in_whole:
                obj["prompt_eval_count"] = self.prompt_tokens
                obj["eval_count"] = self.n
            return json.dumps(obj).encode()
        if self.usage_in_whole:
            obj["usage"] = self._usage()
        return json.dumps(obj).encode()
