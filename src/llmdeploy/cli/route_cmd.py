"""`llmdeploy route`: one OpenAI endpoint, the edge first and the cloud as its fallback."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from llmdeploy.cli.options import EngineOpt, JsonOpt, given

if TYPE_CHECKING:
    from llmdeploy.core.route import RouteSpec, RouteTarget
    from llmdeploy.deploy.route_run import RouteRunResult


# option -> RouteRequest setting, for RouteRequest.given (what the user set on the command line)
_SETTINGS = {
    "host": "host", "port": "port", "edge_timeout": "edge_timeout_s",
    "first_token_timeout": "first_token_timeout_s", "cloud_timeout": "cloud_timeout_s",
    "edge_max_parallel": "edge_max_parallel", "master_key_env": "master_key_env",
}


def route(
    ctx: typer.Context,
    edge: str | None = typer.Option(
        None, "--edge", help="The edge side: a profile name (tried first)."
    ),
    cloud: str | None = typer.Option(
        None, "--cloud", help="The cloud side: a profile name (the fallback; default: the "
        "edge profile's fallback: section, whose settings then apply unless given here)."
    ),
    edge_url: str | None = typer.Option(
        None, "--edge-url", help="The edge as an OpenAI-compatible base URL (…/v1)."
    ),
    edge_model: str | None = typer.Option(None, "--edge-model", help="Model served at --edge-url."),
    edge_context: int | None = typer.Option(
        None, "--edge-context", min=1, help="Most prompt tokens --edge-url takes."
    ),
    edge_api_key_env: str | None = typer.Option(
        None, "--edge-api-key-env", help="Variable holding --edge-url's bearer token."
    ),
    cloud_url: str | None = typer.Option(
        None, "--cloud-url", help="The cloud as an OpenAI-compatible base URL (…/v1)."
    ),
    cloud_model: str | None = typer.Option(
        None, "--cloud-model", help="Model served at --cloud-url."
    ),
    cloud_api_key_env: str | None = typer.Option(
        None, "--cloud-api-key-env", help="Variable holding --cloud-url's bearer token."
    ),
    name: str | None = typer.Option(
        None, "--name", help="The router's deployment name (default: EDGE-route)."
    ),
    model_name: str | None = typer.Option(
        None, "--model-name", help="Model name clients send (default: the edge's)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address the router listens on."),
    port: int = typer.Option(4000, "--port", min=1, max=65535, help="The router's port."),
    edge_timeout: float = typer.Option(
        60.0, "--edge-timeout", min=0.1, help="Seconds for the edge's whole answer."
    ),
    first_token_timeout: float = typer.Option(
        10.0, "--first-token-timeout", min=0.1,
        help="Streaming: seconds the edge may take for each chunk.",
    ),
    cloud_timeout: float = typer.Option(
        300.0, "--cloud-timeout", min=0.1, help="Seconds for the cloud's answer."
    ),
    edge_max_parallel: int | None = typer.Option(
        None, "--edge-max-parallel", min=1,
        help="Requests in flight at the edge before the next goes to the cloud "
        "(default: the edge profile's concurrency).",
    ),
    master_key_env: str = typer.Option(
        "LITELLM_MASTER_KEY", "--master-key-env",
        help="Variable holding the router's own key (clients' bearer token).",
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write config.yaml and README.txt into this folder."
    ),
    run: bool = typer.Option(
        False, "--run", help="Run the router as a container (status lists it; down removes it)."
    ),
    engine: str | None = EngineOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Route requests to an edge deployment first, falling back to a cloud one (LiteLLM)."""
    from llmdeploy.deploy.route import RouteRequest, TargetRequest, route_spec

    request = RouteRequest(
        edge=TargetRequest(profile=edge, url=edge_url, model=edge_model,
                           api_key_env=edge_api_key_env, context_tokens=edge_context),
        cloud=TargetRequest(profile=cloud, url=cloud_url, model=cloud_model,
                            api_key_env=cloud_api_key_env),
        name=name,
        public_model=model_name,
        host=host,
        port=port,
        edge_timeout_s=edge_timeout,
        first_token_timeout_s=first_token_timeout,
        cloud_timeout_s=cloud_timeout,
        edge_max_parallel=edge_max_parallel,
        master_key_env=master_key_env,
        given=frozenset(setting for option, setting in _SETTINGS.items() if given(ctx, option)),
    )
    spec = route_spec(request)
    from llmdeploy.cli.console import warn
    from llmdeploy.deploy.route import route_warnings

    for line in route_warnings(spec):
        warn(line)
    if spec.host not in ("127.0.0.1", "::1"):

        warn(
            f"the router listens on {spec.host}, not only this machine's loopback: anyone who "
            f"reaches it with ${spec.master_key_env} uses both deployments behind it"
        )
    if output is not None:
        from llmdeploy.deploy.export import write_export
        from llmdeploy.render.route_config import render_route

        write_export(output, render_route(spec))
    if not run:
        _print_config(spec, output, as_json)
        return
    from llmdeploy.cli.progress import RichReporter
    from llmdeploy.deploy.route_files import default_config_dir
    from llmdeploy.deploy.route_run import run_route
    from llmdeploy.engines.selection import choose_engine, open_engine

    # the router runs beside its edge deployment: --engine > $LLMDEPLOY_ENGINE > the edge
    # profile's engine > auto (the one precedence of choose_engine)
    chosen = choose_engine(engine, spec.edge.engine)
    config_dir = output if output is not None else default_config_dir(spec.name)
    reporter = RichReporter(enabled=not as_json)
    eng = open_engine(chosen)
    try:
        result = run_route(eng, spec, config_dir.resolve(), reporter)
    finally:
        eng.close()
    _print_run(result, as_json)


