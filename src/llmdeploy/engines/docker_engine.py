"""Docker Engine through the ``docker`` SDK."""

from __future__ import annotations

import os
from typing import Any

from llmdeploy.constants import DOCKER_DEFAULT_HOST
from llmdeploy.core.engine_traits import DEVICE_PATHS, DOCKER
from llmdeploy.core.run_spec import BuildRequest, RunSpec
from llmdeploy.engines.addresses import ApiAddress, as_url, docker_address
from llmdeploy.engines.sdk_engine import SdkEngine, build_kwargs, load_sdk, ulimit_pairs
from llmdeploy.errors import EngineUnavailableError, ImageError


class DockerEngine(SdkEngine):
    """Docker Engine at ``base_url``, else at ``docker_address`` (``$DOCKER_HOST`` or the default).

    Raises EngineUnavailableError (naming ``$DOCKER_HOST`` when it chose the address) when the
    daemon does not answer.
    """

    traits = DOCKER

    def __init__(
        self, base_url: str | None = None, timeout_s: int = 120, client: Any | None = None
    ) -> None:
        self._docker = load_sdk("docker")
        errors = self._docker.errors
        self.not_found = (errors.NotFound, errors.ImageNotFound)
        self.api_error = (errors.APIError, errors.DockerException)
        if client is not None:  # an injected client (tests); no connection is made
            self.client, self._version = client, "injected"
            return
        address = ApiAddress(as_url(base_url)) if base_url else docker_address(os.environ)
        try:
            self.client = self._docker.DockerClient(base_url=address.url, timeout=timeout_s)
            self._version = str(self.client.version().get("Version", "unknown"))
        except errors.DockerException as exc:
            raise EngineUnavailableError(
                f"Docker Engine is not reachable at {address.url}{address.origin}: {exc}",
                hint=(
                    f"check ${address.variable}, or unset it to use {DOCKER_DEFAULT_HOST}; "
                    if address.configured
                    else ""
                )
                + "start Docker (`systemctl start docker`, or run scripts/setup-host.sh), "
                "or use `engine: podman`",
            ) from exc

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
                types.Ulimit(name=name, soft=soft, hard=hard)
                for name, (soft, hard) in ulimit_pairs(spec.ulimits).items()
            ]
        if spec.gpu is not None and spec.gpu.vendor == "nvidia":
            count = -1 if spec.gpu.count is None else spec.gpu.count
            kwargs["device_requests"] = [types.DeviceRequest(count=count, capabilities=[["gpu"]])]
        elif spec.gpu is not None:
            kwargs["devices"] = [f"{d}:{d}:rwm" for d in DEVICE_PATHS[spec.gpu.vendor]]
            kwargs["group_add"] = ["video"]
        return kwargs

    def build(self, request: BuildRequest) -> list[str]:
        lines: list[str] = []
        try:
            stream = self.client.api.build(decode=True, **build_kwargs(request))
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

