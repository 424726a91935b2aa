"""A mock inference server that streams with exactly injected TTFT and ITL.

Speaks OpenAI chat/completions (SSE, with a role-only first chunk as vLLM sends, and the
usage event when ``stream_options.include_usage`` is set) and Ollama ``/api/chat`` /
``/api/generate`` (NDJSON), streaming and not; plus ``/v1/models``, ``/api/tags``,
``/health`` and ``/metrics`` (``mock:*`` families).

Timing: the request is stamped with the kernel's receive time of its last bytes
(``SO_TIMESTAMPNS`` on Linux, else the time the read returned), so a burst of requests that
arrive while the server is busy, or while the scheduler has not run it yet, is still stamped
when it arrived; content chunk ``k`` (0-based) is written at ``received + ttft + k * itl`` on
absolute timers, so lateness never accumulates. Reads are cheap (stamp and buffer); requests
are parsed in one deferred pass after every read of the loop iteration.
By default the loop uses ``select()``, whose timeout has microsecond resolution (epoll and
libuv round up to whole milliseconds), so chunks leave within tens of microseconds of their
target. With ``ttft_ms = itl_ms = 0`` the whole response is written at once (an "instant"
server for measuring the client's ceiling).

Fault injection: ``error_rate`` (HTTP 500), ``disconnect_after`` (abort the connection after
that many content chunks), ``usage=False`` (never send usage; exercises the chunk-count
fallback), ``api_key`` (answer 401 without ``Authorization: Bearer <key>``).

Server behaviours seen in the field, each off by default:

* ``apis``: the APIs served (``openai`` = ``/v1/*``, ``ollama`` = ``/api/*``); both, as Ollama
  does, by default. Anything else is a 404 ``404 page not found``, as Ollama answers.
* ``strict_model``: a request naming another model gets vLLM's 404
  ``The model `X` does not exist.``.
* ``refuse_fields``: request fields a strict schema refuses with 422 in pydantic's shape
  (``extra_forbidden`` with the field in ``loc``); ``name_refused=False`` answers a bare 400
  that names no field.
* ``fault="empty"``: every 200 answer carries no text and no usage (a role-only chunk then
  ``[DONE]``; Ollama: a ``done`` line with ``eval_count`` 0); ``fault="html"``: a 200 HTML page.
* ``fail_after``: after that many generation requests, every one gets HTTP 503.
* ``sse_line_ending``: ``"\n"`` (default), ``"\r\n"`` or ``"\r"`` (all valid SSE).
* ``prefix_cache``: report cached prompt tokens (``usage.prompt_tokens_details.cached_tokens``,
  the longest word prefix shared with an earlier prompt) and ``mock:prefix_cache_*_total``.
* ``record_requests``: keep ``(method, path, body)`` of every request in ``server.requests``.

Run it: ``llmdeploy bench mock-server`` (prints ``listening http://HOST:PORT`` once ready).

Modules: ``config`` (MockConfig, counters), ``server`` (listener, ``/metrics``, run helpers),
``wire`` (a socket read with kernel receive timestamps), ``handler`` (parse, route, timed
answers), ``responses`` (the bytes of each API's answer).
"""

from __future__ import annotations

from llmdeploy.bench.mock_server.config import MockConfig
from llmdeploy.bench.mock_server.server import MockServer, running_mock_server, serve

__all__ = ["MockConfig", "MockServer", "running_mock_server", "serve"]
