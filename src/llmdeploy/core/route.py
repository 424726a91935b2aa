"""Edge-first routing with a cloud fallback, as data: what ``llmdeploy route`` configures.

A :class:`RouteSpec` names two OpenAI-compatible targets, the edge (tried first) and the
cloud (the fallback), and where the router listens. The router is LiteLLM's proxy
(``render/route_config.py`` writes its configuration; ``docs/route.md`` says why LiteLLM);
this module knows nothing of its file format.

When a request falls back to the cloud (``docs/route.md``, "What triggers the fallback"):

- the edge answers an error other than a plain 400 (5xx, 429, 503, a refused or reset
  connection: the edge is down or overloaded);
- the edge takes longer than ``timeout_s`` (whole answer, non-streaming) or
  ``first_token_timeout_s`` (streaming: the wait for each chunk, the first one included);
- the edge already has ``max_parallel`` requests in flight through the router ("full
  queue": the router answers the extra request from the cloud at once instead of queueing it
  behind the edge's slots);
- the prompt is longer than the edge's context (``context_tokens``): counted by the router
  before sending, and, where its count is under the model's own, the edge's "exceeds the
  available context size" answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# LiteLLM's proxy, pinned: the newest release whose `proxy` extra installs from PyPI with all
# its pinned companions (litellm-proxy-extras, litellm-enterprise); 1.108.10 and later pin
# companion versions PyPI does not have, 1.109+ a `litellm-proxy` package it does not list
LITELLM_VERSION = "1.108.5"
ROUTER_KIND = "litellm"  # the backend label of a router's container
ROUTER_LIVE_PATH = "/health/liveliness"  # LiteLLM's liveness: the process serves HTTP
ROUTER_READY_PATH = "/health/readiness"  # LiteLLM's readiness: the router is configured
ROUTER_API_PATH = "/v1"
DEFAULT_ROUTER_PORT = 4000
DEFAULT_MASTER_KEY_ENV = "LITELLM_MASTER_KEY"  # LiteLLM's own name for its key
ROUTER_CONFIG_DIR = "/etc/litellm"  # where the container reads its configuration (read-only)
ROUTER_CONFIG_FILE = "config.yaml"

Role = Literal["edge", "cloud"]


@dataclass(frozen=True)
class RouteTarget:
    """One side of the route: an OpenAI-compatible API and the model it serves.

    ``api_base``: ``http://host:port/v1``; ``model``: the served model name sent upstream;
    ``context_tokens``: the most prompt tokens one request may carry (None: unknown, no
    context check); ``api_key_env``: the environment variable holding its bearer token
    (None: the server needs none); ``source``: where it came from, for messages
    (``profile edge-podman``, ``--cloud-url``); ``timeout_s``: the whole answer;
    ``first_token_timeout_s``: each streamed chunk; ``max_parallel``: requests in flight
    through the router before the next one goes elsewhere (None: no cap).
    """

    role: Role
    api_base: str
    model: str
    source: str
    context_tokens: int | None = None
    api_key_env: str | None = None
    timeout_s: float = 60.0
    first_token_timeout_s: float | None = None
    max_parallel: int | None = None
    profile: str | None = None  # the profile it was read from, if any
    engine: str | None = None  # that profile's engine: (route --run starts the router there)


@dataclass(frozen=True)
class RouteSpec:
    """A router in front of ``edge`` with ``cloud`` as its fallback.

    ``name``: the deployment name of the router's container; ``public_model``: the model
    name clients send (the edge group); the cloud group is ``public_model + "-cloud"``.
    ``master_key_env``: the variable holding the router's own key (clients send it as their
    bearer token; LiteLLM refuses to start without one).
    """

    name: str
    edge: RouteTarget
    cloud: RouteTarget
    public_model: str
    host: str = "127.0.0.1"
    port: int = DEFAULT_ROUTER_PORT
    master_key_env: str = DEFAULT_MASTER_KEY_ENV

    @property
    def cloud_model_group(self) -> str:
        return f"{self.public_model}-cloud"

    @property
    def endpoint(self) -> str:
        """``http://host:port`` where the router answers (0.0.0.0 shown as 127.0.0.1)."""
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{self.port}"

    @property
    def api_base_url(self) -> str:
        return self.endpoint + ROUTER_API_PATH

    @property
    def secret_envs(self) -> tuple[str, ...]:
        """Every environment variable the router reads a secret from, sorted, once each."""
        names = {self.master_key_env, self.edge.api_key_env, self.cloud.api_key_env}
        return tuple(sorted(name for name in names if name))
