"""The profile schema: what a deployment is, validated strictly (unknown keys are errors).

A profile names an engine, an inference backend (a discriminated union on ``backend.kind``),
a model reference, a target accelerator, an image and/or a build recipe, and the container's
network, environment, resource, health and security settings.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llmdeploy.constants import DEFAULT_HOST
from llmdeploy.core.model_ref import ModelRef
from llmdeploy.core.names import NAME_RULE, is_env_name, is_name
from llmdeploy.profiles import rules
from llmdeploy.profiles.addresses import host_address
from llmdeploy.profiles.backend_options import (
    BackendSpec,
    LlamaCppBackend,
    OllamaBackend,
    VllmBackend,
)
from llmdeploy.profiles.fallback import FallbackSpec
from llmdeploy.profiles.targets import KubernetesSpec, ProbeSpec, ScaleSpec

EngineName = Literal["podman", "docker", "auto"]
Accelerator = Literal["cpu", "cuda", "rocm", "xpu"]

_SIZE_RE = re.compile(r"^\d+(\.\d+)?\s*([kKmMgGtT]i?[bB]?|[bB])?$")


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSource(StrictModel):
    """Where the weights come from and the name the server announces."""

    ref: ModelRef = Field(
        description="Model reference: file:///abs/path.gguf, pkg://python_package/file.gguf, "
        "hf://org/repo[@revision][/file.gguf], https://host/file.gguf#sha256=HEX, "
        "ollama://name:tag, oci://registry/repo:tag (a ModelPack OCI artifact); parsed and "
        "validated when the profile is loaded"
    )
    name: str | None = Field(
        default=None,
        description="Served model name (alias); default: the file's name without .gguf, a "
        "folder's name, a Hub repository's id (org/repo), or an Ollama model's name:tag",
    )
    convert: Literal["hf"] | None = Field(
        default=None,
        description="Derive another format before serving: 'hf' dequantizes a GGUF into a "
        "Hugging Face folder (bfloat16) for vLLM (needs torch and transformers on the host)",
    )
    tls_verify: bool = Field(
        default=True,
        description="oci:// only: false lets `up` pull the model from a plain-HTTP registry "
        "(or one whose certificate cannot be verified), like `--tls-verify=false`",
    )
    creds_env: str | None = Field(
        default=None,
        description="oci:// only: the name of an environment variable holding the registry's "
        "credentials as user:token (never the value itself); default: the engines' auth "
        "files (containers auth.json, ~/.docker/config.json)",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or any(c.isspace() for c in value)):
            raise ValueError("a served model name cannot be empty or contain whitespace")
        return value

    @field_validator("creds_env")
    @classmethod
    def _creds_env(cls, value: str | None) -> str | None:
        if value is not None and not is_env_name(value):
            raise ValueError(
                f"{value!r} is not an environment variable name (name the variable that "
                "holds user:token, never the credentials themselves)"
            )
        return value

    @model_validator(mode="after")
    def _registry_fields(self) -> ModelSource:
        if self.ref.scheme != "oci":
            for name, used in (("tls_verify", not self.tls_verify), ("creds_env", self.creds_env)):
                if used:
                    raise ValueError(
                        f"{name} applies to oci:// model references only (model.ref is "
                        f"{self.ref.scheme}://)"
                    )
        return self

    @property
    def served_name(self) -> str:
        """``name``, else the name the reference implies (see ModelRef.default_served_name)."""
        return self.name or self.ref.default_served_name


__all__ = ["BackendSpec", "LlamaCppBackend", "OllamaBackend", "Profile", "VllmBackend"]


class BuildSpec(StrictModel):
    """How to build the image when it is neither local nor pullable."""

    containerfile: str | None = Field(
        default=None,
        description="Path to a Containerfile (Jinja2 template) relative to the profile; "
        "default: the built-in template for the backend and accelerator",
    )
    base_image: str | None = Field(default=None, description="Base image (BASE_IMAGE build arg)")
    args: dict[str, str] = Field(default_factory=dict, description="Extra build args")
    tag: str | None = Field(default=None, description="Tag of the built image")


class ServerSettings(StrictModel):
    host: str = Field(
        default=DEFAULT_HOST,
        description="Host address the port is published on: IPv4, IPv6 ([::1] or ::1) or "
        "localhost (stored as 127.0.0.1); 0.0.0.0 / :: publish on every interface",
    )
    port: int = Field(default=8080, ge=1, le=65535, description="Host port")

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return host_address(value)


class ResourceLimits(StrictModel):
    cpus: float | None = Field(default=None, gt=0)
    memory: str | None = Field(default=None, description="Memory limit, e.g. 4g or 512MiB")
    shm_size: str | None = None
    pids_limit: int | None = Field(default=None, gt=0)
    ulimits: dict[str, str] = Field(default_factory=dict, description="e.g. {nofile: '4096:4096'}")

    @field_validator("memory", "shm_size")
    @classmethod
    def _size(cls, value: str | None) -> str | None:
        if value is not None and not _SIZE_RE.match(value.strip()):
            raise ValueError(f"not a size: {value!r} (use e.g. 512m, 4g, 2GiB)")
        return value

    @field_validator("ulimits")
    @classmethod
    def _ulimits(cls, value: dict[str, str]) -> dict[str, str]:
        for name, limit in value.items():
            if not re.match(r"^\d+(:\d+)?$", str(limit)):
                raise ValueError(f"ulimit {name}: {limit!r} is not SOFT[:HARD]")
        return value


class HealthCheck(StrictModel):
    path: str | None = Field(default=None, description="Health path; default from the backend")
    timeout_s: float = Field(default=180.0, gt=0, description="Give up after this long")
    interval_s: float = Field(default=0.1, gt=0, description="Time between polls")


class Security(StrictModel):
    cap_add: tuple[str, ...] = Field(
        default=(), description="Capabilities added back after --cap-drop=ALL"
    )
    no_new_privileges: bool = True
    read_only_rootfs: bool = False
    user: str | None = None
    selinux: Literal["disable", "confined"] = Field(
        default="disable",
        description="disable: --security-opt label=disable, so the container reads the "
        "read-only model mount on SELinux hosts without relabelling any file (no effect where "
        "SELinux is off); confined: keep the engine's SELinux confinement and relabel nothing "
        "(the model store must already carry a container label)",
    )


class Profile(StrictModel):
    """A complete, validated deployment profile (after ``extends`` and interpolation)."""

    name: str
    description: str = ""
    engine: EngineName = "auto"
    accelerator: Accelerator = Field(
        default="cpu", description="cpu, cuda (NVIDIA), rocm (AMD) or xpu (Intel)"
    )
    gpus: int | None = Field(
        default=None,
        ge=1,
        description="GPUs a replica uses (default 1 on a GPU accelerator; none on the CPU); "
        "vLLM's tensor_parallel_size may not exceed it",
    )
    backend: BackendSpec
    model: ModelSource
    image: str | None = Field(
        default=None,
        description="Prebuilt image reference; default: the backend's pinned upstream image for "
        "the accelerator (or the local build when a build: section is given)",
    )
    build: BuildSpec | None = None
    server: ServerSettings = Field(default_factory=ServerSettings)
    env: dict[str, str] = Field(default_factory=dict)
    secret_env: tuple[str, ...] = Field(
        default=(),
        description="Names of host environment variables passed to the container by name; "
        "their values are never rendered into files or printed",
    )
    resources: ResourceLimits = Field(default_factory=ResourceLimits)
    health: HealthCheck = Field(default_factory=HealthCheck)
    security: Security = Field(default_factory=Security)
    scale: ScaleSpec = Field(default_factory=ScaleSpec)
    probes: ProbeSpec = Field(default_factory=ProbeSpec)
    kubernetes: KubernetesSpec = Field(default_factory=KubernetesSpec)
    fallback: FallbackSpec | None = Field(
        default=None,
        description="Edge-first routing: a router (LiteLLM's proxy) sends requests here "
        "first and to this fallback on errors, timeouts, a full queue or a prompt longer than "
        "this deployment's context (`llmdeploy route`, and the exports)",
    )

    @property
    def gpu_count(self) -> int:
        """GPUs one replica uses: ``gpus``, else 1 on a GPU accelerator, 0 on the CPU."""
        if self.accelerator == "cpu":
            return 0
        return self.gpus or 1

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not is_name(value):
            raise ValueError(NAME_RULE)
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not is_env_name(key):
                raise ValueError(f"not an environment variable name: {key!r}")
        return value

    @field_validator("secret_env")
    @classmethod
    def _secret_env(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for key in value:
            if not is_env_name(key):
                raise ValueError(f"not an environment variable name: {key!r}")
        return value

    @model_validator(mode="after")
    def _secrets_apart(self) -> Profile:
        overlap = set(self.env) & set(self.secret_env)
        if overlap:
            raise ValueError(
                f"{sorted(overlap)} appear in both env and secret_env; keep secrets in secret_env"
            )
        return self

    @model_validator(mode="after")
    def _backend_rules(self) -> Profile:
        rules.check(self)  # each backend's rules for the accelerator, build and model
        return self
