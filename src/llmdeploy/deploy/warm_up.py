"""``up --warm-up``: one streamed one-token chat request once the server is healthy.

It proves more than the health check (the model answers a real request through the same
OpenAI-compatible API clients use) and measures the first request's time to first token
(TTFT), which includes whatever a server defers to its first request. Off by default: a
llama.cpp server answers its health check only after loading and warming its model, and the
request adds its own time to every ``up`` (docs/lifecycle.md, "Time to ready").
"""

from __future__ import annotations

import http.client
import json
import time
from urllib.parse import urlsplit

from llmdeploy.errors import DeploymentError

PROMPT = "Say OK."


def first_token_s(api_base_url: str, model: str, timeout_s: float = 60.0) -> float:
    """Seconds from sending ``POST {api_base_url}/chat/completions`` (stream, max_tokens 1)
    to the first streamed event carrying a choice.

    Raises DeploymentError (naming the URL and what came back) when the server refuses the
    request, closes the stream without an answer, or exceeds ``timeout_s``.
    """
    parts = urlsplit(api_base_url)
    path = parts.path.rstrip("/") + "/chat/completions"
    body = json.dumps(
        {
            "model": model,
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": 1,
            "stream": True,
        }
    ).encode()
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    conn = connection_class(parts.hostname or "127.0.0.1", parts.port, timeout=timeout_s)
    url = f"{api_base_url.rstrip('/')}/chat/completions"
    try:
        started = time.monotonic()
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        if response.status != 200:
            text = response.read().decode("utf-8", "replace").strip()[:300]
            raise DeploymentError(
                f"the warm-up request to {url} was answered HTTP {response.status}: {text}",
                hint="the server is healthy but does not serve chat requests for this model",
            )
        for raw in response:
            line = raw.strip()
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                break
            try:
                event = json.loads(payload)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("choices"):
                return time.monotonic() - started
        raise DeploymentError(
            f"the warm-up request to {url} ended without an answer",
            hint="see `llmdeploy logs` for what the server said",
        )
    except (OSError, http.client.HTTPException) as exc:
        raise DeploymentError(
            f"the warm-up request to {url} failed: {type(exc).__name__}: {exc}",
            hint="see `llmdeploy logs` for what the server said",
        ) from exc
    finally:
        conn.close()
