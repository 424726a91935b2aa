"""`llmdeploy up | down | status | logs`: thin wrappers over llmdeploy.deploy."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from llmdeploy.cli.progress import RichReporter
    from llmdeploy.deploy.up import UpResult
    from llmdeploy.engines.selection import EngineChoice, Reachable

from llmdeploy.cli.options import (
    CredsEnvOpt,
    DeploymentOpt,
    EngineOpt,
    JsonOpt,
    ProfileFileOpt,
    ProfileOpt,
    TlsVerifyOpt,
)
from llmdeploy.errors import DeploymentNotFoundError


def up(
    profile: str | None = ProfileOpt,
    profile_file: Path | None = ProfileFileOpt,
    engine: str | None = EngineOpt,
    deployment: str | None = DeploymentOpt,
    pull: str = typer.Option("missing", "--pull", help="missing | always | never"),
    build: bool = typer.Option(False, "--build", help="Rebuild the local image first."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the equivalent engine commands; start nothing."
    ),
    keep_on_failure: bool = typer.Option(
        False, "--keep-on-failure", help="Leave a failed container for inspection."
    ),
    ignore_fit: bool = typer.Option(
        False, "--ignore-fit", help="Start even when the memory planner says it cannot."
    ),
    warm_up: bool = typer.Option(
        False,
        "--warm-up",
        help="Once healthy, send a one-token chat request and report its time to first token.",
    ),
    tls_verify: str = TlsVerifyOpt,
    creds_env: str | None = CredsEnvOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Start a deployment: model in the store, image ready, container healthy."""
    from llmdeploy.cli.options import parse_tls_verify, resolve_profile
    from llmdeploy.engines.selection import choose_engine
    from llmdeploy.errors import UsageError

    if pull not in ("missing", "always", "never"):
        raise UsageError(f"--pull {pull!r}: use missing, always or never")
    verify = parse_tls_verify(tls_verify)
    resolved = resolve_profile(profile, profile_file)
    chosen = choose_engine(engine, resolved.profile.engine)
    if dry_run:
        from llmdeploy.cli.console import write
        from llmdeploy.deploy.up import dry_run_commands

        write(
            dry_run_commands(
                resolved.profile, chosen, base_dir=resolved.base_dir, deployment=deployment
            )
        )
        return
    from llmdeploy.cli.progress import RichReporter
    from llmdeploy.deploy.up import UpRequest
    from llmdeploy.deploy.up import up as do_up
    from llmdeploy.engines.registry_auth import registry_access

    registry = registry_access(
        resolved.profile.image, chosen.requested, tls_verify=verify, creds_env=creds_env
    )
    request = UpRequest(
        profile=resolved.profile,
        engine=chosen,
        base_dir=resolved.base_dir,
        deployment=deployment,
        pull=pull,  # type: ignore[arg-type]  # checked above
        force_build=build,
        keep_on_failure=keep_on_failure,
        ignore_fit=ignore_fit,
        registry=registry,
        warm_up=warm_up,
    )
    reporter = RichReporter(enabled=not as_json)
    result = do_up(request, reporter)
    _print_up(result, reporter, as_json)


