"""Podman through its REST API (podman-py); a transient service is started when needed."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

from llmdeploy.core.engine_traits import DEVICE_PATHS, PODMAN
from llmdeploy.core.registry import DEFAULT_ACCESS, RegistryAccess
from llmdeploy.core.run_spec import BuildRequest, PushResult, RunSpec
from llmdeploy.engines.addresses import ApiAddress, as_url, podman_addresses
from llmdeploy.engines.http_api import EngineApi, supports
from llmdeploy.engines.libpod_create import libpod_create_body
from llmdeploy.engines.podman_service import TransientService, first_answering, socket_answers
from llmdeploy.engines.registry_errors import registry_error
from llmdeploy.engines.sdk_engine import SdkEngine, build_kwargs, load_sdk, ulimit_pairs
from llmdeploy.errors import EngineError, EngineUnavailableError, ImageBuildError


class PodmanEngine(SdkEngine):
    """Podman's REST API at ``socket_path`` (used as given), else at the first address of
    ``podman_addresses``: a configured one must answer; when no default socket answers, a
    transient ``podman system service`` is started and stopped again by ``close``.

    Raises EngineUnavailableError naming the variable that configured a dead address.
    """

    traits = PODMAN

    def __init__(
        self, socket_path: str | None = None, timeout_s: int = 300, client: Any | None = None
    ) -> None:
        self._service: TransientService | None = None
        self._timeout_s = timeout_s
        self._url = ""
        if client is not None:  # an injected client (tests); no connection is made
            self._sdk()
            self.client, self._version, self.socket_path = client, "injected", ""
            return
        address = ApiAddress(as_url(socket_path)) if socket_path else self._discover()
        self.socket_path = address.socket_path or ""
        self._url = address.url
        try:
            if supports(address.url):
                # the standard-library client; podman-py is loaded when a call needs it.
                # /_ping answers in under 1 ms; /version took ~350 ms on Podman 4.3
                self.api = EngineApi(address.url, "podman", timeout_s)
                self.api.ping()
            elif not self.client.ping():  # ssh:// and others: podman-py for everything
                raise EngineError("/_ping did not answer OK")
        except Exception as exc:
            self.close()
            raise EngineUnavailableError(
                f"the Podman API at {address.url}{address.origin} did not answer: {exc}",
                hint="run `llmdeploy doctor`"
                + (
                    f", or unset {address.variable} to use the local Podman"
                    if address.configured
                    else ""
                ),
            ) from exc

    def _sdk(self) -> Any:
        """podman-py, with its exception classes recorded for the shared error mapping."""
        podman = load_sdk("podman")
        errors = podman.errors
        self.not_found = (errors.NotFound, errors.ImageNotFound)
        self.api_error = (errors.APIError, errors.PodmanError)
        self._build_error = errors.BuildError
        return podman

    def make_client(self) -> Any:
        return self._sdk().PodmanClient(base_url=self._url, timeout=self._timeout_s)

    def _discover(self) -> ApiAddress:
        candidates = podman_addresses(os.environ, os.geteuid())
        first = candidates[0]
        if first.configured:
            path = first.socket_path
            if path is not None and not socket_answers(path):
                raise EngineUnavailableError(
                    f"the Podman API socket {path}{first.origin} does not answer",
                    hint=f"start it (`podman system service --time=0 {first.url}`), "
                    f"or unset {first.variable} to use the local Podman",
                )
            return first
        answering = first_answering(candidates)
        if answering is not None:
            return answering
        self._service = TransientService()
        return ApiAddress(as_url(self._service.path))

    @property
    def transient(self) -> bool:
        return self._service is not None

    def create_kwargs(self, spec: RunSpec) -> dict[str, Any]:
        kwargs = self.common_kwargs(spec)
        kwargs["mounts"] = [
            {"type": "bind", "source": m.source, "target": m.target, "read_only": m.read_only}
            for m in spec.mounts
        ]
        kwargs["no_new_privileges"] = spec.no_new_privileges
        if spec.label_disable:  # podman-py: security_opt -> libpod selinux_opts
            kwargs["security_opt"] = [self.traits.sdk_label_disable]
        if spec.ulimits:
            kwargs["ulimits"] = [
                {"Name": name, "Soft": soft, "Hard": hard}
                for name, (soft, hard) in ulimit_pairs(spec.ulimits).items()
            ]
        if spec.gpu is not None and spec.gpu.vendor == "nvidia":
            kwargs["devices"] = self.traits.cdi_devices(spec.gpu)
        elif spec.gpu is not None:
            kwargs["devices"] = list(DEVICE_PATHS[spec.gpu.vendor])
            kwargs["group_add"] = ["video"]
        return kwargs

    def create_body(self, kwargs: dict[str, Any]) -> dict[str, Any] | None:
        """libpod's create body without podman-py (``engines/libpod_create.py``)."""
        return libpod_create_body(kwargs)

    def pull_image(self, repository: str, tag: str, access: RegistryAccess) -> str | None:
        # libpod answers a failed pull with 200 and an {"error": ...} line in its stream, which
        # podman-py's plain pull() drops (it returns an empty Image), and podman-py appends
        # ":latest" to a digest reference: call the endpoint with the whole reference instead
        reference = f"{repository}:{tag}" if tag else repository
        params = {"reference": reference, "policy": "always", "tlsVerify": access.tls_verify,
                  "quiet": False}
        response = self.client.api.post(
            "/images/pull", params=params, headers=_auth_header(access), stream=True
        )
        return _stream_problem(response)

    def untag_image(self, ref: str) -> None:
        """Remove the name ``ref`` (libpod's untag endpoint: the image stays under its other
        names or its ID); a name that is not there is fine."""
        repository, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (
            ref, "", "latest")
        response = self.client.api.post(
            f"/images/{quote(ref, safe='')}/untag", params={"repo": repository, "tag": tag}
        )
        if response.status_code == 404:
            return
        if response.status_code >= 400:
            raise EngineError(f"podman could not untag {ref}: {_message(response)}")

    def push(self, ref: str, access: RegistryAccess = DEFAULT_ACCESS) -> PushResult:
        """Push ``ref`` through libpod's push endpoint with ``access``.

        The digest is the one Podman reports (``manifestdigest``, newer Podman), else read back
        with a pull of the pushed tag: every blob is local then, so only the manifest travels,
        and Podman records the registry's digest. podman-py's ``images.push`` returns a canned
        answer without reading the service's, so a failed push would pass unnoticed: the
        endpoint is called directly.
        """
        what = f"could not push {ref} with podman"
        response = self.client.api.post(
            f"/images/{quote(ref, safe='')}/push",
            params={"tlsVerify": access.tls_verify, "quiet": False},
            headers=_auth_header(access),
            stream=True,
        )
        items = _stream_items(response)
        problem = _problem(items)
        if problem is not None:
            raise registry_error(what, problem, tls_verify=access.tls_verify)
        reported = [str(i["manifestdigest"]) for i in items if i.get("manifestdigest")]
        digest = reported[-1] if reported else self._registry_digest(ref, access)
        return PushResult(ref=ref, digest=digest)

    def _registry_digest(self, ref: str, access: RegistryAccess) -> str | None:
        """The registry's digest of ``ref`` after a push (see ``push``), None when unsure."""
        before = self.image_info(ref)
        if self.pull_image(ref, "", access) is not None:
            return None
        after = self.image_info(ref)
        if before is None or after is None:
            return None
        name = ref.split("@", 1)[0]
        name = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
        digests = {
            d.split("@", 1)[1]
            for d in after.repo_digests
            if d.split("@", 1)[0] == name and "@" in d
        }
        digests.discard(before.local_digest)
        return digests.pop() if len(digests) == 1 else None

    def create_manifest_list(self, ref: str, images: list[str]) -> None:
        """Make the local manifest list ``ref`` of ``images`` (one per platform; each entry
        gets the platform its config records), through libpod's ``/manifests`` endpoints. A
        list of the same name left by an earlier build is replaced (a tag moves the same way).
        """
        quoted = quote(ref, safe="")
        if self.client.api.get(f"/manifests/{quoted}/exists").status_code == 204:
            self.client.api.delete(f"/manifests/{quoted}")
        local = [f"containers-storage:{image}" for image in images]  # not docker:// (default)
        created = self.client.api.post(f"/manifests/{quoted}", params={"images": local})
        if created.status_code >= 400:
            raise EngineError(
                f"podman could not create the manifest list {ref}: {_message(created)}"
            )

    def push_manifest_list(self, ref: str, access: RegistryAccess = DEFAULT_ACCESS) -> PushResult:
        """Push the local manifest list ``ref`` with all its images (libpod's
        ``/manifests/{name}/registry/{destination}`` with ``all``). The images go by digest and
        the list is written last, so a failure leaves no tag in the registry. The answer's
        ``Id`` is the digest of the list as written there."""
        quoted = quote(ref, safe="")
        what = f"could not push the manifest list {ref} with podman"
        pushed = self.client.api.post(
            f"/manifests/{quoted}/registry/{quote('docker://' + ref, safe='')}",
            params={"all": True, "tlsVerify": access.tls_verify},
            headers=_auth_header(access),
        )
        items = _stream_items(pushed)
        problem = _problem(items)
        if problem is not None:
            raise registry_error(what, problem, tls_verify=access.tls_verify)
        digests = [str(i.get("Id") or i.get("digest") or "") for i in items]
        digest = next((d for d in reversed(digests) if d.startswith("sha256:")), None)
        return PushResult(ref=ref, digest=digest)

    def remove_manifest_list(self, ref: str) -> None:
        """Remove the local manifest list ``ref`` (its images stay); absent: no-op."""
        self.client.api.delete(f"/manifests/{quote(ref, safe='')}")

    def label_filters(self, labels: dict[str, str]) -> Any:
        # podman-py turns a {"label": [...]} mapping into a filter Podman does not match;
        # its list form ("label=KEY=VALUE") is sent as the libpod API expects.
        return [f"label={k}={v}" if v else f"label={k}" for k, v in labels.items()]

    def build(self, request: BuildRequest) -> list[str]:
        lines: list[str] = []
        client = self.client  # loads podman-py and its error classes
        try:
            _image, log = client.images.build(**build_kwargs(request))
            lines.extend(_decode_build_log(log))
        except self._build_error as exc:
            lines.extend(_decode_build_log(getattr(exc, "build_log", []) or []))
            raise ImageBuildError(
                f"podman build of {request.tag} failed: {exc}", log_tail=lines[-20:]
            ) from exc
        except self.api_error as exc:
            raise ImageBuildError(f"podman build of {request.tag} failed: {exc}") from exc
        return lines

    def close(self) -> None:
        super().close()
        if self._service is not None:
            self._service.close()
            self._service = None


