"""Behaviour shared by the Docker SDK and podman-py adapters (their object models match).

Subclasses supply the client, the create() keyword arguments that differ, and the mapping
of SDK exceptions to llmdeploy's exception tree.

Two layers, as in docker-py: :attr:`SdkEngine.api` (``engines.http_api``, standard library
only) makes the calls every command needs (inspect, list, logs, stop, remove, image
inspect), and Podman's container create (:meth:`SdkEngine.create_body`: libpod's body
rendered as podman-py renders it, ``engines.libpod_create``); the SDK client
(:attr:`SdkEngine.client`) is imported and made on first use, by the calls that need its
payload rendering or streams (Docker's create, build, pull, push, tag). An engine reached
over ``ssh://`` or given an SDK client (tests) uses the SDK for everything.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any, TypeVar
from urllib.parse import quote

from llmdeploy.core.engine_traits import EngineTraits
from llmdeploy.core.registry import DEFAULT_ACCESS, RegistryAccess
from llmdeploy.core.run_spec import (
    BuildRequest,
    ContainerInfo,
    ImageInfo,
    MountInfo,
    PushResult,
    RunSpec,
)
from llmdeploy.engines.http_api import ApiError, EngineApi
from llmdeploy.errors import (
    DeploymentError,
    EngineError,
    EngineUnavailableError,
    ImageError,
    LlmdeployError,
    NameConflictError,
    PortInUseError,
)

CPU_PERIOD_US = 100_000
# large images (vLLM: ~5 min on two cores) build through one long HTTP call
BUILD_TIMEOUT_S = 3600


def load_sdk(package: str) -> ModuleType:
    """Import an engine SDK (``docker``, ``podman``) with its ``errors`` module.

    Imported here, not at module level, so ``llmdeploy --help`` does not pay for it; raises
    EngineUnavailableError when the package is missing.
    """
    import importlib

    try:
        module = importlib.import_module(package)
        importlib.import_module(f"{package}.errors")
    except ImportError as exc:  # pragma: no cover - both SDKs are declared dependencies
        raise EngineUnavailableError(f"the {package} Python package is not installed") from exc
    return module


def ulimit_pairs(ulimits: dict[str, str]) -> dict[str, tuple[int, int]]:
    """Ulimits as (soft, hard) numbers; a single value is both.

    ``{"nofile": "4096:8192", "nproc": "100"}`` -> ``{"nofile": (4096, 8192), "nproc": (100, 100)}``
    """
    pairs = {}
    for name, limit in ulimits.items():
        soft, _, hard = str(limit).partition(":")
        pairs[name] = (int(soft), int(hard or soft))
    return pairs


def build_kwargs(request: BuildRequest) -> dict[str, Any]:
    """The build keyword arguments both SDKs take alike (intermediate containers removed)."""
    kwargs: dict[str, Any] = {
        "path": request.context_dir,
        "dockerfile": request.containerfile,
        "tag": request.tag,
        "buildargs": request.build_args,
        "labels": request.labels,
        "rm": True,
        "forcerm": True,
        "timeout": BUILD_TIMEOUT_S,
    }
    if request.platform:
        kwargs["platform"] = request.platform
    return kwargs


class SdkEngine:
    traits: EngineTraits
    not_found: tuple[type[Exception], ...] = ()
    api_error: tuple[type[Exception], ...] = ()
    api: EngineApi | None = None  # None: the SDK makes every call
    _client: Any = None
    _version: str = ""

    @property
    def name(self) -> str:
        return self.traits.name

    @property
    def client(self) -> Any:
        """The SDK client, made (and its package imported) on first use."""
        if self._client is None:
            self._client = self.make_client()
        return self._client

    @client.setter
    def client(self, value: Any) -> None:
        self._client = value

    def make_client(self) -> Any:  # pragma: no cover - per engine
        raise NotImplementedError

    def version(self) -> str:
        """The engine's version as its API reports it (asked on first use; ``"injected"``
        for a test client)."""
        if not self._version:
            info = self.api.version() if self.api is not None else self.client.version()
            self._version = str(info.get("Version", "unknown"))
        return self._version

    # --- images ---------------------------------------------------------------------------
    def image_exists(self, ref: str) -> bool:
        if self.api is not None:
            return self._raw_image(ref) is not None
        try:
            self.client.images.get(ref)
        except self.not_found:
            return False
        except self.api_error as exc:
            raise self._error(f"checking image {ref}", exc) from exc
        return True

    def pull(self, ref: str, access: RegistryAccess = DEFAULT_ACCESS) -> None:
        """Pull ``ref`` with ``access`` (TLS, credentials); raise ImageError with the engine's
        reason when it is not there after (RegistryAuthError / RegistryUnreachableError when
        the registry refused the credentials or could not be reached)."""
        from llmdeploy.engines.registry_errors import registry_error

        access = access.for_pull()  # the saved login, looked up now that a pull needs it
        repository, tag = split_tag(ref)
        what = f"could not pull {ref} with {self.name}"
        hint = "load the image into the engine (podman load / docker load)"
        try:
            problem = self.pull_image(repository, tag, access)
        except (*self.not_found, *self.api_error) as exc:
            error = registry_error(what, _explain(exc), tls_verify=access.tls_verify)
            raise _with_hint(error, hint) from exc
        if problem is not None:
            raise _with_hint(registry_error(what, problem, tls_verify=access.tls_verify), hint)
        if not self.image_exists(ref):
            raise ImageError(
                f"could not pull {ref} with {self.name}: the image is not there after the pull "
                "(no such image?)",
                hint=f"check that the registry is reachable, or {hint}",
            )

    def pull_image(self, repository: str, tag: str, access: RegistryAccess) -> str | None:
        """Ask the engine to pull; return what it reported wrong without raising, if anything."""
        kwargs: dict[str, Any] = {"tag": tag}
        if access.credentials is not None:
            kwargs["auth_config"] = access.credentials.auth_config()
        return _pull_problem(self.client.images.pull(repository, **kwargs))

    def image_info(self, ref: str) -> ImageInfo | None:
        """The image ``ref`` names (a tag, digest reference or ID), or None when absent."""
        if self.api is not None:
            attrs = self._raw_image(ref)
            if attrs is None:
                return None
        else:
            try:
                attrs = self.client.images.get(ref).attrs
            except self.not_found:
                return None
            except self.api_error as exc:
                raise self._error(f"inspecting image {ref}", exc) from exc
        config = attrs.get("Config") or {}
        labels = attrs.get("Labels") or config.get("Labels") or {}
        return ImageInfo(
            id=str(attrs.get("Id", "")),
            tags=tuple(t for t in attrs.get("RepoTags") or () if t != "<none>:<none>"),
            size_bytes=int(attrs.get("Size") or 0),
            labels={str(k): str(v) for k, v in labels.items()},
            os=str(attrs.get("Os", "")),
            architecture=str(attrs.get("Architecture", "")),
            repo_digests=tuple(attrs.get("RepoDigests") or ()),
            local_digest=str(attrs.get("Digest") or ""),
        )

    def _raw_image(self, ref: str) -> dict[str, Any] | None:
        assert self.api is not None
        try:
            return self.api.inspect_image(ref)
        except ApiError as exc:
            raise self._error(f"inspecting image {ref}", exc) from exc

    def tag_image(self, image: str, ref: str) -> None:
        """Give ``image`` (a tag or ID) the additional name ``ref``."""
        repository, tag = split_tag(ref)
        try:
            self.client.images.get(image).tag(repository, tag or None)
        except self.not_found as exc:
            raise ImageError(f"cannot tag {image} as {ref}: no such image in {self.name}") from exc
        except self.api_error as exc:
            raise self._error(f"tagging {image} as {ref}", exc) from exc

    def untag_image(self, ref: str) -> None:  # pragma: no cover - per engine
        raise NotImplementedError

    def push(self, ref: str, access: RegistryAccess = DEFAULT_ACCESS) -> PushResult:
        # pragma: no cover - per engine
        raise NotImplementedError

    def create_manifest_list(self, ref: str, images: list[str]) -> None:
        """A manifest list (multi-platform image) ``ref`` of ``images``; engines whose API has
        none (``traits.manifest_lists`` False) refuse."""
        raise EngineError(
            f"{self.name}'s API cannot make manifest lists (multi-platform images)",
            hint="build multi-platform images with Podman (--engine podman)",
        )

    def push_manifest_list(self, ref: str, access: RegistryAccess = DEFAULT_ACCESS) -> PushResult:
        raise EngineError(f"{self.name}'s API cannot push manifest lists")

    def remove_manifest_list(self, ref: str) -> None:
        return None

    # --- containers -----------------------------------------------------------------------
    def create_kwargs(self, spec: RunSpec) -> dict[str, Any]:  # pragma: no cover - per engine
        raise NotImplementedError

    def common_kwargs(self, spec: RunSpec) -> dict[str, Any]:
        env = dict(spec.env)
        for key, host_var in spec.secret_env.items():
            value = os.environ.get(host_var)
            if value is None:
                raise DeploymentError(
                    f"the secret {host_var} is not set in this environment",
                    hint=f"export {host_var}=... before running llmdeploy",
                )
            env[key] = value
        kwargs: dict[str, Any] = {
            "image": spec.image,
            "command": list(spec.args),
            "name": spec.name,
            "labels": dict(spec.labels),
            "environment": env,
            "ports": {
                f"{p.container_port}/{p.protocol}": (p.host_ip, p.host_port) for p in spec.ports
            },
            "cap_drop": list(spec.cap_drop),
            "cap_add": list(spec.cap_add),
            "read_only": spec.read_only_rootfs,
        }
        if spec.entrypoint is not None:
            kwargs["entrypoint"] = list(spec.entrypoint)
        if spec.user:
            kwargs["user"] = spec.user
        if spec.cpus is not None:
            kwargs["cpu_period"] = CPU_PERIOD_US
            kwargs["cpu_quota"] = int(spec.cpus * CPU_PERIOD_US)
        if spec.memory:
            from llmdeploy.core.sizes import to_bytes

            kwargs["mem_limit"] = to_bytes(spec.memory)
        if spec.shm_size:
            from llmdeploy.core.sizes import to_bytes

            kwargs["shm_size"] = to_bytes(spec.shm_size)
        if spec.pids_limit is not None:
            kwargs["pids_limit"] = spec.pids_limit
        if spec.ipc_mode:
            kwargs["ipc_mode"] = spec.ipc_mode
        if spec.network_mode:
            kwargs["network_mode"] = spec.network_mode
        return kwargs

    def create_body(self, kwargs: dict[str, Any]) -> dict[str, Any] | None:
        """The create request's JSON body for :attr:`api` (rendered as the SDK renders
        ``kwargs``); None: create through the SDK."""
        return None

    def run(self, spec: RunSpec) -> ContainerInfo:
        kwargs = self.create_kwargs(spec)
        body = self.create_body(kwargs) if self.api is not None else None
        if body is not None:
            container_id = self._create_and_start(spec, body)
        else:
            container_id = self._sdk_create_and_start(spec, kwargs)
        info = self.inspect(container_id)
        if info is None:
            raise EngineError(f"container {spec.name} vanished right after it started")
        return info

    def _create_and_start(self, spec: RunSpec, body: dict[str, Any]) -> str:
        """Create and start over :attr:`api`, with the SDK path's errors: 404 (no such
        image) is ImageError, a failed start removes the container."""
        assert self.api is not None
        try:
            created = self.api.call("POST", "/containers/create", body=body).json()
        except ApiError as exc:
            if exc.status == 404:
                raise ImageError(f"image {spec.image} not found in {self.name}") from exc
            raise self._error(f"creating container {spec.name}", exc) from exc
        container_id = str(created["Id"])
        try:
            self.api.call("POST", f"/containers/{quote(container_id, safe='')}/start")
        except ApiError as exc:
            self._force_remove(container_id)
            raise self._error(f"starting container {spec.name}", exc) from exc
        except BaseException:
            self._force_remove(container_id)
            raise
        return container_id

    def _sdk_create_and_start(self, spec: RunSpec, kwargs: dict[str, Any]) -> str:
        try:
            container = self.client.containers.create(**kwargs)
        except self.not_found as exc:
            raise ImageError(f"image {spec.image} not found in {self.name}") from exc
        except self.api_error as exc:
            raise self._error(f"creating container {spec.name}", exc) from exc
        try:
            container.start()
        except self.api_error as exc:
            self._force_remove(container.id)
            raise self._error(f"starting container {spec.name}", exc) from exc
        except BaseException:
            self._force_remove(container.id)
            raise
        return str(container.id)

    def inspect(self, name_or_id: str) -> ContainerInfo | None:
        if self.api is not None:
            try:
                attrs = self.api.inspect_container(name_or_id)
            except ApiError as exc:
                raise self._error(f"inspecting {name_or_id}", exc) from exc
            return None if attrs is None else self._info(attrs)
        try:
            container = self.client.containers.get(name_or_id)
        except self.not_found:
            return None
        except self.api_error as exc:
            raise self._error(f"inspecting {name_or_id}", exc) from exc
        return self._info(container.attrs)

    def stop(self, name_or_id: str, timeout_s: int = 10) -> None:
        if self.api is not None:
            try:
                self.api.stop(name_or_id, timeout_s)
            except ApiError as exc:
                raise self._error(f"stopping {name_or_id}", exc) from exc
            return
        try:
            self.client.containers.get(name_or_id).stop(timeout=timeout_s)
        except self.not_found:
            return
        except self.api_error as exc:
            raise self._error(f"stopping {name_or_id}", exc) from exc

    def remove(self, name_or_id: str) -> None:
        try:
            if self.api is not None:
                self.api.remove(name_or_id)
            else:
                self.client.containers.get(name_or_id).remove(force=True)
        except self.not_found:
            return
        except (ApiError, *self.api_error) as exc:  # type: ignore[misc]
            if "removal of container" in str(exc) and "already in progress" in str(exc):
                return
            raise self._error(f"removing {name_or_id}", exc) from exc

    def _force_remove(self, name_or_id: str) -> None:
        with contextlib.suppress(Exception):
            if self.api is not None:
                self.api.remove(name_or_id)
            else:
                self.client.containers.get(name_or_id).remove(force=True)

    def logs(
        self, name_or_id: str, *, follow: bool = False, tail: int | None = None
    ) -> Iterator[str]:
        if self.api is not None:
            try:
                raw = self.api.logs(name_or_id, follow=follow, tail=tail)
            except ApiError as exc:
                raise self._error(f"reading logs of {name_or_id}", exc) from exc
            if raw is not None:
                yield from _lines(raw, (OSError,))
            return
        try:
            container = self.client.containers.get(name_or_id)
            kwargs: dict[str, Any] = {
                "stream": True,
                "follow": follow,
                "stdout": True,
                "stderr": True,
            }
            if tail is not None:
                kwargs["tail"] = tail
            chunks = container.logs(**kwargs)
        except self.not_found:
            return
        except self.api_error as exc:
            raise self._error(f"reading logs of {name_or_id}", exc) from exc
        import requests
        import urllib3

        yield from _lines(chunks, (requests.RequestException, urllib3.exceptions.HTTPError,
                                   OSError))

    def list(self, labels: dict[str, str]) -> list[ContainerInfo]:
        try:
            if self.api is not None:
                ids = self.api.list_containers(labels)
            else:
                filters = self.label_filters(labels)
                ids = [c.id for c in self.client.containers.list(all=True, filters=filters)]
        except (ApiError, *self.api_error) as exc:  # type: ignore[misc]
            raise self._error("listing containers", exc) from exc
        infos = []
        for container_id in ids:
            info = self.inspect(container_id)
            if info is not None:
                infos.append(info)
        return infos

    def label_filters(self, labels: dict[str, str]) -> Any:
        return {"label": [f"{k}={v}" if v else k for k, v in labels.items()]}

    def _info(self, attrs: dict[str, Any]) -> ContainerInfo:
        state = attrs.get("State") or {}
        config = attrs.get("Config") or {}
        mounts = tuple(
            MountInfo(
                source=str(m.get("Source", "")),
                target=str(m.get("Destination", "")),
                read_only=not bool(m.get("RW", True)),
            )
            for m in attrs.get("Mounts") or []
        )
        exit_code = state.get("ExitCode")
        status = str(state.get("Status", "unknown")).lower()
        return ContainerInfo(
            id=str(attrs.get("Id", "")),
            name=str(attrs.get("Name", "")).lstrip("/"),
            image=str(config.get("Image", attrs.get("ImageName", ""))),
            state=status,
            exit_code=int(exit_code) if exit_code is not None else None,
            labels=dict(config.get("Labels") or {}),
            started_at=state.get("StartedAt"),
            mounts=mounts,
            engine=self.name,
        )

    def _error(self, action: str, exc: Exception) -> EngineError:
        text = _explain(exc)
        lowered = text.lower()
        if "address already in use" in lowered or "port is already allocated" in lowered:
            return PortInUseError(
                f"{self.name} could not publish the port while {action}: {text}",
                hint="choose another server.port in the profile or stop what uses it",
            )
        if "name" in lowered and "already in use" in lowered:
            # another container took the name between our check and the create (a race)
            return NameConflictError(
                f"{self.name} refused the name while {action}: {text}",
                hint="another container holds that name; llmdeploy leaves it alone: "
                "choose another --deployment NAME",
            )
        return EngineError(f"{self.name} failed {action}: {text}")

    def close(self) -> None:
        if self.api is not None:
            self.api.close()
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()


E = TypeVar("E", bound=LlmdeployError)


def _lines(chunks: Iterator[Any], stream_closed: tuple[type[BaseException], ...]) -> Iterator[str]:
    """Log lines from byte chunks (a line may span chunks; ``\r\n`` ends one too); the
    engine closing a followed stream (container removed, service stopped) ends them."""
    buffer = ""
    try:
        for chunk in chunks:
            text = chunk.decode("utf-8", "replace") if isinstance(chunk, bytes) else str(chunk)
            buffer += text
            *lines, buffer = buffer.split("\n")
            yield from (line.rstrip("\r") for line in lines)
    except stream_closed:
        pass
    finally:
        close = getattr(chunks, "close", None)
        if callable(close):
            close()
    if buffer:
        yield buffer.rstrip("\r")


def _with_hint(error: E, hint: str) -> E:
    """``error`` with ``hint`` after the classification's own, if any."""
    error.hint = f"{error.hint}; or {hint}" if error.hint else hint
    return error


def _explain(exc: Exception) -> str:
    explanation = getattr(exc, "explanation", None)
    if explanation:
        return str(explanation)
    return str(exc)


def _pull_problem(result: Any) -> str | None:
    text = str(result)
    if isinstance(result, dict | list):
        import json

        text = json.dumps(result)[:300]
    if not text or text.startswith("<Image"):
        return None
    return text


def split_tag(ref: str) -> tuple[str, str]:
    last = ref.rsplit("/", 1)[-1]
    if "@" in ref:
        return ref, ""
    if ":" in last:
        repository, tag = ref.rsplit(":", 1)
        return repository, tag
    return ref, "latest"