def _print_up(result: UpResult, reporter: RichReporter, as_json: bool) -> None:
    from llmdeploy.cli.console import out, print_json

    plan = result.plan
    base = plan.api_base_url
    model = plan.launch.served_model
    if as_json:
        print_json(
            {
                "deployment": plan.deployment,
                "engine": result.engine,
                "container": result.container.name,
                "image": result.container.image,
                "image_source": result.image.source if result.image else "running",
                "endpoint": plan.endpoint,
                "api_base_url": base,
                "model": model,
                "unchanged": result.unchanged,
                "replaced": result.replaced,
                "elapsed_s": round(result.elapsed_s, 3),
                "health_s": round(result.health.elapsed_s, 3) if result.health else None,
                "kv_cache": result.kv_cache.to_dict() if result.kv_cache else None,
                "time_to_ready": result.ready.to_dict(),
                "phases": [record.to_dict() for record in reporter.records],
            }
        )
        return
    console = out()
    if result.unchanged:
        console.print(
            f"[green]●[/green] {plan.deployment} is already running with this profile; "
            "nothing to do."
        )
    else:
        console.print(
            f"[green]●[/green] {plan.deployment} is healthy on {result.engine} "
            f"after {result.elapsed_s:.1f} s"
        )
    console.print(f"  endpoint  {base}")
    console.print(f"  model     {model}")
    if not result.unchanged:
        console.print(f"  ready in  {result.ready.summary()}", markup=False, highlight=False)
    kv = result.kv_cache
    if kv is not None:
        style = "yellow" if kv.differs else None
        console.print(f"  kv cache  {kv.summary()}", style=style, markup=False, highlight=False)
        for note in kv.notes if kv.differs or kv.actual_value is None else ():
            console.print(f"            {note}", style="dim", markup=False, highlight=False)
    console.print("  try it:", style="dim")
    console.print(
        f"  curl -s {base}/chat/completions -H 'Content-Type: application/json' "
        f'-d \'{{"model": "{model}", "messages": [{{"role": "user", "content": '
        '"Hello!"}]}\'',
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f'  llmdeploy chat --deployment {plan.deployment} "Hello!"', style="dim", markup=False
    )


