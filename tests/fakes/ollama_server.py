"""A FAKE Ollama server: an in-process HTTP server that follows Ollama's documented API.

No Ollama server binary can be installed on the machines llmdeploy is tested on (it is not on
PyPI, apt or npm, and no container registry is reachable), so the Ollama backend is tested
against this fake. It is NOT Ollama and runs no model: replies are canned tokens and token
counts are word counts. What it does follow, exactly, is the HTTP contract of Ollama 0.32.15 as
its ``docs/api.md``, ``docs/api/errors.mdx``, ``docs/api/streaming.mdx`` and
``docs/api/openai-compatibility.mdx`` describe it, and, where the docs are silent, as that
version's server code behaves (``server/routes.go``, ``server/create.go``,
``middleware/openai.go``, ``manifest/paths.go``):

- ``GET|HEAD /`` ("Ollama is running"), ``GET|HEAD /api/version``, ``GET /api/tags``;
- ``POST /api/pull``: NDJSON progress (``pulling manifest``; per layer ``pulling <12 hex>`` with
  ``digest``/``total`` and then ``completed``; ``verifying sha256 digest``; ``writing
  manifest``; ``success``). An unknown model fails the way Ollama does: the stream has started
  (HTTP 200) when the registry answers 404, so the error arrives as an ``{"error": ...}`` line;
  with ``"stream": false`` it is HTTP 500. A bad name is HTTP 400 before any streaming.
- ``HEAD /api/blobs/:digest`` (200 / 404) and ``POST /api/blobs/:digest`` (201 created, 200 if
  present, 400 on a digest mismatch or a malformed digest);
- ``POST /api/create`` with ``from`` or ``files`` (the GGUF magic is checked, like Ollama's
  content sniffing), ``parameters``, ``template``, ``system``; NDJSON status lines; errors
  before the first line as HTTP 400/500 JSON, as Ollama's ``streamResponse`` does;
- ``POST /api/generate`` and ``POST /api/chat``: NDJSON streams whose final object has
  ``done: true``, ``done_reason`` and ``total_duration``, ``load_duration``,
  ``prompt_eval_count``, ``prompt_eval_duration``, ``eval_count``, ``eval_duration`` in
  NANOSECONDS; an empty prompt / no messages loads the model (``done_reason: "load"``);
  unknown models are HTTP 404 ``{"error": "model 'x' not found"}``;
- ``POST /v1/chat/completions`` (Server-Sent Events chunks, a finish chunk, a usage chunk with
  empty ``choices`` when ``stream_options.include_usage``, ``data: [DONE]``; OpenAI-shaped
  errors) and ``GET /v1/models``.

Like a real container, it honours the environment the RunSpec gives it (``OLLAMA_CONTEXT_LENGTH``
caps prompts the way Ollama truncates them, unless the model's ``num_ctx`` says otherwise) and
keeps its state in a data directory (blobs as ``models/blobs/sha256-<hex>`` like Ollama; the
model list in a fake-specific JSON file), so a restarted fake finds what it had.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

VERSION = "0.32.15"
DEFAULT_CONTEXT = 4096
DEFAULT_REPLY = "Hello from a fake Ollama server, not a model."
_DIGEST_RE = re.compile(r"^sha256[:-][0-9a-fA-F]{64}$")
_PART_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$")
_STATE_FILE = "fake-ollama-models.json"


@dataclass(frozen=True)
class LibraryModel:
    """A model the fake registry can serve to /api/pull: its layers (digest, size)."""

    layers: tuple[tuple[str, int], ...]
    family: str = "llama"


@dataclass
class FakeModel:
    name: str  # normalized, e.g. smollm2-135m:latest
    digest: str
    size: int
    modified_at: str
    family: str = "llama"
    parent: str = ""
    files: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    template: str | None = None
    system: str | None = None


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    body: Any  # parsed JSON, or None (blob uploads are not kept here)


class FakeOllama:
    """A fake Ollama HTTP server on 127.0.0.1 in a background thread (see the module doc)."""

    def __init__(
        self,
        *,
        port: int = 0,
        data_dir: Path | None = None,
        env: Mapping[str, str] | None = None,
        library: Mapping[str, LibraryModel] | None = None,
        reply: str = DEFAULT_REPLY,
    ) -> None:
        self.env = dict(env or {})
        self.library = {normalize(k): v for k, v in (library or {}).items()}
        self.reply = reply
        self.data_dir = data_dir
        self.requests: list[RecordedRequest] = []
        self.models: dict[str, FakeModel] = {}
        self.blobs: dict[str, int] = {}  # digest (sha256:hex) -> size
        self.loaded: list[str] = []
        self.failures: dict[str, tuple[int, str]] = {}  # path -> (status, error), used once
        self._lock = threading.Lock()
        self._load_state()
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeOllama:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeOllama:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def paths(self, method: str | None = None) -> list[str]:
        return [r.path for r in self.requests if method is None or r.method == method]

    def fail_next(self, path: str, status: int, error: str) -> None:
        """Answer the next request to ``path`` with ``{"error": error}`` and ``status``."""
        self.failures[path] = (status, error)

    # -- state ---------------------------------------------------------------------------------

    @property
    def context_length(self) -> int:
        return int(self.env.get("OLLAMA_CONTEXT_LENGTH") or DEFAULT_CONTEXT)

    def _blob_path(self, digest: str) -> Path | None:
        if self.data_dir is None:
            return None
        return self.data_dir / "models" / "blobs" / digest.replace(":", "-")

    def _load_state(self) -> None:
        if self.data_dir is None:
            return
        blobs = self.data_dir / "models" / "blobs"
        if blobs.is_dir():
            for path in blobs.iterdir():
                if _DIGEST_RE.match(path.name):
                    self.blobs[path.name.replace("-", ":", 1)] = path.stat().st_size
        state = self.data_dir / "models" / _STATE_FILE
        if state.is_file():
            for item in json.loads(state.read_text()):
                model = FakeModel(**item)
                self.models[model.name] = model

    def _save_state(self) -> None:
        if self.data_dir is None:
            return
        state = self.data_dir / "models" / _STATE_FILE
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_text(json.dumps([asdict(m) for m in self.models.values()], indent=1))

    def add_model(self, model: FakeModel) -> None:
        with self._lock:
            self.models[model.name] = model
            self._save_state()


def normalize(name: str) -> str:
    """Ollama's short display form: default host/namespace dropped, tag ``latest`` added."""
    name = name.strip()
    for prefix in ("registry.ollama.ai/library/", "library/"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        name += ":latest"
    return name


def valid_name(name: str) -> bool:
    path, _, tag = normalize(name).rpartition(":")
    return bool(path) and all(_PART_RE.match(p) for p in path.split("/")) and bool(
        _PART_RE.match(tag)
    )


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOllama
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    # -- plumbing ------------------------------------------------------------------------------

    def _body_bytes(self) -> Iterator[bytes]:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return
                yield self.rfile.read(size)
                self.rfile.readline()
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk

    def _json_body(self) -> tuple[Any, str | None]:
        raw = b"".join(self._body_bytes())
        if not raw.strip():
            return None, "missing request body"
        try:
            return json.loads(raw), None
        except ValueError as exc:
            return None, str(exc)

    def _send(self, status: int, body: Any = None, *, text: str | None = None,
              content_type: str = "application/json; charset=utf-8") -> None:
        payload = (text if text is not None else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"error": message})

    def _start_stream(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _stream_ndjson(self, items: Iterator[dict[str, Any]]) -> None:
        """Ollama's streamResponse: an error before the first line is a plain HTTP error."""
        started = False
        for item in items:
            if "error" in item and not started:
                self._error(int(item.get("status", 500)), str(item["error"]))
                return
            if not started:
                self._start_stream("application/x-ndjson")
                started = True
            line = {"error": item["error"]} if "error" in item else item
            self._chunk(json.dumps(line).encode() + b"\n")
            if "error" in item:
                break
        if started:
            self._end_stream()

    def _wait_for_stream(self, items: Iterator[dict[str, Any]]) -> None:
        """Ollama's waitForStream ("stream": false): the last status, or the error's status."""
        latest: dict[str, Any] = {}
        for item in items:
            if "error" in item:
                self._error(int(item.get("status", 500)), str(item["error"]))
                return
            latest = item
        self._send(200, latest)

    def _respond(self, items: Iterator[dict[str, Any]], stream: Any) -> None:
        if stream is False:
            self._wait_for_stream(items)
        else:
            self._stream_ndjson(items)

    def _record(self, body: Any) -> None:
        with self.fake._lock:
            self.fake.requests.append(RecordedRequest(self.command, self.path, body))

    def _injected_failure(self) -> bool:
        failure = self.fake.failures.pop(self.path, None)
        if failure is None:
            return False
        self._error(*failure)
        return True

    # -- routes --------------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self._record(None)
        if self.path.startswith("/api/blobs/"):
            self._head_blob(self.path.removeprefix("/api/blobs/"))
        else:
            self._get()

    def do_GET(self) -> None:
        self._record(None)
        self._get()

    def _get(self) -> None:
        if self._injected_failure():
            return
        if self.path == "/":
            self._send(200, text="Ollama is running", content_type="text/plain; charset=utf-8")
        elif self.path == "/api/version":
            self._send(200, {"version": VERSION})
        elif self.path == "/api/tags":
            self._send(200, {"models": [self._tag(m) for m in self._models()]})
        elif self.path == "/v1/models":
            data = [{"id": m.name, "object": "model", "created": _epoch(m.modified_at),
                     "owned_by": m.name.split("/")[0] if "/" in m.name else "library"}
                    for m in self._models()]
            self._send(200, {"object": "list", "data": data})
        else:
            self._send(404, text="404 page not found", content_type="text/plain")

    def do_POST(self) -> None:
        if self.path.startswith("/api/blobs/"):
            self._record(None)
            self._post_blob(self.path.removeprefix("/api/blobs/"))
            return
        body, problem = self._json_body()
        self._record(body)
        if self._injected_failure():
            return
        routes = {
            "/api/pull": self._pull,
            "/api/create": self._create,
            "/api/generate": self._generate,
            "/api/chat": self._chat,
            "/v1/chat/completions": self._openai_chat,
        }
        route = routes.get(self.path)
        if route is None:
            self._send(404, text="404 page not found", content_type="text/plain")
        elif problem is not None or not isinstance(body, dict):
            if self.path.startswith("/v1/"):
                self._send(400, _openai_error(400, problem or "invalid request"))
            else:
                self._error(400, problem or "invalid request")
        else:
            route(body)

    def _models(self) -> list[FakeModel]:
        with self.fake._lock:
            return list(self.fake.models.values())

    def _tag(self, model: FakeModel) -> dict[str, Any]:
        return {
            "name": model.name, "model": model.name, "modified_at": model.modified_at,
            "size": model.size, "digest": model.digest.removeprefix("sha256:"),
            "details": {"parent_model": model.parent, "format": "gguf", "family": model.family,
                        "families": [model.family], "parameter_size": "135M",
                        "quantization_level": "Q4_1"},
        }

    # blobs

    def _head_blob(self, digest: str) -> None:
        if not _DIGEST_RE.match(digest):
            self._error(400, "invalid digest format")
        elif digest.replace("-", ":", 1) in self.fake.blobs:
            self._send(200, text="", content_type="text/plain")
        else:
            self._error(404, f'blob "{digest}" not found')

    def _post_blob(self, digest: str) -> None:
        if not _DIGEST_RE.match(digest):
            list(self._body_bytes())
            self._error(400, "invalid digest format")
            return
        key = digest.replace("-", ":", 1)
        if key in self.fake.blobs:
            list(self._body_bytes())
            self._send(200, text="", content_type="text/plain")
            return
        hasher = hashlib.sha256()
        size = 0
        target = self.fake._blob_path(key)
        handle = None
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            handle = target.with_suffix(".partial").open("wb")
        try:
            for chunk in self._body_bytes():
                hasher.update(chunk)
                size += len(chunk)
                if handle is not None:
                    handle.write(chunk)
        finally:
            if handle is not None:
                handle.close()
        got = f"sha256:{hasher.hexdigest()}"
        if got != key:
            if target is not None:
                target.with_suffix(".partial").unlink()
            self._error(400, f'digest mismatch, expected "{digest}", got "{got}"')
            return
        if target is not None:
            target.with_suffix(".partial").replace(target)
        with self.fake._lock:
            self.fake.blobs[key] = size
        self._send(201, text="", content_type="text/plain")

    def _blob_magic(self, digest: str) -> bytes | None:
        path = self.fake._blob_path(digest)
        if path is not None and path.is_file():
            with path.open("rb") as handle:
                return handle.read(4)
        return None

    # pull

    def _pull(self, body: dict[str, Any]) -> None:
        name = str(body.get("model") or body.get("name") or "")
        if not valid_name(name):
            self._error(400, "invalid model name")
            return
        self._respond(self._pull_events(normalize(name)), body.get("stream"))

    def _pull_events(self, name: str) -> Iterator[dict[str, Any]]:
        yield {"status": "pulling manifest"}
        entry = self.fake.library.get(name)
        if entry is None:
            # the registry answered 404: server/images.go makeRequestWithRetry -> os.ErrNotExist
            yield {"error": "pull model manifest: file does not exist"}
            return
        for digest, size in entry.layers:
            status = f"pulling {digest[7:19]}"
            yield {"status": status, "digest": digest, "total": size}
            for done in (size // 2, size):
                yield {"status": status, "digest": digest, "total": size, "completed": done}
            with self.fake._lock:
                self.fake.blobs[digest] = size
        yield {"status": "verifying sha256 digest"}
        yield {"status": "writing manifest"}
        self.fake.add_model(FakeModel(
            name=name, digest=entry.layers[0][0], size=sum(s for _, s in entry.layers),
            modified_at=_now(), family=entry.family))
        yield {"status": "success"}

    # create

    def _create(self, body: dict[str, Any]) -> None:
        name = str(body.get("model") or body.get("name") or "")
        files = body.get("files")
        if isinstance(files, dict):
            for path, digest in files.items():
                if path.startswith("/") or ".." in path.split("/"):
                    self._error(400, "file path must be relative")
                    return
                if not digest:
                    self._error(400, "invalid digest format")
                    return
        if not valid_name(name):
            self._error(400, "invalid model name")
            return
        self._respond(self._create_events(normalize(name), body), body.get("stream"))

    def _create_events(self, name: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        files = body.get("files") or {}
        source = body.get("from")
        parent = ""
        family = "llama"
        if source:
            parent = normalize(str(source))
            with self.fake._lock:
                base = self.fake.models.get(parent)
            if base is None:
                # server/create.go parseFromModel: a missing base model is pulled first
                yield from (e for e in self._pull_events(parent) if e.get("status") != "success")
                with self.fake._lock:
                    base = self.fake.models.get(parent)
                if base is None:
                    return
            digest, size, family = base.digest, base.size, base.family
            inherited = dict(base.parameters)
        elif files:
            inherited = {}
            digest, size = "", 0
            for path, blob in sorted(files.items()):
                if not path.endswith(".gguf"):
                    yield {"error": "unknown type", "status": 400}
                    return
                yield {"status": "parsing GGUF"}
                if not _DIGEST_RE.match(blob):
                    yield {"error": "invalid digest format"}
                    return
                if blob not in self.fake.blobs:
                    where = f"/root/.ollama/models/blobs/{blob.replace(':', '-')}"
                    yield {"error": f"open {where}: no such file or directory"}
                    return
                magic = self._blob_magic(blob)
                if magic is not None and magic != b"GGUF":
                    yield {"error": "supplied file was not in GGUF format", "status": 400}
                    return
                yield {"status": f"using existing layer {blob}"}
                digest, size = blob, size + self.fake.blobs[blob]
        else:
            yield {"error": "neither 'from' or 'files' was specified", "status": 400}
            return
        template = body.get("template")
        if template is not None and template.count("{{") != template.count("}}"):
            yield {"error": "template error: template: :1: unclosed action", "status": 400}
            return
        for kind in ("template", "system", "parameters"):
            if body.get(kind):
                layer = hashlib.sha256(json.dumps(body[kind]).encode()).hexdigest()
                yield {"status": f"creating new layer sha256:{layer}"}
        yield {"status": "writing manifest"}
        self.fake.add_model(FakeModel(
            name=name, digest=digest, size=size, modified_at=_now(), family=family, parent=parent,
            files=dict(files), parameters={**inherited, **(body.get("parameters") or {})},
            template=template, system=body.get("system")))
        yield {"status": "success"}

    # generation

    def _model(self, name: str) -> FakeModel | None:
        with self.fake._lock:
            return self.fake.models.get(normalize(name)) if name and valid_name(name) else None

    def _tokens(self, model: FakeModel, options: dict[str, Any]) -> tuple[list[str], str]:
        words = self.fake.reply.split(" ")
        tokens = [w if i == 0 else " " + w for i, w in enumerate(words)]
        limit = options.get("num_predict", model.parameters.get("num_predict"))
        if isinstance(limit, int) and 0 <= limit < len(tokens):
            return tokens[:limit], "length"
        return tokens, "stop"

    def _metrics(self, model: FakeModel, prompt: str, options: dict[str, Any],
                 eval_count: int, started: int) -> dict[str, Any]:
        num_ctx = options.get("num_ctx") or model.parameters.get("num_ctx") or self.fake.context_length
        prompt_tokens = min(len(prompt.split()), int(num_ctx))  # Ollama truncates to num_ctx
        load_ns = 1_000_000
        prompt_ns = 2_000_000 + 10_000 * prompt_tokens
        eval_ns = 5_000_000 * max(eval_count, 1)
        return {
            "total_duration": max(time.perf_counter_ns() - started, load_ns + prompt_ns + eval_ns),
            "load_duration": load_ns,
            "prompt_eval_count": prompt_tokens,
            "prompt_eval_duration": prompt_ns,
            "eval_count": eval_count,
            "eval_duration": eval_ns,
        }

    def _load(self, model: FakeModel, body: dict[str, Any]) -> dict[str, Any]:
        with self.fake._lock:
            self.fake.loaded.append(model.name)
        return {"model": body["model"], "created_at": _now(), "done": True, "done_reason": "load"}

    def _generate(self, body: dict[str, Any]) -> None:
        model = self._model(str(body.get("model") or ""))
        if model is None:
            self._error(404, f"model '{body.get('model')}' not found")
            return
        prompt = str(body.get("prompt") or "")
        if not prompt:
            self._send(200, self._load(model, body))
            return
        self._respond(self._generation(model, body, prompt, chat=False), body.get("stream"))

    def _chat(self, body: dict[str, Any]) -> None:
        model = self._model(str(body.get("model") or ""))
        if model is None:
            self._error(404, f"model '{body.get('model')}' not found")
            return
        messages = body.get("messages") or []
        if not messages:
            self._send(200, {**self._load(model, body), "message": {"role": "assistant", "content": ""}})
            return
        prompt = " ".join(str(m.get("content") or "") for m in messages)
        self._respond(self._generation(model, body, prompt, chat=True), body.get("stream"))

    def _generation(self, model: FakeModel, body: dict[str, Any], prompt: str, *, chat: bool
                    ) -> Iterator[dict[str, Any]]:
        started = time.perf_counter_ns()
        options = dict(body.get("options") or {})
        tokens, reason = self._tokens(model, options)
        with self.fake._lock:
            self.fake.loaded.append(model.name)

        def piece(text: str) -> dict[str, Any]:
            if chat:
                return {"message": {"role": "assistant", "content": text}}
            return {"response": text}

        if body.get("stream") is False:
            yield {"model": body["model"], "created_at": _now(), **piece("".join(tokens)),
                   "done": True, "done_reason": reason,
                   **self._metrics(model, prompt, options, len(tokens), started)}
            return
        for token in tokens:
            yield {"model": body["model"], "created_at": _now(), **piece(token), "done": False}
        final = {"model": body["model"], "created_at": _now(), **piece(""), "done": True,
                 "done_reason": reason, **self._metrics(model, prompt, options, len(tokens), started)}
        if not chat:
            final["context"] = [1, 2, 3]
        yield final

    # OpenAI compatibility (middleware/openai.go)

    def _openai_chat(self, body: dict[str, Any]) -> None:
        messages = body.get("messages")
        if not messages:
            self._send(400, _openai_error(400, "[] is too short - 'messages'"))
            return
        model = self._model(str(body.get("model") or ""))
        if model is None:
            self._send(404, _openai_error(404, f"model '{body.get('model')}' not found"))
            return
        options: dict[str, Any] = {}
        if body.get("max_tokens") is not None:
            options["num_predict"] = body["max_tokens"]
        request = {"model": body["model"], "options": options, "stream": bool(body.get("stream"))}
        prompt = " ".join(str(m.get("content") or "") for m in messages)
        responses = list(self._generation(model, request, prompt, chat=True))
        completion_id = f"chatcmpl-{int(time.time() * 1000) % 999}"
        created = int(time.time())
        final = responses[-1]
        usage = {"prompt_tokens": final["prompt_eval_count"], "completion_tokens": final["eval_count"],
                 "total_tokens": final["prompt_eval_count"] + final["eval_count"]}
        reason = final.get("done_reason") or "stop"
        if not body.get("stream"):
            self._send(200, {
                "id": completion_id, "object": "chat.completion", "created": created,
                "model": body["model"], "system_fingerprint": "fp_ollama",
                "choices": [{"index": 0, "message": final["message"], "finish_reason": reason}],
                "usage": usage})
            return
        self._start_stream("text/event-stream")

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> None:
            data = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                    "model": body["model"], "system_fingerprint": "fp_ollama", "choices": choices,
                    **extra}
            self._chunk(f"data: {json.dumps(data)}\n\n".encode())

        for index, response in enumerate(responses[:-1]):
            delta: dict[str, Any] = {"content": response["message"]["content"]}
            if index == 0:
                delta = {"role": "assistant", **delta}
            chunk([{"index": 0, "delta": delta, "finish_reason": None}])
        chunk([{"index": 0, "delta": {}, "finish_reason": reason}])
        if (body.get("stream_options") or {}).get("include_usage"):
            chunk([], usage=usage)
        self._chunk(b"data: [DONE]\n\n")
        self._end_stream()


def _openai_error(status: int, message: str) -> dict[str, Any]:
    kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _epoch(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp())
