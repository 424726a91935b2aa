"""Request bodies and response collectors for the OpenAI and Ollama APIs."""

from __future__ import annotations

import json

import pytest

from llmdeploy.bench.collector import Collector, server_message
from llmdeploy.bench.protocols import Prompt, build_body, endpoint_path


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


def test_role_only_stream_is_an_empty_response() -> None:
    col = Collector("openai", stream=True)
    _feed(col, b'data: {"choices":[{"delta":{"role":"assistant"}}]}\n\ndata: [DONE]\n\n')
    assert not col.ok and col.error == "empty_response"
    assert "2 event(s), none with generated text" in (col.error_detail or "")


def test_usage_with_zero_completion_tokens_and_no_text_is_empty() -> None:
    col = Collector("openai", stream=True)
    _feed(col, b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":0}}\n\n')
    assert col.error == "empty_response"


def test_zero_usage_count_with_text_falls_back_to_counted_chunks() -> None:
    col = Collector("openai", stream=True)
    _feed(col, b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n'
               b'data: {"choices":[{"delta":{"content":"b"}}]}\n\n'
               b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":0}}\n\n')
    assert col.ok and col.token_count() == (2, "chunks")


def test_usage_without_content_chunks_is_a_success_counted_by_usage() -> None:
    col = Collector("openai", stream=True)  # e.g. text in a field the bench does not read
    _feed(col, b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3}}\n\n')
    assert col.ok and col.token_count() == (3, "usage")


def test_body_without_any_event_is_unparseable() -> None:
    col = Collector("openai", stream=True)
    _feed(col, b"<html><body>Bad   gateway</body></html>")
    assert col.error == "unparseable_response"
    assert "Bad gateway" in (col.error_detail or "")
    garbage = Collector("openai", stream=True)
    _feed(garbage, b"data: {not json\n\ndata: also not\n\n")
    assert garbage.error == "unparseable_response" and garbage.malformed == 2


def test_empty_200_body_is_an_empty_response() -> None:
    for stream in (True, False):
        col = Collector("openai", stream=stream)
        _feed(col, b"")
        assert col.error == "empty_response" and "empty body" in (col.error_detail or "")


def test_json_error_in_a_200_answer_to_a_streaming_request_keeps_the_message() -> None:
    col = Collector("openai", stream=True)
    _feed(col, b'{"error":{"message":"model is loading","code":503}}')
    assert col.error == "server_error" and col.error_detail == "model is loading"


def test_non_streamed_empty_choices_is_empty_and_text_is_success() -> None:
    empty = Collector("openai", stream=False)
    _feed(empty, json.dumps({"choices": [], "usage": {"prompt_tokens": 3,
                                                      "completion_tokens": 0}}).encode())
    assert empty.error == "empty_response"
    text = Collector("openai", stream=False)  # no usage at all, but text came back
    _feed(text, json.dumps({"choices": [{"message": {"content": "hi"}}]}).encode())
    assert text.ok and text.token_count() == (None, "none")
    html = Collector("openai", stream=False)
    _feed(html, b"<!doctype html><title>proxy</title>")
    assert html.error == "unparseable_response" and "proxy" in (html.error_detail or "")


def test_ollama_stream_without_content_is_empty() -> None:
    col = Collector("ollama", stream=True)
    _feed(col, b'{"message":{"role":"assistant","content":""},"done":false}\n'
               b'{"message":{"role":"assistant","content":""},"done":true,"eval_count":0}\n')
    assert col.error == "empty_response"


def test_cached_prompt_tokens_from_usage_details_or_llamacpp_timings() -> None:
    vllm = Collector("openai", stream=True)
    _feed(vllm, b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n'
                b'data: {"choices":[],"usage":{"prompt_tokens":40,"completion_tokens":1,'
                b'"prompt_tokens_details":{"cached_tokens":32}}}\n\n')
    assert vllm.cached_tokens == 32
    llamacpp = Collector("openai", stream=True)
    _feed(llamacpp, b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n'
                    b'data: {"choices":[{"delta":{},"finish_reason":"length"}],'
                    b'"timings":{"cache_n":17,"prompt_n":3}}\n\n')
    assert llamacpp.cached_tokens == 17
    whole = Collector("openai", stream=False)
    _feed(whole, json.dumps({"choices": [{"message": {"content": "x"}}],
                             "usage": {"prompt_tokens": 9, "completion_tokens": 1,
                                       "prompt_tokens_details": {"cached_tokens": 8}}}).encode())
    assert whole.cached_tokens == 8
    none = Collector("openai", stream=True)
    _feed(none, b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n')
    assert none.cached_tokens is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # vLLM (OpenAI-style error object)
        (b'{"error":{"message":"The model `x` does not exist.","type":"NotFoundError"}}',
         "The model `x` does not exist."),
        # older vLLM: top-level message
        (b'{"object":"error","message":"max_tokens is too large","code":400}',
         "max_tokens is too large"),
        # FastAPI / pydantic validation detail
        (b'{"detail":[{"type":"extra_forbidden","loc":["body","ignore_eos"],'
         b'"msg":"Extra inputs are not permitted"}]}',
         "ignore_eos: Extra inputs are not permitted"),
        # Ollama
        (b'{"error":"model \\"qwen\\" not found, try pulling it first"}',
         'model "qwen" not found, try pulling it first'),
        # a proxy's HTML page
        (b"<html>\n<h1>502   Bad Gateway</h1></html>", "<html> <h1>502 Bad Gateway</h1></html>"),
        (b"", None),
    ],
)
def test_server_message_extraction(body: bytes, message: str | None) -> None:
    assert server_message(body) == message


def test_extra_body_null_removes_a_field_and_stream_usage_opt_out() -> None:
    body = json.loads(build_body("openai", "chat", "m", Prompt(text="hi", max_tokens=5),
                                 stream=True, ignore_eos=True, stream_usage=False,
                                 extra_body={"ignore_eos": None, "top_k": 1}))
    assert "stream_options" not in body and "ignore_eos" not in body and body["top_k"] == 1
