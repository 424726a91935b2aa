"""The engine API calls every command makes, over the standard library's ``http.client``.

Docker's and Podman's Python SDKs import ``requests`` and ``urllib3`` (about 150-250 ms on
these machines) and connect by asking ``/version`` (Podman 4.3 answers it in ~350 ms: it
collects host facts). ``status``, ``down``, ``logs`` and most of ``up`` need a handful of
plain calls: ping, inspect, list, logs, stop, remove, image inspect. :class:`EngineApi`
makes them over one kept-alive HTTP/1.1 connection (a unix socket or TCP), and the engines
(``sdk_engine``) load their SDK only for what needs it (build, pull, push, and Docker's
create; Podman's create body is rendered by ``libpod_create``).

Paths are the ones the SDKs call: Podman's libpod API (``/v4.0.0/libpod/...``, which every
Podman from 4.0 serves), Docker's Engine API at the version the daemon states in its
``/_ping`` answer (``Api-Version``), as docker-py's ``version="auto"`` does with ``/version``.

Errors: :class:`ApiError` (an HTTP status >= 400 with the engine's ``message``) and
``OSError`` (the socket); ``sdk_engine`` maps both into llmdeploy's exception tree.
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urlencode, urlsplit

from llmdeploy.engines.addresses import unix_path

Flavor = Literal["docker", "podman"]
LIBPOD_PREFIX = "/v4.0.0/libpod"
_FRAME_HEADER = struct.Struct(">BxxxL")  # stream type, 3 pad bytes, payload length


class ApiError(Exception):
    """An engine API answer with an HTTP error status; ``message`` is the engine's reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ApiAnswer:
    status: int
    body: bytes
    headers: Mapping[str, str]

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a unix socket (the Host header says ``localhost``, as the SDKs send)."""

    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def supports(url: str) -> bool:
    """Whether :class:`EngineApi` can reach ``url`` (``unix://``, a path, ``tcp://`` or
    ``http://``); ``ssh://`` and TLS addresses stay with the SDKs."""
    if unix_path(url) is not None:
        return True
    return urlsplit(url).scheme in ("tcp", "http")


class EngineApi:
    """One engine's API at ``url``; call :meth:`ping` first (it learns Docker's API version).

    ``timeout_s`` bounds each call except followed logs (which wait for new lines).
    """

    def __init__(self, url: str, flavor: Flavor, timeout_s: float = 120.0) -> None:
        if not supports(url):
            raise ValueError(f"{url}: not a unix:// or tcp:// address")
        self.url = url
        self.flavor = flavor
        self.timeout_s = timeout_s
        self.prefix = LIBPOD_PREFIX if flavor == "podman" else ""
        self.api_version = ""
        self._conn: http.client.HTTPConnection | None = None

    # --- transport ----------------------------------------------------------------------
    def _new_connection(self, timeout: float | None) -> http.client.HTTPConnection:
        path = unix_path(self.url)
        if path is not None:
            return _UnixConnection(path, timeout)
        parts = urlsplit(self.url)
        host = parts.hostname or "localhost"
        return http.client.HTTPConnection(host, parts.port, timeout=timeout)

    def _path(self, path: str, params: Mapping[str, Any] | None, versioned: bool) -> str:
        full = (self.prefix + path) if versioned else path
        if self.flavor == "docker" and versioned and self.api_version:
            full = f"/v{self.api_version}{path}"
        query = {k: self._param(v) for k, v in (params or {}).items() if v is not None}
        return full + ("?" + urlencode(query) if query else "")

    def call(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        *,
        versioned: bool = True,
    ) -> ApiAnswer:
        """One request on the kept-alive connection; ApiError for a status >= 400.

        A connection the engine closed while idle is reopened once (the request had not
        been read by the engine: it saw no bytes of it).
        """
        target = self._path(path, params, versioned)
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        for attempt in (1, 2):
            reused = self._conn is not None
            conn = self._conn or self._new_connection(self.timeout_s)
            self._conn = conn
            try:
                conn.request(method, target, body=payload, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if reused and attempt == 1:
                    continue
                raise
            except (OSError, http.client.HTTPException):
                self.close()
                raise
            if response.will_close:
                self.close()
            answer = ApiAnswer(response.status, data, dict(response.getheaders()))
            if answer.status >= 400:
                raise ApiError(answer.status, _message(answer))
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # --- calls --------------------------------------------------------------------------
    def ping(self) -> None:
        """``GET /_ping``; remembers Docker's API version (``Api-Version`` header)."""
        answer = self.call("GET", "/_ping", versioned=False)
        headers = {k.lower(): v for k, v in answer.headers.items()}
        self.api_version = headers.get("api-version", "")

    def version(self) -> dict[str, Any]:
        answer = self.call("GET", "/version", versioned=False)
        data = answer.json()
        return data if isinstance(data, dict) else {}

    def inspect_container(self, name_or_id: str) -> dict[str, Any] | None:
        """The container's inspection, None when there is no such container."""
        return self._get_or_none(f"/containers/{self._quoted(name_or_id)}/json")

    def inspect_image(self, ref: str) -> dict[str, Any] | None:
        """The image's inspection, None when the engine does not have it."""
        return self._get_or_none(f"/images/{self._quoted(ref)}/json")

    def list_containers(self, labels: Mapping[str, str]) -> list[str]:
        """The IDs of all containers (running or not) carrying ``labels`` (``KEY`` alone:
        any value)."""
        wanted = [f"{k}={v}" if v else k for k, v in labels.items()]
        params = {"all": True, "filters": json.dumps({"label": wanted})}
        found = self.call("GET", "/containers/json", params).json() or []
        return [str(item.get("Id") or item.get("ID") or "") for item in found]

    def stop(self, name_or_id: str, timeout_s: int) -> None:
        """Stop a container; one already stopped (304) or gone (404) is fine."""
        key = "timeout" if self.flavor == "podman" else "t"
        try:
            self.call("POST", f"/containers/{self._quoted(name_or_id)}/stop", {key: timeout_s})
        except ApiError as exc:
            if exc.status != 404:
                raise

    def remove(self, name_or_id: str) -> None:
        """Force-remove a container; one that is gone (404) is fine."""
        try:
            self.call("DELETE", f"/containers/{self._quoted(name_or_id)}", {"force": True})
        except ApiError as exc:
            if exc.status != 404:
                raise

    def logs(
        self, name_or_id: str, *, follow: bool = False, tail: int | None = None
    ) -> Iterator[bytes] | None:
        """The container's log as payload chunks (stdout and stderr, in order), on a
        connection of its own; None when there is no such container. A container without a
        TTY (llmdeploy never asks for one) streams multiplexed frames: each an 8-byte header
        (stream, length) and its payload."""
        params = {
            "stdout": True,
            "stderr": True,
            "follow": follow,
            "tail": "all" if tail is None else tail,
        }
        conn = self._new_connection(None if follow else self.timeout_s)
        try:
            path = self._path(f"/containers/{self._quoted(name_or_id)}/logs", params, True)
            conn.request("GET", path)
            response = conn.getresponse()
        except (OSError, http.client.HTTPException):
            conn.close()
            raise
        if response.status == 404:
            conn.close()
            return None
        if response.status >= 400:
            answer = ApiAnswer(response.status, response.read(), dict(response.getheaders()))
            conn.close()
            raise ApiError(answer.status, _message(answer))
        return _frames(response, conn)

    def _param(self, value: Any) -> str:
        """A query value; booleans as Docker's CLI sends them (``1``/``0``) or as libpod
        reads them (``true``/``false``)."""
        if isinstance(value, bool):
            if self.flavor == "docker":
                return "1" if value else "0"
            return "true" if value else "false"
        return str(value)

    def _quoted(self, name: str) -> str:
        """A name or reference as one path segment, encoded as each SDK does (podman-py
        encodes ``/`` too; docker-py keeps ``/`` and ``:``)."""
        return quote(name, safe="" if self.flavor == "podman" else "/:")

    def _get_or_none(self, path: str) -> dict[str, Any] | None:
        try:
            data = self.call("GET", path).json()
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return data if isinstance(data, dict) else None


def _frames(
    response: http.client.HTTPResponse, conn: http.client.HTTPConnection
) -> Iterator[bytes]:
    try:
        while True:
            header = _read_exactly(response, _FRAME_HEADER.size)
            if len(header) < _FRAME_HEADER.size:
                return
            stream, length = _FRAME_HEADER.unpack(header)
            if stream > 2:  # not a frame header: a TTY container's raw stream
                yield header
                while chunk := response.read1(65536):
                    yield chunk
                return
            if length:
                yield _read_exactly(response, length)
    finally:
        conn.close()


def _read_exactly(response: http.client.HTTPResponse, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = response.read(size - len(data))
        if not chunk:
            break
        data += chunk
    return data




def _message(answer: ApiAnswer) -> str:
    """The engine's reason: ``message`` (Docker, libpod) or ``cause``, else the body text."""
    try:
        data = answer.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        found = data.get("message") or data.get("cause")
        if found:
            return str(found)
    text = answer.body.decode("utf-8", "replace").strip()
    return text or f"HTTP {answer.status}"