def down(
    name: str | None = typer.Argument(None, help="Deployment name"),
    profile: str | None = ProfileOpt,
    profile_file: Path | None = ProfileFileOpt,
    engine: str | None = EngineOpt,
    timeout_s: int = typer.Option(
        10, "--timeout", min=0, help="Seconds to wait for a clean stop."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Stop and remove a deployment (doing nothing when it is absent).

    Without a name or profile: the one deployment there is (an error when there are several).
    Only containers labelled as that deployment's are touched.
    """
    from llmdeploy.cli.console import out, print_json
    from llmdeploy.deploy.lifecycle import down as do_down

    deployment, reach = _target(name, profile, profile_file, engine)
    removed = []
    try:
        for eng in reach.engines:
            removed += [(eng.name, c) for c in do_down(eng, deployment, timeout_s=timeout_s)]
    finally:
        reach.close()
    from llmdeploy.deploy.route_files import forget_cached_config

    for _, container in removed:  # a router's configuration folder under the cache goes too
        forget_cached_config(container)
    if not removed and reach.unreachable:
        from llmdeploy.errors import EngineUnavailableError

        raise EngineUnavailableError(
            f"{deployment}: nothing was removed, but it may still run where llmdeploy could "
            "not look: " + "; ".join(reach.warnings()),
            hint="fix that engine's connection (or pass --engine), then run down again",
        )
    if as_json:
        print_json(
            {
                "deployment": deployment,
                "removed": [{"engine": e, "container": c.name, "id": c.id} for e, c in removed],
            }
        )
        return
    if not removed:
        out().print(f"{deployment}: nothing to remove")
    for eng_name, container in removed:
        out().print(f"[green]removed[/green] {container.name} ({eng_name})")


def _target(
    name: str | None, profile: str | None, profile_file: Path | None, engine: str | None
) -> tuple[str, Reachable]:
    """Deployment name and the engines to look in for down/logs (warning about the others)."""
    from llmdeploy.engines.selection import choose_engine

    profile_engine = None
    if name is None and (profile is not None or profile_file is not None):
        from llmdeploy.cli.options import resolve_profile

        resolved = resolve_profile(profile, profile_file)
        name = resolved.profile.name
        profile_engine = resolved.profile.engine
    reach = _engines(choose_engine(engine, profile_engine))
    if name is None:
        from llmdeploy.constants import LABEL_DEPLOYMENT
        from llmdeploy.deploy.discovery import find_in, pick_one

        try:
            _, container = pick_one(find_in(reach.engines, running_only=False), "")
        except DeploymentNotFoundError as exc:
            reach.close()
            raise _with_unreachable(exc, reach) from None
        return container.labels.get(LABEL_DEPLOYMENT, container.name), reach
    return name, reach


def _engines(choice: EngineChoice) -> Reachable:
    """The engines a cross-engine command looks in; those it cannot reach are warned about."""
    from llmdeploy.cli.console import warn
    from llmdeploy.engines.selection import reachable_engines

    found = reachable_engines(choice)
    for line in found.warnings():
        warn(line)
    return found


def _with_unreachable(exc: DeploymentNotFoundError, reach: Reachable) -> DeploymentNotFoundError:
    if reach.unreachable:
        exc.message += " (not looked in: " + "; ".join(reach.warnings()) + ")"
    return exc


def status(
    name: str | None = typer.Argument(None, help="Only this deployment"),
    engine: str | None = EngineOpt,
    as_json: bool = JsonOpt,
) -> None:
    """List deployments: endpoint, health, uptime, image, model."""
    from llmdeploy.cli.console import out, print_json, write
    from llmdeploy.deploy.status import status as do_status
    from llmdeploy.engines.selection import choose_engine

    reach = _engines(choose_engine(engine))
    try:
        rows = do_status(reach.engines, name)
    finally:
        reach.close()
    if name is not None and not rows:
        # a name that matches nothing is a mistake to say, as `chat -d`/`logs` say it (exit 6)
        raise _with_unreachable(
            DeploymentNotFoundError(
                f"no deployment named {name!r}",
                hint="`llmdeploy status` lists every deployment",
            ),
            reach,
        )
    data: list[dict[str, Any]] = [row.to_dict() for row in rows]
    if as_json:
        print_json(data)
        return
    if not data:
        write("no deployments (start one with `llmdeploy up --profile NAME`)\n")
        return
    from rich.table import Table

    table = Table()
    for column in (
        "deployment",
        "engine",
        "state",
        "health",
        "endpoint",
        "uptime",
        "image",
        "model",
        "kv cache (server / plan)",
    ):
        table.add_column(column, overflow="fold")
    for row in data:
        health = {True: "[green]healthy[/green]", False: f"[red]{row['health']}[/red]", None: "-"}[
            row["healthy"]
        ]
        table.add_row(
            row["deployment"],
            row["engine"],
            row["state"],
            health,
            row["api_base_url"] or row["endpoint"] or "-",
            _human(row["uptime_s"]),
            row["image"],
            row["served_model"] or row["model"] or "-",
            _kv_cell(row["kv_cache"]),
        )
    out().print(table)
    from llmdeploy.cli.console import warn

    for status_row in rows:  # where each running deployment's cold start went
        if status_row.ready is not None and status_row.container.running:
            out().print(
                f"{status_row.deployment}: ready in {status_row.ready.summary()}",
                style="dim",
                markup=False,
                highlight=False,
            )
    for row in data:
        if row["kv_cache"] and row["kv_cache"]["differs"]:
            warn(f"{row['deployment']}: KV cache {row['kv_cache']['summary']}")


def _kv_cell(kv: dict[str, Any] | None) -> str:
    """``45.0 MiB / 45.0 MiB (+0.0%)``; ``!`` in front when off by more than the tolerance."""
    if kv is None:
        return "-"
    from llmdeploy.core.sizes import format_bytes

    unit = kv["compared"]

    def shown(value: int | None) -> str:
        if value is None:
            return "?"
        return f"{value:,} tok" if unit == "tokens" else format_bytes(value)

    cell = f"{shown(kv['actual'])} / {shown(kv['planned'])}"
    if kv["difference"] is not None:
        cell += f" ({kv['difference']:+.1%})"
    if kv["differs"]:
        cell = f"[yellow]! {cell}[/yellow]"
    return cell


def _human(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{sec:02d}s"


def logs(
    name: str | None = typer.Argument(None, help="Deployment name"),
    profile: str | None = ProfileOpt,
    engine: str | None = EngineOpt,
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines."),
    tail: int | None = typer.Option(None, "--tail", "-n", min=0, help="Only the last N lines."),
) -> None:
    """Print a deployment's server log."""
    import sys

    from llmdeploy.deploy.discovery import describe_filter, find_in, pick_one

    deployment, reach = _target(name, profile, None, engine)
    try:
        eng, container = pick_one(
            find_in(reach.engines, name=deployment, running_only=False),
            describe_filter(deployment, None, None),
        )
        for line in eng.logs(container.id, follow=follow, tail=tail):
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
    except DeploymentNotFoundError as exc:
        raise _with_unreachable(exc, reach) from None
    except KeyboardInterrupt:
        pass
    finally:
        reach.close()
