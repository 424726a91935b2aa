"""`llmdeploy render`: write the Containerfile, run spec and equivalent commands; start nothing."""

from __future__ import annotations

from pathlib import Path

import typer

from llmdeploy.cli.options import DeploymentOpt, EngineOpt, JsonOpt, ProfileFileOpt, ProfileOpt


def render(
    profile: str | None = ProfileOpt,
    profile_file: Path | None = ProfileFileOpt,
    out_dir: Path = typer.Option(Path("build"), "--out", "-o", help="Output directory."),
    engine: str | None = EngineOpt,
    deployment: str | None = DeploymentOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Render the build context and run spec of a profile into a directory."""
    from llmdeploy.cli.console import out, print_json
    from llmdeploy.cli.options import resolve_profile
    from llmdeploy.deploy.images import write_files
    from llmdeploy.deploy.lifecycle import plan_without_fetching
    from llmdeploy.engines.selection import choose_engine, render_traits
    from llmdeploy.render.bundle import render_bundle

    resolved = resolve_profile(profile, profile_file)
    traits = render_traits(choose_engine(engine, resolved.profile.engine))
    plan = plan_without_fetching(resolved, deployment)
    files = render_bundle(plan, traits)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_files(out_dir, files)
    except OSError as exc:
        from llmdeploy.errors import RenderError

        raise RenderError(
            f"--out {out_dir}: cannot write the rendered files there: "
            f"{exc.strerror or exc} ({exc.filename or out_dir})",
            hint="choose a directory you can write to (it is created when missing)",
        ) from exc
    if as_json:
        print_json({"out": str(out_dir), "files": [f.path for f in files]})
        return
    for item in files:
        out().print(f"wrote {out_dir / item.path}")
