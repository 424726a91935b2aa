"""Before the first stage: confirm the API kind, list the served models, send one request.

Each check turns a setup fault into an immediate, explained :class:`EndpointError` (exit 7)
instead of a stage of identical failures:

* :func:`discover` reads the model listing (OpenAI ``{prefix}/models``, Ollama ``/api/tags``).
  A dead endpoint fails here. When the API kind was only guessed (from the port, or by
  default) and its listing is missing while the other API's answers, the target is corrected
  (``api_source = "discovery"``).
* :func:`preflight` sends one small request shaped like every request of the run (same
  endpoint, model, optional fields and ``--extra-body``; a short prompt no stage uses). A wrong
  model name, a bad key, a wrong path or a server error fails here with the server's own
  message. When the server refuses the request (HTTP 400/422) while optional fields
  (:data:`~llmdeploy.bench.protocols.OPTIONAL_FIELDS`) were sent, the fields it names (or, if
  it names none, each in turn) are dropped for the whole run and recorded as
  :class:`~llmdeploy.bench.report.Downgrade`. A 200 answer without generated text is not
  fatal here: the stages count such answers as ``empty_response`` failures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from llmdeploy.bench.collector import EMPTY, UNPARSEABLE, Collector
from llmdeploy.bench.config import TargetSpec
from llmdeploy.bench.http import HttpClient, RequestFailure, fetch
from llmdeploy.bench.protocols import ApiName, Prompt, build_body, endpoint_path
from llmdeploy.bench.report import Downgrade
from llmdeploy.errors import EndpointError

__all__ = ["EFFECTS", "Probe", "discover", "list_models", "preflight"]

REFUSAL_STATUSES = (400, 422)
EFFECTS = {
    "stream_options": "no usage event: output tokens are counted from content chunks and "
    "prompt tokens are unknown",
    "ignore_eos": "the server may stop before max_tokens: output lengths follow the model",
}


def _listing_path(api: ApiName, prefix: str) -> str:
    p = prefix.rstrip("/")
    return f"{p}/api/tags" if api == "ollama" else f"{p}/models"


async def list_models(client: HttpClient, api: ApiName, prefix: str) -> list[str] | None:
    """Served model names from ``api``'s listing; None when the server has no such listing
    (not HTTP 200, or not the expected JSON). Raises RequestFailure when unreachable."""
    status, body = await fetch(client, "GET", _listing_path(api, prefix), timeout_s=10.0)
    if status != 200:
        return None
    try:
        data = json.loads(body)
        items = data["models"] if api == "ollama" else data["data"]
        return [str(it["name"] if api == "ollama" else it["id"]) for it in items]
    except (ValueError, KeyError, TypeError, RecursionError):
        return None


def _other_prefix(prefix: str, to: ApiName) -> str:
    if to == "ollama":
        return "" if prefix == "/v1" else prefix
    return "/v1" if prefix == "" else prefix


async def discover(client: HttpClient, target: TargetSpec) -> list[str] | None:
    """The served models (None when the server lists none), correcting a guessed API kind.

    Raises EndpointError when nothing answers at ``target.base_url``."""
    try:
        names = await list_models(client, target.api, target.api_prefix)
        if names is None and target.api_source in ("port", "default"):
            other: ApiName = "ollama" if target.api == "openai" else "openai"
            prefix = _other_prefix(target.api_prefix, other)
            other_names = await list_models(client, other, prefix)
            if other_names is not None:
                target.api, target.api_prefix, target.api_source = other, prefix, "discovery"
                if other == "ollama" and target.metrics_path == "/metrics":
                    target.metrics_path = None  # Ollama has no Prometheus endpoint
                names = other_names
    except RequestFailure as exc:
        raise EndpointError(
            f"cannot reach {target.base_url}: {exc.detail}",
            hint="is the server running? check --url / --api",
        ) from exc
    return names


@dataclass(frozen=True)
class Probe:
    """The pre-flight request, shaped like every request of the run: the same endpoint,
    model and ``extra_body``, with a short prompt no stage uses."""

    client: HttpClient
    target: TargetSpec
    model: str
    prompt: Prompt
    extra_body: dict[str, Any] | None
    timeout_s: float

    @property
    def path(self) -> str:
        t = self.target
        return endpoint_path(t.api, t.endpoint, t.api_prefix)

    async def send(self, fields: list[str]) -> Collector:
        """Send it with the optional ``fields``; EndpointError when no answer came back."""
        t = self.target
        body = build_body(
            t.api,
            t.endpoint,
            self.model,
            self.prompt,
            stream=t.stream,
            ignore_eos="ignore_eos" in fields,
            stream_usage="stream_options" in fields,
            extra_body=self.extra_body,
        )
        col = Collector(t.api, t.stream)
        client = self.client
        try:
            await client.send(client.build("POST", self.path, body), col,
                              timeout_s=self.timeout_s)
        except RequestFailure as exc:
            what = {
                "connect": "cannot connect",
                "timeout": f"no complete answer within {self.timeout_s:g} s",
                "disconnect": "the connection closed mid-answer",
            }.get(exc.cause, exc.cause)
            raise EndpointError(
                f"the pre-flight request to {t.base_url}{self.path} failed: {what}: "
                f"{exc.detail}",
                hint="is the server up and serving this API? check --url, --api and --timeout",
            ) from exc
        return col


def _accepted(col: Collector) -> bool:
    """The server took the request (a 200 answer; one without text is judged by the stages)."""
    return col.error is None or col.error in (EMPTY, UNPARSEABLE)


def _listed(served: list[str]) -> str:
    return ", ".join(served[:5]) + (" ..." if len(served) > 5 else "")


def _error(col: Collector, probe: Probe, served: list[str] | None) -> EndpointError:
    target, model, path = probe.target, probe.model, probe.path
    what = f"HTTP {col.status}" if col.error and col.error.startswith("http_") else "an error"
    message = (
        f"{target.base_url} answered the one-request pre-flight (POST {path}, model "
        f"{model!r}) with {what}: {col.error_detail or '(no message)'}"
    )
    hint = "the server's own message is above; every request of the run would get it"
    if col.status in (401, 403):
        hint = "check the API key (--api-key)"
    elif served and model not in served:
        hint = f"the server lists: {_listed(served)}; pass --model {served[0]}"
    elif col.status in (404, 405):
        hint = f"check --url and --api (this was the {target.api} API at {path})"
    return EndpointError(message, hint=hint)


def _check_answered_model(col: Collector, probe: Probe, served: list[str] | None) -> None:
    """A server that ignores the model name (llama.cpp serves its one model whatever is asked)
    would have the whole run measured and reported under a name it does not serve: refuse when
    the listing lacks the name and the answer names another model."""
    answered, model = col.answered_model, probe.model
    if not served or model in served or answered is None or answered == model:
        return
    raise EndpointError(
        f"{probe.target.base_url} does not serve a model named {model!r}: it lists "
        f"{_listed(served)}, and "
        f"the pre-flight request was answered by {answered!r}",
        hint=f"pass --model {answered}"
        + (" (or leave --model out: the bench asks the server)" if answered in served else ""),
    )


async def preflight(
    probe: Probe, fields: list[str], served: list[str] | None
) -> tuple[list[str], list[Downgrade]]:
    """Send the pre-flight; return the optional fields to keep sending and the downgrades.

    Raises EndpointError when the server cannot serve the run's requests."""
    sent = list(fields)
    dropped: list[str] = []
    unnamed: list[str] = []  # dropped without the server naming them
    refusal: Collector | None = None
    while True:
        col = await probe.send(sent)
        if _accepted(col):
            break
        if col.status in REFUSAL_STATUSES and sent:
            refusal = refusal or col
            named = [f for f in sent if f.encode() in col.error_body]
            drop = named or list(sent)
            if not named:
                unnamed += drop
            dropped += drop
            sent = [f for f in sent if f not in drop]
            continue
        raise _error(refusal or col, probe, served)
    _check_answered_model(col, probe, served)
    if len(unnamed) > 1:  # which of them did the server refuse? put each back alone
        for field in list(unnamed):
            again = await probe.send([*sent, field])
            if _accepted(again):
                sent.append(field)
                dropped.remove(field)
    downgrades = [
        Downgrade(
            field=f,
            status=refusal.status if refusal else 0,
            server_message=refusal.error_detail if refusal else None,
            effect=EFFECTS.get(f, "not sent"),
        )
        for f in dropped
    ]
    return [f for f in fields if f in sent], downgrades
