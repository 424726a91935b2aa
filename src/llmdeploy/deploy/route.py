"""``route``: the RouteSpec of an edge and a cloud, read from profiles or given as URLs.

One source of truth: a profile side's endpoint and served model come from the plan ``up``
follows (``plan_without_fetching``), its context per request and its concurrency from the
planner's reading of the profile (``planner.spec.spec_from_profile``: llama.cpp's
``ctx_size / parallel``, vLLM's ``max_model_len``, Ollama's ``num_ctx``), its API key variable
from the backend options (vLLM's ``api_key_env``). A URL side says them on the command line.

Errors: ProfileError (no such profile; an edge whose context length is unknown), UsageError
(a URL side without its model; an edge URL without its context; a bad name or address).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from llmdeploy.core.api_url import api_url_problem, shown_url
from llmdeploy.core.names import NAME_RULE, is_env_name, is_name
from llmdeploy.core.route import (
    DEFAULT_MASTER_KEY_ENV,
    DEFAULT_ROUTER_PORT,
    Role,
    RouteSpec,
    RouteTarget,
)
from llmdeploy.errors import LlmdeployError, ProfileError, UsageError
from llmdeploy.profiles.schema import Profile

DEFAULT_EDGE_TIMEOUT_S = 60.0
DEFAULT_FIRST_TOKEN_TIMEOUT_S = 10.0
DEFAULT_CLOUD_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class TargetRequest:
    """One side as the user named it: a profile, or a URL with its model (and key variable,
    and for an edge its context in tokens)."""

    profile: str | None = None
    url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    context_tokens: int | None = None


@dataclass(frozen=True)
class RouteRequest:
    """What ``llmdeploy route`` is asked for (see the command's options)."""

    edge: TargetRequest
    cloud: TargetRequest
    name: str | None = None
    public_model: str | None = None
    host: str = "127.0.0.1"
    port: int = DEFAULT_ROUTER_PORT
    edge_timeout_s: float = DEFAULT_EDGE_TIMEOUT_S
    first_token_timeout_s: float = DEFAULT_FIRST_TOKEN_TIMEOUT_S
    cloud_timeout_s: float = DEFAULT_CLOUD_TIMEOUT_S
    edge_max_parallel: int | None = None
    master_key_env: str = DEFAULT_MASTER_KEY_ENV
    cwd: Path | None = None  # where ./profiles and ./llmdeploy.yaml are looked for
    # the settings above the user gave (the rest are defaults): with the cloud side not
    # named, an edge profile's fallback: section supplies the others (with_profile_fallback)
    given: frozenset[str] = frozenset()


def route_spec(request: RouteRequest) -> RouteSpec:
    """The RouteSpec ``request`` describes; raises ProfileError / UsageError (module doc)."""
    edge_profile = _side_profile("edge", request.edge, request)
    return _spec(with_profile_fallback(request, edge_profile), edge_profile)


def spec_from_fallback(profile: Profile, *, cwd: Path | None = None) -> RouteSpec:
    """The RouteSpec a profile's ``fallback:`` section declares (the profile is the edge):
    the route ``route --edge PROFILE`` makes (ProfileError without such a section)."""
    return _spec(request_from_fallback(profile, cwd=cwd), profile)


def _spec(request: RouteRequest, edge_profile: Profile | None) -> RouteSpec:
    """The RouteSpec of ``request`` whose edge profile, if it names one, is resolved."""
    from llmdeploy.profiles.addresses import host_address

    cloud_profile = _side_profile("cloud", request.cloud, request)
    edge = _target("edge", request.edge, request, edge_profile)
    cloud = _target("cloud", request.cloud, request, cloud_profile)
    if edge.context_tokens is None:
        raise _no_context(request.edge)
    try:
        host = host_address(request.host)
    except ValueError as exc:
        raise UsageError(f"--host: {exc}") from None
    name = request.name or (f"{request.edge.profile}-route" if request.edge.profile else "route")
    _check_name(name)
    for side in (edge, cloud):
        if side.profile is not None and name == side.profile:
            raise UsageError(
                f"the route's name {name!r} is its {side.role} deployment's own name: "
                "running it would take that deployment's place",
                hint=f"name the route otherwise: --name {name}-route",
            )
    master = request.master_key_env
    _check_env_name("--master-key-env", master)
    return RouteSpec(
        name=name,
        edge=edge,
        cloud=cloud,
        public_model=request.public_model or edge.model,
        host=host,
        port=request.port,
        master_key_env=master,
    )


def route_warnings(spec: RouteSpec) -> list[str]:
    """What makes ``spec`` a route that cannot do its job, said before it runs: both sides
    one server (a fallback to the server that failed), or a cloud whose context is no
    larger than the edge's (a prompt too long for the edge gets LiteLLM's 400 "no models
    have context window large enough" instead of an answer)."""
    found = []
    if spec.edge.api_base.rstrip("/") == spec.cloud.api_base.rstrip("/"):
        found.append(f"the edge and the cloud are one server ({spec.edge.api_base}): a "
                     "request the edge fails is sent to it again")
    edge_ctx, cloud_ctx = spec.edge.context_tokens, spec.cloud.context_tokens
    if edge_ctx is not None and cloud_ctx is not None and cloud_ctx <= edge_ctx:
        found.append(f"the cloud takes {cloud_ctx} prompt tokens, the edge {edge_ctx}: a "
                     "prompt too long for the edge has nowhere to go (LiteLLM answers 400)")
    return found


def with_profile_fallback(request: RouteRequest, edge_profile: Profile | None) -> RouteRequest:
    """``request`` with the cloud side and settings of the edge profile's ``fallback:``
    section when the cloud side is not named (``route --edge edge-fb`` makes the route the
    exports make); the settings in ``request.given`` stay the user's. Unchanged otherwise."""
    cloud = request.cloud
    if edge_profile is None or edge_profile.fallback is None:
        return request
    if cloud.profile is not None or cloud.url is not None:
        return request
    declared = request_from_fallback(edge_profile, cwd=request.cwd)
    return replace(
        declared,
        edge=request.edge,
        name=request.name,
        public_model=request.public_model,
        given=request.given,
        **{key: getattr(request, key) for key in request.given},
    )


def request_from_fallback(profile: Profile, *, cwd: Path | None = None) -> RouteRequest:
    """The RouteRequest a profile's ``fallback:`` section declares (the profile is the
    edge); ProfileError when it declares none."""
    fallback = profile.fallback
    if fallback is None:
        raise ProfileError(f"profile {profile.name!r} declares no fallback: section")
    return RouteRequest(
        edge=TargetRequest(profile=profile.name),
        cloud=TargetRequest(
            profile=fallback.profile,
            url=fallback.url,
            model=fallback.model,
            api_key_env=fallback.api_key_env,
            context_tokens=fallback.context_tokens,
        ),
        host=fallback.host,
        port=fallback.port,
        edge_timeout_s=fallback.timeout_s,
        first_token_timeout_s=fallback.first_token_timeout_s,
        cloud_timeout_s=fallback.cloud_timeout_s,
        edge_max_parallel=fallback.max_parallel,
        master_key_env=fallback.master_key_env,
        cwd=cwd,
    )


def _side_profile(role: Role, wanted: TargetRequest, request: RouteRequest) -> Profile | None:
    """The profile a side names, resolved (once per route), or None for a URL side; a
    UsageError for a side named twice or not at all, or with URL options beside a profile.
    The cloud side may be unnamed here when the edge profile declares it (fallback:)."""
    option = f"--{role}"
    if (wanted.profile is None) == (wanted.url is None):
        raise UsageError(
            f"name the {role} side once: {option} PROFILE or {option}-url URL "
            f"(with {option}-model NAME)"
        )
    if wanted.profile is None:
        return None
    for flag, value in (("model", wanted.model), ("api-key-env", wanted.api_key_env),
                        ("context", wanted.context_tokens)):
        if value is not None:
            raise UsageError(
                f"{option}-{flag} goes with {option}-url; profile {wanted.profile!r} "
                "already says it"
            )
    from llmdeploy.profiles.loader import resolve

    return resolve(wanted.profile, cwd=request.cwd).profile


def _target(
    role: Role, wanted: TargetRequest, request: RouteRequest, profile: Profile | None
) -> RouteTarget:
    """The side ``wanted`` names: read from ``profile`` (its resolved profile), else its URL."""
    if profile is not None:
        return profile_target(role, profile, request)
    return url_target(role, wanted, request)


def profile_target(role: Role, profile: Profile, request: RouteRequest) -> RouteTarget:
    """A side read from ``profile``: its planned endpoint, served model, context, key."""
    from llmdeploy.deploy.up import plan_without_fetching
    from llmdeploy.profiles.backend_options import VllmBackend

    plan = plan_without_fetching(profile)
    if plan.launch.api != "openai" and not plan.launch.api_base_path:
        raise ProfileError(f"profile {profile.name!r} serves no OpenAI-compatible API")
    context, sequences = _served_shape(profile)
    key = profile.backend.api_key_env if isinstance(profile.backend, VllmBackend) else None
    edge = role == "edge"
    return RouteTarget(
        role=role,
        api_base=plan.api_base_url,
        model=plan.launch.served_model,
        source=f"profile {profile.name}",
        context_tokens=context,
        api_key_env=key,
        timeout_s=request.edge_timeout_s if edge else request.cloud_timeout_s,
        first_token_timeout_s=request.first_token_timeout_s if edge else None,
        max_parallel=(request.edge_max_parallel or sequences) if edge else None,
        profile=profile.name,
        engine=profile.engine,
    )


def url_target(role: Role, wanted: TargetRequest, request: RouteRequest) -> RouteTarget:
    option = f"--{role}-url"
    assert wanted.url is not None
    problem = api_url_problem(wanted.url)
    if problem is not None:
        raise UsageError(f"{option} {shown_url(wanted.url)!r}: {problem}",
                         hint=f"give an http(s):// base URL, e.g. http://127.0.0.1:8000/v1; "
                         f"a key by name: --{role}-api-key-env VAR")
    if not wanted.model:
        raise UsageError(f"{option} needs --{role}-model NAME (the model served there)")
    if wanted.api_key_env is not None:
        _check_env_name(f"--{role}-api-key-env", wanted.api_key_env)
    edge = role == "edge"
    return RouteTarget(
        role=role,
        api_base=wanted.url.rstrip("/"),
        model=wanted.model,
        source=option,
        context_tokens=wanted.context_tokens,
        api_key_env=wanted.api_key_env,
        timeout_s=request.edge_timeout_s if edge else request.cloud_timeout_s,
        first_token_timeout_s=request.first_token_timeout_s if edge else None,
        max_parallel=request.edge_max_parallel if edge else None,
    )


def _served_shape(profile: Profile) -> tuple[int | None, int | None]:
    """(context tokens one request may use, requests served at once) by the planner's
    reading of the profile; (None, None) when the model's shape is needed and unknown."""
    from llmdeploy.planner.host import model_info_for_ref
    from llmdeploy.planner.spec import spec_from_profile

    try:
        info, _origin = model_info_for_ref(profile.model.ref)
        spec = spec_from_profile(profile, info)
    except LlmdeployError:
        return None, None
    return spec.context_per_sequence, spec.sequences


def _no_context(edge: TargetRequest) -> LlmdeployError:
    if edge.profile is not None:
        return ProfileError(
            f"profile {edge.profile!r}: the edge's context length is unknown, so a prompt "
            "longer than it cannot be sent to the fallback",
            hint="set it in the profile (vLLM: backend.max_model_len; llama.cpp: "
            "backend.ctx_size; Ollama: backend.num_ctx)",
        )
    return UsageError(
        "--edge-url needs --edge-context TOKENS (the most prompt tokens the edge takes), so a "
        "longer prompt goes to the fallback"
    )


def _check_name(name: str) -> None:
    if not is_name(name):
        raise UsageError(f"--name {name!r}: {NAME_RULE}")


def _check_env_name(option: str, name: str) -> None:
    if not is_env_name(name):
        raise UsageError(
            f"{option} {name!r}: give the NAME of an environment variable, never a key itself"
        )