def _summary(spec: RouteSpec) -> dict[str, object]:
    def side(target: RouteTarget) -> dict[str, object]:
        return {
            "source": target.source,
            "api_base": target.api_base,
            "model": target.model,
            "context_tokens": target.context_tokens,
            "api_key_env": target.api_key_env,
            "timeout_s": target.timeout_s,
            "first_token_timeout_s": target.first_token_timeout_s,
            "max_parallel": target.max_parallel,
        }

    return {
        "route": spec.name,
        "api_base_url": spec.api_base_url,
        "model": spec.public_model,
        "cloud_model_group": spec.cloud_model_group,
        "master_key_env": spec.master_key_env,
        "edge": side(spec.edge),
        "cloud": side(spec.cloud),
    }


def _print_config(spec: RouteSpec, output: Path | None, as_json: bool) -> None:
    from llmdeploy.cli.console import out, print_json, write
    from llmdeploy.render.route_config import CONFIG_FILE, config_text

    if as_json:
        data = _summary(spec)
        data["config"] = str(output / CONFIG_FILE) if output else None
        print_json(data)
        return
    if output is None:
        write(config_text(spec))
        return
    console = out()
    for line in _lines(spec):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    console.print(f"  config    {output / CONFIG_FILE}", markup=False, highlight=False)
    console.print(f"  run it    llmdeploy route ... --run   (or see {output / 'README.txt'})",
                  markup=False, highlight=False)


def _lines(spec: RouteSpec) -> list[str]:
    edge, cloud = spec.edge, spec.cloud
    queue = f", {edge.max_parallel} in flight at most" if edge.max_parallel else ""
    return [
        f"route {spec.name}: {spec.api_base_url}  model {spec.public_model}",
        f"  edge      {edge.api_base} ({edge.source}, {edge.model}, "
        f"{edge.context_tokens} tokens of context{queue})",
        f"  fallback  {cloud.api_base} ({cloud.source}, {cloud.model})",
        f"  falls back on an edge error, {edge.timeout_s:g} s without an answer "
        f"({edge.first_token_timeout_s:g} s per streamed chunk), a full edge, or a longer prompt",
    ]


def _print_run(result: RouteRunResult, as_json: bool) -> None:
    from llmdeploy.cli.console import out, print_json

    spec = result.spec
    if as_json:
        data = _summary(spec)
        data.update(
            engine=result.engine,
            container=result.container.name,
            image=result.container.image,
            config=str(result.config_dir / "config.yaml"),
            unchanged=result.unchanged,
            replaced=result.replaced,
            elapsed_s=round(result.elapsed_s, 3),
            ready_s=round(result.health.elapsed_s, 3) if result.health else None,
        )
        print_json(data)
        return
    console = out()
    state = "already runs; nothing to do" if result.unchanged else (
        f"is ready on {result.engine} after {result.elapsed_s:.1f} s")
    console.print(f"[green]●[/green] router {spec.name} {state}")
    for line in _lines(spec):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    console.print(
        f"  try it:   curl -s {spec.api_base_url}/chat/completions -H \"Authorization: Bearer "
        f"${spec.master_key_env}\" -H 'Content-Type: application/json' -d '{{\"model\": "
        f"\"{spec.public_model}\", \"messages\": [{{\"role\": \"user\", \"content\": "
        "\"Hello!\"}]}'",
        markup=False, highlight=False, soft_wrap=True,
    )
    console.print(f"  stop it:  llmdeploy down {spec.name}", markup=False, highlight=False)
