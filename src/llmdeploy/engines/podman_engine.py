"""Podman through its REST API (podman-py); a transient service is started when needed."""

from __future__ import annotations

import os
from typing import Any

from llmdeploy.core.engine_traits import DEVICE_PATHS, PODMAN
from llmdeploy.core.run_spec import BuildRequest, RunSpec
from llmdeploy.engines.addresses import ApiAddress, as_url, podman_addresses
from llmdeploy.engines.podman_service import TransientService, first_answering, socket_answers
from llmdeploy.engines.sdk_engine import SdkEngine, build_kwargs, load_sdk, ulimit_pairs
from llmdeploy.errors import EngineUnavailableError, ImageError


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
        podman = load_sdk("podman")
        errors = podman.errors
        self._service: TransientService | None = None
        self.not_found = (errors.NotFound, errors.ImageNotFound)
        self.api_error = (errors.APIError, errors.PodmanError)
        self._build_error = errors.BuildError
        if client is not None:  # an injected client (tests); no connection is made
            self.client, self._version, self.socket_path = client, "injected", ""
            return
        address = ApiAddress(as_url(socket_path)) if socket_path else self._discover()
        self.socket_path = address.socket_path or ""
        try:
            self.client = podman.PodmanClient(base_url=address.url, timeout=timeout_s)
            self._version = str(self.client.version().get("Version", "unknown"))
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

    def pull_image(self, repository: str, tag: str) -> str | None:
        # libpod answers a failed pull with 200 and an {"error": ...} line in its stream, which
        # podman-py's plain pull() drops (it returns an empty Image): read the stream instead
        stream = self.client.images.pull(repository, tag=tag, stream=True, decode=True)
        errors = [
            str(item["error"]) for item in stream if isinstance(item, dict) and item.get("error")
        ]
        return "; ".join(errors) or None

    def label_filters(self, labels: dict[str, str]) -> Any:
        # podman-py turns a {"label": [...]} mapping into a filter Podman does not match;
        # its list form ("label=KEY=VALUE") is sent as the libpod API expects.
        return [f"label={k}={v}" if v else f"label={k}" for k, v in labels.items()]

    def build(self, request: BuildRequest) -> list[str]:
        lines: list[str] = []
        try:
            _image, log = self.client.images.build(**build_kwargs(request))
            lines.extend(_decode_build_log(log))
        except self._build_error as exc:
            lines.extend(_decode_build_log(getattr(exc, "build_log", []) or []))
            raise ImageError(
                f"podman build of {request.tag} failed: {exc}", log_tail=lines[-20:]
            ) from exc
        except self.api_error as exc:
            raise ImageError(f"podman build of {request.tag} failed: {exc}") from exc
        return lines

    def close(self) -> None:
        super().close()
        if self._service is not None:
            self._service.close()
            self._service = None


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
