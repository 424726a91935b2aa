"""Docker Engine through the ``docker`` SDK."""

from __future__ import annotations

import os
from typing import Any

from llmdeploy.constants import ENV_DOCKER_HOST
from llmdeploy.core.engine_traits import AMD_DEVICES, DOCKER
from llmdeploy.core.run_spec import BuildRequest, RunSpec
from llmdeploy.engines.sdk_engine import BUILD_TIMEOUT_S, SdkEngine
from llmdeploy.errors import EngineUnavailableError, ImageError

DEFAULT_DOCKER_URL = "unix:///var/run/docker.sock"


class DockerEngine(SdkEngine):
    traits = DOCKER

    def __init__(
        self, base_url: str | None = None, timeout_s: int = 120, client: Any | None = None
    ) -> None:
        try:
            import docker
            import docker.errors
        except ImportError as exc:  # pragma: no cover - docker is a declared dependency
            raise EngineUnavailableError("the docker Python package is not installed") from exc
        self._docker = docker
        self.not_found = (docker.errors.NotFound, docker.errors.ImageNotFound)
        self.api_error = (docker.errors.APIError, docker.errors.DockerException)
        from_env = base_url is None and bool(os.environ.get(ENV_DOCKER_HOST))
        url = base_url or os.environ.get(ENV_DOCKER_HOST) or DEFAULT_DOCKER_URL
        if client is not None:  # an injected client (tests); no connection is made
            self.client, self._version = client, "injected"
            return
        try:
            self.client = docker.DockerClient(base_url=url, timeout=timeout_s)
            self._version = str(self.client.version().get("Version", "unknown"))
        except docker.errors.DockerException as exc:
            origin = f" (from ${ENV_DOCKER_HOST})" if from_env else ""
            raise EngineUnavailableError(
                f"Docker Engine is not reachable at {url}{origin}: {exc}",
                hint=(
                    f"check ${ENV_DOCKER_HOST}, or unset it to use {DEFAULT_DOCKER_URL}; "
                    if from_env
                    else ""
                )
                + "start Docker (`systemctl start docker`, or run scripts/setup-host.sh), "
                "or use `engine: podman`",
            ) from exc

    def version(self) -> str:
        return self._version

    def create_kwargs(self, spec: RunSpec) -> dict[str, Any]:
        types = self._docker.types
        kwargs = self.common_kwargs(spec)
        kwargs["mounts"] = [
            types.Mount(target=m.target, source=m.source, type="bind", read_only=m.read_only)
            for m in spec.mounts
        ]
        security_opt = ["no-new-privileges"] if spec.no_new_privileges else []
        if spec.label_disable:
            security_opt.append(self.traits.sdk_label_disable)
        if security_opt:
            kwargs["security_opt"] = security_opt
        if spec.ulimits:
            kwargs["ulimits"] = [
                types.Ulimit(name=name, soft=int(soft), hard=int(hard))
                for name, (soft, hard) in _ulimits(spec.ulimits).items()
            ]
        if spec.gpu is not None and spec.gpu.vendor == "nvidia":
            count = -1 if spec.gpu.count is None else spec.gpu.count
            kwargs["device_requests"] = [types.DeviceRequest(count=count, capabilities=[["gpu"]])]
        elif spec.gpu is not None:
            kwargs["devices"] = [f"{d}:{d}:rwm" for d in AMD_DEVICES]
            kwargs["group_add"] = ["video"]
        return kwargs

    def build(self, request: BuildRequest) -> list[str]:
        lines: list[str] = []
        try:
            stream = self.client.api.build(
                path=request.context_dir,
                dockerfile=request.containerfile,
                tag=request.tag,
                buildargs=request.build_args,
                labels=request.labels,
                rm=True,
                forcerm=True,
                decode=True,
                timeout=BUILD_TIMEOUT_S,
            )
            for item in stream:
                if "stream" in item:
                    lines.extend(str(item["stream"]).rstrip("\n").splitlines())
                if "error" in item:
                    lines.append(str(item["error"]))
                    raise ImageError(
                        f"docker build of {request.tag} failed: {item['error']}",
                        log_tail=lines[-20:],
                    )
        except self.api_error as exc:
            raise ImageError(
                f"docker build of {request.tag} failed: {exc}", log_tail=lines[-20:]
            ) from exc
        return lines


def _ulimits(ulimits: dict[str, str]) -> dict[str, tuple[str, str]]:
    parsed = {}
    for name, limit in ulimits.items():
        soft, _, hard = str(limit).partition(":")
        parsed[name] = (soft, hard or soft)
    return parsed
