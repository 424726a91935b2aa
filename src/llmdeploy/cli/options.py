"""Options shared by several commands (Typer objects only; no domain imports)."""

from __future__ import annotations

from pathlib import Path

import typer

ProfileOpt = typer.Option(
    None, "--profile", "-p", help="Profile name (see `llmdeploy profiles list`)."
)
ProfileFileOpt = typer.Option(
    None,
    "--profile-file",
    "-f",
    help="Read the profile from this YAML file.",
    exists=False,  # the loader says what is wrong with the path (exit 3, like a bad file)
)
JsonOpt = typer.Option(False, "--json", help="Machine-readable JSON on stdout.")
EngineOpt = typer.Option(
    None, "--engine", "-e", help="Override the profile's engine: podman, docker or auto."
)
DeploymentOpt = typer.Option(
    None, "--deployment", "-d", help="Deployment name (default: the profile's name)."
)


def resolve_profile(profile: str | None, profile_file: Path | None):  # type: ignore[no-untyped-def]
    from llmdeploy.profiles.loader import resolve

    return resolve(profile, profile_file=profile_file)
