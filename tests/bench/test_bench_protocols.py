"""Request bodies and response collectors for the OpenAI and Ollama APIs."""

from __future__ import annotations

import json

from llmdeploy.bench.protocols import Collector, Prompt, build_body, endpoint_path


def _feed(col: Collector, body: bytes, times: list[float] | None = None, status: int = 200) -> None:
    col.on_status(status)
    parts = body.split(b"|") if times else [body]
    for part, t in zip(parts, times or [0.0], strict=True):
        col.on_body(part, t)
    col.on_end((times or [0.0])[-1] + 0.5)


def test_openai_stream_role_chunk_is_not_a_token_and_usage_wins() -> None:
    col = Collector("openai", stream=True)
    body = (
        b'data: {"choices":[{"delta":{"role":"assistant","content":""}}]}\n\n|'
        b'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\n|'
        b'data: {"choices":[{"delta":{"content":"lo"}}]}\n\n|'
        b'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}\n\n'
        b"data: [DONE]\n\n"
    )
    _feed(col, body, [1.0, 2.0, 3.0, 4.0])
    assert col.token_times == [2.0, 3.0]
    assert (col.prompt_tokens, col.output_tokens) == (7, 3)
    assert col.done and col.error is None


def test_openai_completions_text_chunks_and_missing_usage() -> None:
    col = Collector("openai", stream=True)
    body = b'data: {"choices":[{"text":"a"}]}\n\n|data: {"choices":[{"text":"b"}]}\n\n'
    _feed(col, body, [1.0, 2.0])
    assert col.token_times == [1.0, 2.0]
    assert col.output_tokens is None  # the runner falls back to counting chunks
    assert not col.done  # no [DONE]: the end of the body still ends the request


def test_malformed_events_are_counted_and_skipped() -> None:
    col = Collector("openai", stream=True)
    body = b'data: {not json\n\ndata: [1,2]\n\ndata: {"choices":[{"delta":{"content":"x"}}]}\n\n'
    _feed(col, body)
    assert col.malformed == 2
    assert len(col.token_times) == 1 and col.error is None


def test_error_object_in_stream_is_a_server_error() -> None:
    col = Collector("openai", stream=True)
    _feed(col, b'data: {"error":{"message":"context too long"}}\n\n')
    assert col.error == "server_error" and "context too long" in (col.error_detail or "")


def test_http_error_status_is_counted_by_status() -> None:
    col = Collector("openai", stream=True)
    _feed(col, b'{"error":"overloaded"}', status=503)
    assert col.error == "http_503" and "overloaded" in (col.error_detail or "")


def test_openai_non_stream_reads_usage() -> None:
    col = Collector("openai", stream=False)
    _feed(col, json.dumps({"choices": [{"message": {"content": "hi"}}],
                           "usage": {"prompt_tokens": 4, "completion_tokens": 9}}).encode())
    assert (col.prompt_tokens, col.output_tokens, col.token_times) == (4, 9, [])


def test_ollama_ndjson_counts_from_done_line() -> None:
    col = Collector("ollama", stream=True)
    body = (
        b'{"message":{"role":"assistant","content":"A"},"done":false}\n|'
        b'{"message":{"role":"assistant","content":"B"},"done":false}\n|'
        b'{"message":{"role":"assistant","content":""},"done":true,'
        b'"eval_count":2,"prompt_eval_count":11}\n'
    )
    _feed(col, body, [1.0, 2.0, 3.0])
    assert col.token_times == [1.0, 2.0]
    assert (col.prompt_tokens, col.output_tokens) == (11, 2)


def test_ollama_generate_response_field() -> None:
    col = Collector("ollama", stream=True)
    _feed(col, b'{"response":"x","done":false}\n{"response":"","done":true,"eval_count":1}\n')
    assert len(col.token_times) == 1 and col.output_tokens == 1


def test_openai_body_asks_for_usage_and_exact_length() -> None:
    body = json.loads(build_body("openai", "chat", "m", Prompt(text="hi", max_tokens=5),
                                 stream=True, ignore_eos=True))
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert body["max_tokens"] == 5 and body["ignore_eos"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_ollama_body_uses_num_predict_and_extra_body_merges() -> None:
    body = json.loads(build_body("ollama", "completions", "m", Prompt(text="hi", max_tokens=5),
                                 stream=True, ignore_eos=True,
                                 extra_body={"options": {"temperature": 0}}))
    assert body["prompt"] == "hi"
    assert body["options"] == {"num_predict": 5, "temperature": 0}
    assert "ignore_eos" not in body


def test_endpoint_paths() -> None:
    assert endpoint_path("openai", "chat") == "/v1/chat/completions"
    assert endpoint_path("openai", "completions", "/proxy/v1") == "/proxy/v1/completions"
    assert endpoint_path("ollama", "chat", "") == "/api/chat"
    assert endpoint_path("ollama", "completions", "") == "/api/generate"
