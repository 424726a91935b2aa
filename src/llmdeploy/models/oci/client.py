"""The registry seam: :class:`Registry` (what push and pull need), implemented over ``oras``.

Why oras-py (PyPI ``oras``, the ORAS project's Python SDK, Apache-2.0, released monthly): it
speaks the OCI distribution protocol llmdeploy must not reimplement — the auth challenge
(``WWW-Authenticate`` Basic, or Bearer with a token request to the realm), blob existence
checks, blob upload sessions (POST, chunked PATCH with ``Content-Range``, closing PUT with the
digest), blob downloads — on ``requests``. What llmdeploy adds around it, and why:

- the manifest bytes are built here (``modelpack``) and sent through oras's request method as
  they are: ``Registry.push()`` (oras 0.2.43) cannot set ``artifactType``, which ModelPack
  requires, and serialises the manifest itself (its digest would not be the one computed);
- oras's ``do_request`` retries every failure 5 times with sleeps of 3 to 83 s (``decorator
  .retry``): a stopped registry would take over two minutes to report. The undecorated
  method is called instead (``__wrapped__``, set by ``functools.wraps``), with a connect and
  read timeout on the session (oras sets none), so "registry down" is said at once;
- before anything else one ``GET /v2/`` (the distribution spec's API version check) decides
  HTTPS or, only with ``tls_verify=False``, plain HTTP, and which auth oras should answer
  with: Basic (``docker-registry`` with htpasswd) or Bearer tokens (Docker Hub, ghcr, Harbor).
  A registry that wants Basic auth and was given no credentials is refused right there;
- Basic credentials are sent with every request rather than after a 401 (oras re-sends each
  request, each 16 MiB chunk of an upload included, once without and once with them);
- blobs are read as a stream and verified by the caller (oras's ``download_blob`` writes
  without checking the digest); oras's logger is silenced (its messages would repeat the
  errors raised here, and print registry answers on stderr).

Every ``requests`` / oras exception is translated here into the RegistryError tree: no
connection -> RegistryUnreachableError (exit 13), 401/403 -> RegistryAuthError (exit 12),
any other refusal -> RegistryError (exit 14), with the registry's own error code and message.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from llmdeploy.errors import RegistryAuthError, RegistryError, RegistryUnreachableError
from llmdeploy.models.oci.credentials import Credentials, RegistryAccess, resolve
from llmdeploy.models.oci.modelpack import OCI_INDEX, OCI_MANIFEST, Blob

if TYPE_CHECKING:
    import requests

    from llmdeploy.core.model_ref import ModelRef

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 300.0
CHUNK_BYTES = 1 << 20  # download chunks
UPLOAD_CHUNK_BYTES = 16 << 20  # oras's chunked upload size
MANIFEST_ACCEPT = ", ".join(
    (
        OCI_MANIFEST,
        OCI_INDEX,
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)
_TLS_HINT = (
    "if the registry speaks plain HTTP (e.g. a local docker-registry), pass --tls-verify=false "
    "(or model.tls_verify: false in the profile)"
)


class Registry(Protocol):
    """One repository of one registry; every method raises the RegistryError tree."""

    where: str  # host/repository, for messages

    def blob_exists(self, blob: Blob) -> bool: ...

    def push_blob(self, blob: Blob, path: Path) -> None:
        """Upload ``path``, whose content is ``blob`` (digest, size), unless it is there."""

    def push_bytes(self, blob: Blob, data: bytes) -> None:
        """Upload a small blob held in memory (the config)."""

    def put_manifest(self, tag: str, data: bytes, media_type: str) -> str:
        """Store ``data`` under ``tag``; return the digest the registry reports."""

    def get_manifest(self, reference: str) -> tuple[bytes, str]:
        """(bytes, media type) of the manifest ``reference`` (a tag or ``sha256:HEX``)."""

    def read_blob(self, blob: Blob) -> contextlib.AbstractContextManager[Iterator[bytes]]:
        """The blob's bytes in chunks (unverified: the caller hashes them)."""


#: What connects to a reference's registry: :func:`connect`, or a fake in tests.
RegistryFactory = Callable[["ModelRef", RegistryAccess], Registry]


@dataclass(frozen=True)
class Endpoint:
    """What the ``/v2/`` check found: the URL scheme and the auth oras should use."""

    scheme: str  # https or http
    auth: str  # "token" (anonymous or Bearer) or "basic"


def connect(ref: ModelRef, access: RegistryAccess) -> OrasRegistry:
    """A client for ``ref``'s repository, after the ``/v2/`` check (see the module docstring);
    RegistryUnreachableError / RegistryAuthError / RegistryError when that check fails."""
    import requests

    if ref.scheme != "oci" or ref.registry is None or ref.repo is None:
        raise ValueError(f"{ref} is not an oci:// reference")
    creds = resolve(ref.registry, ref.repo, access)
    session = _session()
    endpoint = probe(session, ref.registry, access, creds)
    try:
        return OrasRegistry(ref.registry, ref.repo, endpoint, access, creds, session)
    except requests.RequestException as exc:  # pragma: no cover - oras builds no request here
        raise translate(exc, ref.registry) from exc


