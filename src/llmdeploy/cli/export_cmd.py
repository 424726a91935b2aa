"""`llmdeploy export kube | quadlet | compose`: the deployment for an orchestrator."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from llmdeploy.cli.options import DeploymentOpt, JsonOpt, ProfileFileOpt, ProfileOpt

if TYPE_CHECKING:
    from llmdeploy.deploy.export import ExportRequest

app = typer.Typer(
    help="Export a profile's deployment to Kubernetes, podman kube play, Quadlet or compose.",
    no_args_is_help=True,
)
OutOpt = typer.Option(None, "--out", "-o", help="Write the files into this directory.")
StdoutOpt = typer.Option(False, "--stdout", help="Print the files instead of writing them.")


@app.command("kube")
def kube(
    profile: str | None = ProfileOpt,
    profile_file: Path | None = ProfileFileOpt,
    deployment: str | None = DeploymentOpt,
    out: Path | None = OutOpt,
    stdout: bool = StdoutOpt,
    dialect: str = typer.Option(
        "kubernetes", "--dialect", help="kubernetes (manifests + kustomization) or podman "
        "(one file for `podman kube play`)."
    ),
    replicas: str | None = typer.Option(
        None, "--replicas", help="MIN:MAX replicas (overrides the profile's scale), e.g. 2:8."
    ),
    from_bench: Path | None = typer.Option(
        None, "--from-bench", help="A `llmdeploy bench --output` report: its sweep sets the "
        "autoscaling target per replica."
    ),
    check: bool = typer.Option(
        False, "--check", help="Validate the manifests (schemas, kustomize); write nothing."
    ),
    kube_version: list[str] | None = typer.Option(
        None, "--kube-version", help="Kubernetes version(s) to validate against (repeat)."
    ),
    manifests: Path | None = typer.Argument(
        None, metavar="[MANIFESTS]", help="With --check: a folder (or file) of manifests, e.g. "
        "hand-edited ones, to validate instead of a profile's.", show_default=False,
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Kubernetes manifests (Deployment, Service, autoscaling, monitoring) + kustomization."""
    from llmdeploy.errors import UsageError

    if dialect not in ("kubernetes", "podman"):
        raise UsageError(f"--dialect {dialect!r}: use kubernetes or podman")
    if manifests is not None:
        if not check:
            raise UsageError(
                f"{manifests}: a manifests folder is only read by --check",
                hint=f"llmdeploy export kube --check {manifests}",
            )
        if profile or profile_file or replicas or from_bench or out or stdout:
            raise UsageError(
                "--check MANIFESTS validates files as they are: drop --profile, "
                "--profile-file, --replicas, --from-bench, --out and --stdout"
            )
        from llmdeploy.deploy.kube_check import check_manifests, read_manifests

        found, folder = read_manifests(manifests)
        result = check_manifests(found, versions=tuple(kube_version or ()), folder=folder)
        _print_check(result, as_json)
        return
    request = _request(
        "kube", profile, profile_file, deployment, dialect=dialect, replicas=replicas,
        from_bench=from_bench,
    )
    from llmdeploy.deploy.export import export_files

    files = export_files(request)
    _say_if_route_left_out(request)
    if check:
        from llmdeploy.deploy.kube_check import check_manifests

        result = check_manifests(files, versions=tuple(kube_version or ()))
        _print_check(result, as_json)
        return
    _emit(files, out, stdout, as_json)


@app.command("quadlet")
def quadlet(
    profile: str | None = ProfileOpt,
    profile_file: Path | None = ProfileFileOpt,
    deployment: str | None = DeploymentOpt,
    out: Path | None = OutOpt,
    stdout: bool = StdoutOpt,
    as_json: bool = JsonOpt,
) -> None:
    """systemd units for Podman (Quadlet, Podman >= 4.4): .container and .volume."""
    from llmdeploy.deploy.export import export_files

    request = _request("quadlet", profile, profile_file, deployment)
    files = export_files(request)
    _say_if_route_left_out(request)
    _emit(files, out, stdout, as_json)


@app.command("compose")
def compose(
    profile: str | None = ProfileOpt,
    profile_file: Path | None = ProfileFileOpt,
    deployment: str | None = DeploymentOpt,
    out: Path | None = OutOpt,
    stdout: bool = StdoutOpt,
    as_json: bool = JsonOpt,
) -> None:
    """A compose file for `docker compose` / `docker-compose` / `podman-compose`."""
    from llmdeploy.deploy.export import export_files

    files = export_files(_request("compose", profile, profile_file, deployment))
    _emit(files, out, stdout, as_json)


def _say_if_route_left_out(request: ExportRequest) -> None:
    from llmdeploy.deploy.export import route_left_out

    note = route_left_out(request)
    if note is not None:
        from llmdeploy.cli.console import warn

        warn(note)


def _request(  # type: ignore[no-untyped-def]
    target: str,
    profile: str | None,
    profile_file: Path | None,
    deployment: str | None,
    *,
    dialect: str = "kubernetes",
    replicas: str | None = None,
    from_bench: Path | None = None,
):
    from llmdeploy.cli.options import resolve_profile
    from llmdeploy.deploy.export import ExportRequest, parse_replicas

    resolved = resolve_profile(profile, profile_file)
    return ExportRequest(
        profile=resolved.profile,
        target=target,  # type: ignore[arg-type]
        base_dir=resolved.base_dir,
        deployment=deployment,
        dialect=dialect,  # type: ignore[arg-type]
        replicas=parse_replicas(replicas) if replicas else None,
        from_bench=from_bench,
    )


def _emit(files, out: Path | None, stdout: bool, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    from llmdeploy.cli.console import out as console
    from llmdeploy.cli.console import print_json
    from llmdeploy.deploy.export import as_stream, write_export
    from llmdeploy.errors import UsageError

    if stdout == (out is not None):
        raise UsageError("give --out DIR or --stdout (one of them)")
    if stdout:
        import sys

        sys.stdout.write(as_stream(files))
        return
    assert out is not None
    write_export(out, files)
    if as_json:
        print_json({"out": str(out), "files": [f.path for f in files]})
        return
    for item in files:
        console().print(f"wrote {out / item.path}", markup=False, highlight=False)


def _print_check(result, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Print the validation result; a failed check is an error (exit 3) naming each object."""
    from llmdeploy.cli.console import out, print_json

    if as_json:
        print_json(result.to_dict())
    else:
        for line in result.lines():
            out().print(line, markup=False, highlight=False, soft_wrap=True)
    result.raise_if_failed()
