"""Docker Engine through the ``docker`` SDK."""

from __future__ import annotations

import os
from typing import Any

from llmdeploy.constants import DOCKER_DEFAULT_HOST
from llmdeploy.core.engine_traits import DEVICE_PATHS, DOCKER
from llmdeploy.core.image_ref import parse_image_ref
from llmdeploy.core.registry import DEFAULT_ACCESS, RegistryAccess
from llmdeploy.core.run_spec import BuildRequest, PushResult, RunSpec
from llmdeploy.engines.addresses import ApiAddress, as_url, docker_address
from llmdeploy.engines.http_api import EngineApi, supports
from llmdeploy.engines.registry_errors import registry_error
from llmdeploy.engines.sdk_engine import (
    SdkEngine,
    build_kwargs,
    load_sdk,
    split_tag,
    ulimit_pairs,
)
from llmdeploy.errors import EngineError, EngineUnavailableError, ImageBuildError, UsageError


class DockerEngine(SdkEngine):
    """Docker Engine at ``base_url``, else at ``docker_address`` (``$DOCKER_HOST`` or the default).

    Raises EngineUnavailableError (naming ``$DOCKER_HOST`` when it chose the address) when the
    daemon does not answer.
    """

    traits = DOCKER

    def __init__(
        self, base_url: str | None = None, timeout_s: int = 120, client: Any | None = None
    ) -> None:
        self._timeout_s = timeout_s
        self._url = ""
        if client is not None:  # an injected client (tests); no connection is made
            self._sdk()
            self.client, self._version = client, "injected"
            return
        address = ApiAddress(as_url(base_url)) if base_url else docker_address(os.environ)
        self._url = address.url
        try:
            if supports(address.url):
                # the standard-library client (docker-py is loaded when a call needs it);
                # /_ping also states the daemon's API version
                self.api = EngineApi(address.url, "docker", timeout_s)
                self.api.ping()
            else:  # ssh:// and TLS addresses: docker-py for everything
                self.client.ping()
        except Exception as exc:
            self.close()
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

    def _sdk(self) -> Any:
        """docker-py, with its exception classes recorded for the shared error mapping."""
        self._docker = load_sdk("docker")
        errors = self._docker.errors
        self.not_found = (errors.NotFound, errors.ImageNotFound)
        self.api_error = (errors.APIError, errors.DockerException)
        return self._docker

    def make_client(self) -> Any:
        docker = self._sdk()
        # the API version /_ping stated, so docker-py does not ask /version again
        version = self.api.api_version if self.api is not None and self.api.api_version else None
        return docker.DockerClient(base_url=self._url, timeout=self._timeout_s, version=version)

    def create_kwargs(self, spec: RunSpec) -> dict[str, Any]:
        types = self._sdk().types
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
                    raise ImageBuildError(
                        f"docker build of {request.tag} failed: {item['error']}",
                        log_tail=lines[-20:],
                    )
        except self.api_error as exc:
            raise ImageBuildError(
                f"docker build of {request.tag} failed: {exc}", log_tail=lines[-20:]
            ) from exc
        return lines

    # --- registries -----------------------------------------------------------------------
    # Docker decides TLS per registry in the daemon (insecure-registries in daemon.json;
    # loopback registries are always allowed plain HTTP), never per request: a push or pull
    # with --tls-verify=false to a registry the daemon would reach with TLS is refused up
    # front rather than failing with a TLS error.
    def _check_tls(self, ref: str, access: RegistryAccess) -> None:
        if access.tls_verify:
            return
        parsed = parse_image_ref(ref)
        registry = parsed.registry or "docker.io"
        if _loopback(parsed.host):
            return
        try:
            config = self.client.info().get("RegistryConfig") or {}
        except self.api_error as exc:
            raise self._error("reading the daemon's registry configuration", exc) from exc
        index = (config.get("IndexConfigs") or {}).get(registry) or {}
        if index.get("Secure") is False or _in_cidrs(parsed.host, config):
            return
        raise UsageError(
            f"--tls-verify=false: Docker decides TLS per registry in its daemon, and {registry} "
            "is not one of its insecure registries",
            hint=f'add "{registry}" to "insecure-registries" in /etc/docker/daemon.json and '
            "restart dockerd, or use Podman",
        )

    def pull_image(self, repository: str, tag: str, access: RegistryAccess) -> str | None:
        self._check_tls(f"{repository}:{tag}" if tag else repository, access)
        auth = access.credentials.auth_config() if access.credentials is not None else None
        stream = self.client.api.pull(
            repository, tag=tag or None, stream=True, decode=True, auth_config=auth
        )
        errors = [str(i["error"]) for i in stream if isinstance(i, dict) and i.get("error")]
        return "; ".join(errors) or None

    def untag_image(self, ref: str) -> None:
        """Remove the name ``ref`` (``docker rmi`` of a name: the image stays under its other
        names; an image whose last name this was goes with it)."""
        try:
            self.client.images.remove(ref, noprune=False)
        except self.not_found:
            return
        except self.api_error as exc:
            raise self._error(f"untagging {ref}", exc) from exc

    def push(self, ref: str, access: RegistryAccess = DEFAULT_ACCESS) -> PushResult:
        """Push ``ref``; the daemon's stream ends with the registry's digest (``aux.Digest``)."""
        self._check_tls(ref, access)
        repository, tag = split_tag(ref)
        auth = access.credentials.auth_config() if access.credentials is not None else None
        what = f"could not push {ref} with docker"
        digest: str | None = None
        try:
            for item in self.client.api.push(
                repository, tag=tag or None, stream=True, decode=True, auth_config=auth
            ):
                if not isinstance(item, dict):
                    continue
                if item.get("error"):
                    raise registry_error(what, str(item["error"]), tls_verify=access.tls_verify)
                aux = item.get("aux")
                if isinstance(aux, dict) and aux.get("Digest"):
                    digest = str(aux["Digest"])
        except self.not_found as exc:
            raise EngineError(f"{what}: no such image in docker") from exc
        except self.api_error as exc:
            raise registry_error(what, str(exc), tls_verify=access.tls_verify) from exc
        return PushResult(ref=ref, digest=digest)


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _in_cidrs(host: str, config: dict[str, Any]) -> bool:
    """Whether ``host`` (an IP address) is in the daemon's insecure registry CIDRs."""
    import ipaddress

    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    for cidr in config.get("InsecureRegistryCIDRs") or ():
        try:
            if address in ipaddress.ip_network(str(cidr), strict=False):
                return True
        except ValueError:
            continue
    return False