def _session() -> requests.Session:
    from http.cookiejar import DefaultCookiePolicy

    import requests

    class TimeoutSession(requests.Session):
        """A session whose requests time out (oras passes no timeout)."""

        def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", (CONNECT_TIMEOUT_S, READ_TIMEOUT_S))
            return super().request(method, url, *args, **kwargs)

    session = TimeoutSession()
    # as oras does: some registries take a cookie as a sign of a browser (Harbor's CSRF)
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return session


def probe(
    session: requests.Session,
    host: str,
    access: RegistryAccess,
    creds: Credentials | None,
) -> Endpoint:
    """``GET /v2/`` over HTTPS, then (only when ``access.tls_verify`` is False and HTTPS
    failed) over plain HTTP; which auth the registry asks for."""
    import requests

    schemes = ("https",) if access.tls_verify else ("https", "http")
    last: Exception | None = None
    for scheme in schemes:
        try:
            answer = session.get(f"{scheme}://{host}/v2/", verify=access.tls_verify)
        except requests.exceptions.SSLError as exc:
            last = exc
            continue  # plain HTTP spoken back, or an unverifiable certificate
        except requests.RequestException as exc:
            raise translate(exc, host) from exc
        if answer.status_code == 401:
            challenge = answer.headers.get("WWW-Authenticate", "")
            if challenge.lower().startswith("basic"):
                if creds is None:
                    raise RegistryAuthError(
                        f"the registry {host} wants a user name and password, and none were "
                        "found",
                        hint="pass --creds-env NAME (a variable holding user:token; "
                        "model.creds_env in a profile), or log in with podman/docker login",
                    )
                _check_basic(session, f"{scheme}://{host}/v2/", access, creds, host)
                return Endpoint(scheme, "basic")
            return Endpoint(scheme, "token")
        if answer.status_code == 200:
            return Endpoint(scheme, "token")
        raise RegistryError(
            f"{scheme}://{host}/v2/ answered HTTP {answer.status_code}: not an OCI registry "
            "API (the distribution spec's /v2/ endpoint)",
            hint="check the host and port of the oci:// reference",
        )
    assert last is not None
    raise translate(last, host) from last


def _check_basic(
    session: requests.Session, url: str, access: RegistryAccess, creds: Credentials, host: str
) -> None:
    """Try the Basic credentials on ``/v2/`` once, so a wrong password is said before any
    upload or download starts."""
    import requests

    try:
        answer = session.get(url, verify=access.tls_verify, auth=(creds.username, creds.password))
    except requests.RequestException as exc:
        raise translate(exc, host) from exc
    if answer.status_code in (401, 403):
        raise RegistryAuthError(
            f"{_auth_refused(host, creds)} (HTTP {answer.status_code})",
            hint="check the user name and password/token",
        )


