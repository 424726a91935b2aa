"""A profile's ``fallback:`` section: edge-first routing to a cloud deployment.

A profile that declares one is the edge; ``llmdeploy route --edge NAME`` and the exports
(``export compose``, ``export kube``) put LiteLLM's proxy in front of it, falling back to the
deployment named here (another profile) or to an OpenAI-compatible URL. Secrets by reference
only: ``api_key_env`` and ``master_key_env`` name environment variables.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llmdeploy.core.api_url import api_url_problem, shown_url
from llmdeploy.core.names import is_env_name, is_name
from llmdeploy.profiles.addresses import host_address


class FallbackSpec(BaseModel):
    """Where requests go when this profile's deployment (the edge) cannot take them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: str | None = Field(
        default=None,
        description="The cloud side as another profile's name: its endpoint, served model, "
        "context and API key variable come from that profile",
    )
    url: str | None = Field(
        default=None,
        description="The cloud side as an OpenAI-compatible base URL (http(s)://host[:port]/v1)",
    )
    model: str | None = Field(default=None, description="url only: the model name served there")
    api_key_env: str | None = Field(
        default=None,
        description="url only: the environment variable holding its bearer token (never the "
        "token itself)",
    )
    context_tokens: int | None = Field(
        default=None, gt=0, description="url only: the most prompt tokens it takes (informational)"
    )
    timeout_s: float = Field(
        default=60.0, gt=0, description="The edge's answer, whole (non-streaming), in seconds"
    )
    first_token_timeout_s: float = Field(
        default=10.0, gt=0, description="Streaming: the edge's wait for each chunk, in seconds"
    )
    cloud_timeout_s: float = Field(default=300.0, gt=0, description="The cloud's answer, seconds")
    max_parallel: int | None = Field(
        default=None,
        ge=1,
        description="Requests in flight at the edge before the next one goes to the cloud "
        "(default: the edge's own concurrency: parallel, max_num_seqs or num_parallel)",
    )
    host: str = Field(default="127.0.0.1", description="Address the router listens on")
    port: int = Field(default=4000, ge=1, le=65535, description="The router's port")
    master_key_env: str = Field(
        default="LITELLM_MASTER_KEY",
        description="The environment variable holding the router's own key (clients send it "
        "as their bearer token)",
    )

    @field_validator("api_key_env", "master_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not is_env_name(value):
            raise ValueError(
                f"{value!r} is not an environment variable name (name the variable that holds "
                "the key, never the key itself)"
            )
        return value

    @field_validator("profile")
    @classmethod
    def _profile(cls, value: str | None) -> str | None:
        if value is not None and not is_name(value):
            raise ValueError(f"{value!r} is not a profile name")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        problem = api_url_problem(value)
        if problem is not None:
            raise ValueError(f"{shown_url(value)!r}: {problem} (e.g. https://llm.example/v1; "
                             "a key by name: api_key_env)")
        return value.rstrip("/")

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return host_address(value)

    @model_validator(mode="after")
    def _one_target(self) -> FallbackSpec:
        if (self.profile is None) == (self.url is None):
            raise ValueError("give the cloud side as profile: NAME or as url: + model: (one)")
        if self.url is not None and not self.model:
            raise ValueError("url: needs model: (the model name served at that URL)")
        if self.profile is not None:
            for name in ("model", "api_key_env", "context_tokens"):
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"{name} applies to url: only; profile {self.profile!r} already says it"
                    )
        return self