def _auth_header(access: RegistryAccess) -> dict[str, str]:
    """libpod's ``X-Registry-Auth`` header for ``access`` (empty: the service's own logins)."""
    from podman.api import encode_auth_header

    if access.credentials is None:
        return {}
    return {"X-Registry-Auth": encode_auth_header(access.credentials.auth_config()).decode()}


def _stream_items(response: Any) -> list[dict[str, Any]]:
    """The JSON objects of a libpod answer: one per line when streamed, one body otherwise;
    an error status without a body becomes ``{"error": ...}``."""
    import json

    items: list[dict[str, Any]] = []
    for line in response.iter_lines():
        if not line:
            continue
        try:
            item = json.loads(line)
        except ValueError:
            item = {"stream": line.decode("utf-8", "replace") if isinstance(line, bytes) else line}
        if isinstance(item, dict):
            items.append(item)
    if response.status_code >= 400 and not _problem(items):
        items.append({"error": f"HTTP {response.status_code}"})
    return items


def _problem(items: list[dict[str, Any]]) -> str | None:
    """What went wrong, from libpod's ``error`` lines or an error body (``message``/``cause``)."""
    errors = [str(i["error"]) for i in items if i.get("error")]
    errors += [str(i["message"]) for i in items if i.get("message") and i.get("response")]
    return "; ".join(dict.fromkeys(errors)) or None


def _stream_problem(response: Any) -> str | None:
    return _problem(_stream_items(response))


def _message(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text or f"HTTP {response.status_code}"
    if isinstance(body, dict):
        return str(body.get("message") or body.get("cause") or body)
    return str(body)


def _decode_build_log(log: Any) -> list[str]:
    import json

    lines: list[str] = []
    for raw in log:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        try:
            item = json.loads(text)
        except ValueError:
            lines.extend(text.rstrip("\n").splitlines())
            continue
        if isinstance(item, dict):
            chunk = item.get("stream") or item.get("error") or ""
            lines.extend(str(chunk).rstrip("\n").splitlines())
    return lines