def translate(exc: BaseException, host: str) -> RegistryError:
    """A requests / oras exception as the RegistryError it means."""
    import requests

    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        return RegistryUnreachableError(
            f"cannot talk HTTPS to the registry {host}: {_short(text)}",
            hint=_TLS_HINT,
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return RegistryUnreachableError(
            f"the registry {host} did not answer in time: {_short(text)}",
            hint="check that it is running and reachable; try again",
        )
    if isinstance(exc, requests.exceptions.ConnectionError):
        return RegistryUnreachableError(
            f"cannot reach the registry {host}: {_short(text)}",
            hint="check that it is running and that host and port are right",
        )
    if isinstance(exc, requests.RequestException):
        return RegistryUnreachableError(f"request to the registry {host} failed: {_short(text)}")
    return RegistryError(f"the registry {host}: {_short(text)}")


def _short(text: str) -> str:
    """requests' messages nest the cause in repr()s (``... [Errno 111] Connection refused'))``);
    keep what says it."""
    found = re.search(r"\[(?:Errno -?\d+|SSL: [A-Z_]+)\] ([^'\"()]+)", text)
    if found:
        return found.group(1).strip()
    found = re.search(r"(Read timed out|timed out)", text)
    return found.group(1) if found else text


def error_text(response: requests.Response) -> str:
    """The registry's OCI error body (``{"errors": [{"code", "message"}]}``) in one line,
    else the HTTP reason."""
    try:
        body = response.json()
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors:
            return "; ".join(
                f"{e.get('code', '?')}: {e.get('message', '')}".strip()
                for e in errors
                if isinstance(e, dict)
            )
    except ValueError:
        pass
    return f"HTTP {response.status_code} {response.reason}"


@functools.cache
def _silence_oras() -> None:
    logging.getLogger("oras").addHandler(logging.NullHandler())
    logging.getLogger("oras").propagate = False


class OrasRegistry:
    """:class:`Registry` over oras-py (see the module docstring)."""

    def __init__(
        self,
        host: str,
        repository: str,
        endpoint: Endpoint,
        access: RegistryAccess,
        creds: Credentials | None,
        session: requests.Session,
    ) -> None:
        import oras.container
        import oras.provider

        _silence_oras()
        undecorated = getattr(
            oras.provider.Registry.do_request, "__wrapped__", oras.provider.Registry.do_request
        )
        basic = endpoint.auth == "basic"

        class Client(oras.provider.Registry):  # type: ignore[misc]
            def do_request(
                self,
                url: str,
                method: str = "GET",
                data: Any = None,
                headers: dict[str, str] | None = None,
                json: Any = None,
                stream: bool = False,
            ) -> Any:
                sent = dict(headers or {})
                if basic and creds is not None:
                    sent.update(self.auth.get_auth_header())
                try:
                    return undecorated(self, url, method, data, sent, json, stream)
                except ValueError as exc:  # oras: "Cannot respond to request for authentication."
                    if "authentication" in str(exc).lower():
                        raise RegistryAuthError(_auth_refused(host, creds)) from exc
                    raise

        self.where = f"{host}/{repository}"
        self.host = host
        self._creds = creds
        self._client = Client(
            hostname=host,
            insecure=endpoint.scheme == "http",
            tls_verify=access.tls_verify,
            auth_backend=endpoint.auth,
        )
        self._client.session = session
        self._client.auth.session = session
        if creds is not None:
            self._client.auth.set_basic_auth(creds.username, creds.password)
        container = oras.container.Container(repository.rsplit("/", 1)[-1], registry=host)
        namespace, _, name = repository.rpartition("/")
        container.namespace, container.repository = namespace or None, name
        container.registry = host
        self._container = container
        self._prefix = endpoint.scheme

    # -- helpers ---------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self._prefix}://{path}"

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        import requests

        try:
            response: requests.Response = self._client.do_request(url, method, **kwargs)
        except requests.RequestException as exc:
            raise translate(exc, self.host) from exc
        return response

    def _check(self, response: requests.Response, what: str) -> None:
        status = response.status_code
        if status < 300:
            return
        if status in (401, 403):
            raise RegistryAuthError(
                f"{what}: HTTP {status} ({error_text(response)}): "
                f"{_auth_refused(self.host, self._creds)}",
                hint="check the user name and token (--creds-env NAME, or podman/docker "
                "login), and that the account may push/pull this repository",
            )
        raise RegistryError(f"{what}: {self.where} answered {error_text(response)}")

    # -- Registry --------------------------------------------------------------------------

    def blob_exists(self, blob: Blob) -> bool:
        url = self._url(self._container.get_blob_url(blob.digest))
        response = self._request("HEAD", url)
        if response.status_code == 404:
            return False
        self._check(response, f"checking blob {blob.digest[:19]}")
        return True

    def push_blob(self, blob: Blob, path: Path) -> None:
        import requests

        layer = {"mediaType": blob.media_type, "digest": blob.digest, "size": blob.size}
        try:
            response = self._client.upload_blob(
                str(path), self._container, layer, do_chunked=True, chunk_size=UPLOAD_CHUNK_BYTES
            )
        except requests.RequestException as exc:
            raise translate(exc, self.host) from exc
        except ValueError as exc:  # oras's _check_200_response on a refused chunk
            raise RegistryError(f"uploading {path.name}: {self.where}: {exc}") from exc
        self._check(response, f"uploading {path.name}")

    def push_bytes(self, blob: Blob, data: bytes) -> None:
        """Upload a small blob held in memory (the config)."""
        with tempfile.TemporaryDirectory(prefix="llmdeploy-oci-") as folder:
            path = Path(folder) / "config.json"
            path.write_bytes(data)
            self.push_blob(blob, path)

    def put_manifest(self, tag: str, data: bytes, media_type: str) -> str:
        url = self._url(self._container.manifest_url(tag))
        response = self._request("PUT", url, data=data, headers={"Content-Type": media_type})
        self._check(response, f"storing the manifest as {tag}")
        return str(response.headers.get("Docker-Content-Digest", ""))

    def get_manifest(self, reference: str) -> tuple[bytes, str]:
        url = self._url(self._container.manifest_url(reference))
        response = self._request("GET", url, headers={"Accept": MANIFEST_ACCEPT})
        if response.status_code == 404:
            raise RegistryError(
                f"{self.where} has no manifest {reference!r} ({error_text(response)})",
                hint="check the tag or digest: the model must have been pushed there "
                "(llmdeploy models push SOURCE oci://...)",
            )
        self._check(response, f"reading the manifest {reference}")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return response.content, media_type

    @contextlib.contextmanager
    def read_blob(self, blob: Blob) -> Iterator[Iterator[bytes]]:
        import requests

        url = self._url(self._container.get_blob_url(blob.digest))
        response = self._request("GET", url, stream=True)
        with response:
            self._check(response, f"downloading blob {blob.digest[:19]}")
            try:
                yield response.iter_content(CHUNK_BYTES)
            except requests.RequestException as exc:
                raise translate(exc, self.host) from exc


def _auth_refused(host: str, creds: Credentials | None) -> str:
    if creds is None:
        return f"the registry {host} wants credentials, and none were found"
    return (
        f"the registry {host} refused the credentials of user {creds.username!r} "
        f"from {creds.source}"
    )
