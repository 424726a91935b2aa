"""Podman through its REST API (podman-py); a transient service is started when needed."""

from __future__ import annotations

from typing import Any

from llmdeploy.core.engine_traits import AMD_DEVICES, PODMAN
from llmdeploy.core.run_spec import BuildRequest, RunSpec
from llmdeploy.engines.podman_service import (
    TransientService,
    configured_socket,
    find_socket,
    socket_answers,
)
from llmdeploy.engines.sdk_engine import BUILD_TIMEOUT_S, SdkEngine
from llmdeploy.errors import EngineUnavailableError, ImageError


class PodmanEngine(SdkEngine):
    traits = PODMAN

    def __init__(
        self, socket_path: str | None = None, timeout_s: int = 300, client: Any | None = None
    ) -> None:
        try:
            import podman
            import podman.errors
        except ImportError as exc:  # pragma: no cover - podman is a declared dependency
            raise EngineUnavailableError("the podman Python package is not installed") from exc
        self._service: TransientService | None = None
        self.not_found = (podman.errors.NotFound, podman.errors.ImageNotFound)
        self.api_error = (podman.errors.APIError, podman.errors.PodmanError)
        self._build_error = podman.errors.BuildError
        if client is not None:  # an injected client (tests); no connection is made
            self.client, self._version, self.socket_path = client, "injected", ""
            return
        configured = None if socket_path else configured_socket()
        if configured is not None:
            base_url, variable = configured
            path = base_url.removeprefix("unix://")
            if base_url.startswith("unix://") and not socket_answers(path):
                raise EngineUnavailableError(
                    f"the Podman API socket {path} (from ${variable}) does not answer",
                    hint=f"start it (`podman system service --time=0 {base_url}`), "
                    f"or unset {variable} to use the local Podman",
                )
        else:
            path = socket_path or find_socket() or ""
            if not path:
                self._service = TransientService()
                path = self._service.path
            base_url, variable = f"unix://{path}", ""
        self.socket_path = path
        try:
            self.client = podman.PodmanClient(base_url=base_url, timeout=timeout_s)
            self._version = str(self.client.version().get("Version", "unknown"))
        except Exception as exc:
            self.close()
            origin = f" (from ${variable})" if variable else ""
            raise EngineUnavailableError(
                f"the Podman API at {base_url}{origin} did not answer: {exc}",
                hint="run `llmdeploy doctor`"
                + (f", or unset {variable} to use the local Podman" if variable else ""),
            ) from exc

    @property
    def transient(self) -> bool:
        return self._service is not None

    def version(self) -> str:
        return self._version

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
            limits = []
            for name, limit in spec.ulimits.items():
                soft, _, hard = str(limit).partition(":")
                limits.append({"Name": name, "Soft": int(soft), "Hard": int(hard or soft)})
            kwargs["ulimits"] = limits
        if spec.gpu is not None and spec.gpu.vendor == "nvidia":
            kwargs["devices"] = self.traits.cdi_devices(spec.gpu)
        elif spec.gpu is not None:
            kwargs["devices"] = list(AMD_DEVICES)
            kwargs["group_add"] = ["video"]
        return kwargs

    def label_filters(self, labels: dict[str, str]) -> Any:
        # podman-py turns a {"label": [...]} mapping into a filter Podman does not match;
        # its list form ("label=KEY=VALUE") is sent as the libpod API expects.
        return [f"label={k}={v}" if v else f"label={k}" for k, v in labels.items()]

    def build(self, request: BuildRequest) -> list[str]:
        lines: list[str] = []
        try:
            _image, log = self.client.images.build(
                path=request.context_dir,
                dockerfile=request.containerfile,
                tag=request.tag,
                buildargs=request.build_args,
                labels=request.labels,
                rm=True,
                forcerm=True,
                timeout=BUILD_TIMEOUT_S,
            )
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
