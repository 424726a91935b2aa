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


def given(ctx: typer.Context, parameter: str) -> bool:
    """Whether the user set ``parameter`` (on the command line or through its environment
    variable), as opposed to it keeping its default."""
    source = ctx.get_parameter_source(parameter)
    return source is not None and source.name != "DEFAULT"


TlsVerifyOpt = typer.Option(
    "true",
    "--tls-verify",
    metavar="true|false",
    help="Require HTTPS with a verified certificate for registries; false allows plain HTTP "
    "(a local registry you trust), as `podman push --tls-verify=false`.",
)
CredsEnvOpt = typer.Option(
    None,
    "--creds-env",
    metavar="NAME",
    help="Registry credentials from the environment variable NAME holding USER:TOKEN "
    "(default: the engine's saved login, from podman login / docker login).",
)


def parse_tls_verify(value: str) -> bool:
    """``--tls-verify true|false`` (also 1/0, yes/no, on/off); UsageError otherwise."""
    from llmdeploy.errors import UsageError

    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise UsageError(f"--tls-verify {value!r}: use true or false")


def resolve_profile(profile: str | None, profile_file: Path | None):  # type: ignore[no-untyped-def]
    from llmdeploy.profiles.loader import resolve

    return resolve(profile, profile_file=profile_file)
