"""LiteLLM proxy configuration for a RouteSpec, built as data and dumped with PyYAML; the
recipe of the router's image. Pure: no file is written, no environment read.

Every key was checked against the pinned LiteLLM (core/route.py ``LITELLM_VERSION``) by
running it (docs/route.md, "Checked against LiteLLM"):

- ``model_list``: one entry per side. ``litellm_params``: ``model: openai/<served name>``
  (LiteLLM's OpenAI-compatible client; the part after ``openai/`` is sent upstream as the
  model), ``api_base``, ``api_key`` (``os.environ/VAR``: read by the proxy from its
  environment, never written here; a keyless server gets the placeholder ``none``, which
  OpenAI's client insists on), ``timeout`` (seconds, whole answer), ``stream_timeout``
  (seconds, each streamed chunk), ``max_parallel_requests`` (in flight; the next one is
  answered 429 by the router itself, which the fallback catches). ``model_info``: ``id``
  (``edge`` / ``cloud``: the ``x-litellm-model-id`` response header) and ``max_input_tokens``
  (the pre-call context check).
- ``router_settings``: ``fallbacks`` and ``context_window_fallbacks`` (edge group -> cloud
  group), ``enable_pre_call_checks`` (count the prompt's tokens against ``max_input_tokens``
  before sending), ``num_retries: 0`` (the fallback is the retry: a dead edge costs one
  refused connection, not three).
- ``general_settings.master_key``: ``os.environ/VAR`` (LiteLLM refuses to start without a key).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

import yaml

from llmdeploy.constants import CONTAINER_NAME_PREFIX
from llmdeploy.core.labels import DeploymentLabels
from llmdeploy.core.launch import BuildRecipe, RenderedFile, content_tag
from llmdeploy.core.route import (
    LITELLM_VERSION,
    ROUTER_CONFIG_DIR,
    ROUTER_CONFIG_FILE,
    ROUTER_KIND,
    ROUTER_LIVE_PATH,
    RouteSpec,
    RouteTarget,
)
from llmdeploy.core.run_spec import BindMount, RunSpec

CONFIG_FILE = ROUTER_CONFIG_FILE
README_FILE = "README.txt"
ROUTER_TEMPLATE = "litellm.Containerfile.j2"
# the folder under the wheelhouse root (scripts/make-litellm-wheelhouse.sh fills it)
ROUTER_WHEELHOUSE = "litellm"
ROUTER_REPOSITORY = "localhost/llmdeploy/litellm"
KEYLESS = "none"  # OpenAI's client needs some key; a server without auth ignores it
# the router's environment: its own logs say which deployment answered each request
# (LiteLLM Router INFO lines), and it never fetches the model price map from the internet
ROUTER_ENV = {"LITELLM_LOG": "INFO", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


def litellm_config(spec: RouteSpec) -> dict[str, Any]:
    """The proxy's configuration as data (the shape of LiteLLM's ``config.yaml``)."""
    edge_group, cloud_group = spec.public_model, spec.cloud_model_group
    return {
        "model_list": [
            _deployment(edge_group, spec.edge),
            _deployment(cloud_group, spec.cloud),
        ],
        "router_settings": {
            "num_retries": 0,
            "enable_pre_call_checks": True,
            "fallbacks": [{edge_group: [cloud_group]}],
            "context_window_fallbacks": [{edge_group: [cloud_group]}],
        },
        "general_settings": {"master_key": f"os.environ/{spec.master_key_env}"},
    }


def _deployment(group: str, target: RouteTarget) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": f"openai/{target.model}",
        "api_base": target.api_base,
        "api_key": f"os.environ/{target.api_key_env}" if target.api_key_env else KEYLESS,
        "timeout": target.timeout_s,
    }
    if target.first_token_timeout_s is not None:
        params["stream_timeout"] = target.first_token_timeout_s
    if target.max_parallel is not None:
        params["max_parallel_requests"] = target.max_parallel
    info: dict[str, Any] = {"id": target.role}
    if target.context_tokens is not None:
        info["max_input_tokens"] = target.context_tokens
    return {"model_name": group, "litellm_params": params, "model_info": info}


def config_text(spec: RouteSpec) -> str:
    """``config.yaml``: a header saying what it does, then the configuration."""
    body = yaml.safe_dump(litellm_config(spec), sort_keys=False, default_flow_style=False)
    header = "".join(f"# {line}".rstrip() + "\n" for line in _header(spec))
    return header + body


def _header(spec: RouteSpec) -> list[str]:
    edge, cloud = spec.edge, spec.cloud
    lines = [
        f"LiteLLM proxy {LITELLM_VERSION} configuration made by llmdeploy: route {spec.name!r}.",
        f"Model {spec.public_model!r}: the edge first ({edge.source}, {edge.api_base}),",
        f"then the cloud ({cloud.source}, {cloud.api_base}) when the edge errs, times out,",
        "has max_parallel_requests in flight, or the prompt exceeds its max_input_tokens.",
        f"Clients send `Authorization: Bearer ${spec.master_key_env}`; secrets are read",
        "from the environment (os.environ/NAME), never written here.",
    ]
    return lines


def render_route(spec: RouteSpec) -> list[RenderedFile]:
    """``config.yaml`` and a README saying how to run the router with it."""
    return [RenderedFile(CONFIG_FILE, config_text(spec)), RenderedFile(README_FILE, readme(spec))]


def readme(spec: RouteSpec) -> str:
    envs = " ".join(f"-e {name}" for name in spec.secret_envs)
    lines = [
        f"Route {spec.name}: one OpenAI endpoint, {spec.api_base_url}, model {spec.public_model}.",
        "",
        "Run it with llmdeploy (a container with llmdeploy's labels: `status` lists it,",
        f"`llmdeploy down {spec.name}` removes it):",
        f"  llmdeploy route --edge ... --cloud ... --port {spec.port} --run",
        "",
        f"Or with LiteLLM itself (pip install 'litellm[proxy]=={LITELLM_VERSION}'), here:",
        f"  litellm --config {CONFIG_FILE} --host {spec.host} --port {spec.port}",
        "",
        "Or in a container on the host's network (it reaches deployments on 127.0.0.1):",
        f"  podman run -d --network host -v $PWD:{ROUTER_CONFIG_DIR}:ro {envs} IMAGE \\",
        f"    --config {ROUTER_CONFIG_DIR}/{CONFIG_FILE} --host {spec.host} --port {spec.port}",
        "",
        "Secrets come from the environment, by name: "
        + ", ".join(spec.secret_envs) + ".",
        f"Liveness: {spec.endpoint}{ROUTER_LIVE_PATH}. Which side answered: the response",
        "headers x-litellm-model-id (edge | cloud) and x-litellm-model-api-base, and the",
        "router's log lines `litellm.acompletion(model=openai/NAME) 200 OK`.",
    ]
    return "\n".join(lines) + "\n"


def router_recipe(base_image: str, llmdeploy_version: str) -> BuildRecipe:
    """The router image's build: LiteLLM's proxy installed from the wheelhouse
    (``wheels/``, offline) on ``base_image`` (Debian bookworm with python3)."""
    variables = {
        "base_image": base_image,
        "litellm_version": LITELLM_VERSION,
        "llmdeploy_version": llmdeploy_version,
    }
    return BuildRecipe(
        template=ROUTER_TEMPLATE,
        context_files=(),
        default_tag=content_tag(
            ROUTER_REPOSITORY, f"{LITELLM_VERSION}-{llmdeploy_version}",
            template=ROUTER_TEMPLATE, context_files=(), variables=variables,
        ),
        variables=variables,
        wheelhouse=ROUTER_WHEELHOUSE,
    )


def router_run_spec(spec: RouteSpec, image: str, config_dir: str) -> RunSpec:
    """The container: LiteLLM on the host's network, bound to the route's address."""
    labels = DeploymentLabels(
        deployment=spec.name,
        profile=spec.edge.profile or "",
        model=f"{spec.edge.model} -> {spec.cloud.model}",
        served_model=spec.public_model,
        backend=ROUTER_KIND,
        accelerator="cpu",
        endpoint=spec.endpoint,
        health_path=ROUTER_LIVE_PATH,
        api="openai",
    )
    return RunSpec(
        name=f"{CONTAINER_NAME_PREFIX}{spec.name}",
        image=image,
        args=(
            "--config", f"{ROUTER_CONFIG_DIR}/{ROUTER_CONFIG_FILE}",
            "--host", spec.host,
            "--port", str(spec.port),
        ),
        env=dict(ROUTER_ENV),
        secret_env={name: name for name in spec.secret_envs},
        labels=labels.to_labels(),
        mounts=(BindMount(source=config_dir, target=ROUTER_CONFIG_DIR, read_only=True),),
        cap_drop=("ALL",),
        no_new_privileges=True,
        label_disable=True,  # read the mounted configuration on SELinux hosts
        network_mode="host",
    )


def with_spec_hash(run: RunSpec, config: str) -> RunSpec:
    """``run`` with the spec-hash label: the container and the configuration it reads."""
    blob = json.dumps({"run": run.as_record(), "config": config}, sort_keys=True, default=str)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:16]
    record = DeploymentLabels.from_labels(run.labels)
    assert record is not None
    return replace(run, labels=replace(record, spec_hash=digest).to_labels())
