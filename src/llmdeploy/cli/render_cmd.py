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
    from llmdeploy.deploy.up import render_into
    from llmdeploy.engines.selection import choose_engine

    resolved = resolve_profile(profile, profile_file)
    choice = choose_engine(engine, resolved.profile.engine)
    files = render_into(
        out_dir, resolved.profile, choice, base_dir=resolved.base_dir, deployment=deployment
    )
    if as_json:
        print_json({"out": str(out_dir), "files": [f.path for f in files]})
        return
    for item in files:
        out().print(f"wrote {out_dir / item.path}")
