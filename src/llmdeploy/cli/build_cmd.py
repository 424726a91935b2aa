"""`llmdeploy build`: the profile's server image, labelled, optionally baked, multi-platform
and pushed (domain code: llmdeploy.build)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from llmdeploy.cli.options import (
    CredsEnvOpt,
    EngineOpt,
    JsonOpt,
    ProfileFileOpt,
    ProfileOpt,
    TlsVerifyOpt,
)

if TYPE_CHECKING:
    from llmdeploy.build.result import BuildResult
    from llmdeploy.core.image_ref import ImageRef
    from llmdeploy.core.platforms import Platform


def build(
    profile: str | None = ProfileOpt,
    profile_file: Path | None = ProfileFileOpt,
    engine: str | None = EngineOpt,
    tag: list[str] | None = typer.Option(
        None,
        "--tag",
        "-t",
        help="Name of the image, registry first for --push (repeat for more; the first is "
        "primary). Default: the profile's local build tag.",
    ),
    platform: str | None = typer.Option(
        None,
        "--platform",
        help="linux/amd64, linux/arm64, or both comma-separated for a manifest list "
        "(a foreign platform builds under qemu emulation; Podman).",
    ),
    push: bool = typer.Option(False, "--push", help="Push every tag to its registry."),
    bake: bool = typer.Option(
        False,
        "--bake",
        help="Put the model's weights into the image at the mount path (one self-contained "
        "artifact); prints the mounted and baked sizes.",
    ),
    tls_verify: str = TlsVerifyOpt,
    creds_env: str | None = CredsEnvOpt,
    base_image: list[str] | None = typer.Option(
        None,
        "--base-image",
        metavar="[PLATFORM=]IMAGE",
        help="BASE_IMAGE for one platform (linux/arm64=localhost/llmdeploy-base:bookworm-arm64) "
        "or for all; overrides the profile's build.base_image.",
    ),
    source: str | None = typer.Option(
        None, "--source", help="org.opencontainers.image.source (default: CI or git remote)."
    ),
    revision: str | None = typer.Option(
        None, "--revision", help="org.opencontainers.image.revision (default: CI or git HEAD)."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Build the profile's server image; tag, label, bake, push it (exit 11 build failed,
    12 registry refused the credentials, 13 registry unreachable)."""
    import os

    from llmdeploy.build.pipeline import build_image
    from llmdeploy.build.provenance import Provenance
    from llmdeploy.build.request import BuildImageRequest
    from llmdeploy.cli.options import parse_tls_verify, resolve_profile
    from llmdeploy.cli.progress import RichReporter
    from llmdeploy.engines.selection import choose_engine

    verify = parse_tls_verify(tls_verify)
    tags = _tags(tag or [])
    platforms = _platforms(platform)
    bases = _base_images(base_image or [], platforms)
    resolved = resolve_profile(profile, profile_file)
    chosen = choose_engine(engine, resolved.profile.engine)
    request = BuildImageRequest(
        profile=resolved.profile,
        engine=chosen,
        provenance=Provenance.detect(
            resolved.base_dir, os.environ, source=source, revision=revision
        ),
        tags=tags,
        platforms=platforms,
        push=push,
        bake=bake,
        tls_verify=verify,
        creds_env=creds_env,
        base_images=bases,
        base_dir=resolved.base_dir,
    )
    reporter = RichReporter(enabled=not as_json)
    result = build_image(request, reporter)
    if as_json:
        from llmdeploy.cli.console import print_json

        data = result.to_dict()
        data["phases"] = [record.to_dict() for record in reporter.records]
        print_json(data)
        return
    _print(result)


def _tags(values: list[str]) -> tuple[ImageRef, ...]:
    from llmdeploy.core.image_ref import parse_image_ref
    from llmdeploy.errors import UsageError

    parsed = []
    for value in values:
        try:
            ref = parse_image_ref(value)
        except ValueError as exc:
            raise UsageError(f"--tag {value!r}: {exc}") from None
        if ref.digest:
            raise UsageError(f"--tag {value!r}: a tag names no digest (the registry sets it)")
        parsed.append(ref)
    return tuple(parsed)


def _platforms(value: str | None) -> tuple[Platform, ...]:
    from llmdeploy.core.platforms import parse_platforms
    from llmdeploy.errors import UsageError

    if value is None:
        return ()
    try:
        return parse_platforms(value)
    except ValueError as exc:
        raise UsageError(f"--platform {value!r}: {exc}") from None


def _base_images(values: list[str], platforms: tuple[Platform, ...]) -> dict[str, str]:
    """``[PLATFORM=]IMAGE`` values -> BASE_IMAGE per platform name (no platform: all)."""
    from llmdeploy.core.platforms import SUPPORTED, host_platform, parse_platforms
    from llmdeploy.errors import UsageError

    targets = [str(p) for p in platforms or (host_platform(),)]
    bases: dict[str, str] = {}
    for value in values:
        name, sep, image = value.partition("=")
        if not sep:
            bases.update(dict.fromkeys(targets, value))
            continue
        try:
            (chosen,) = parse_platforms(name)
        except ValueError as exc:
            raise UsageError(f"--base-image {value!r}: {exc}") from None
        if not image.strip():
            raise UsageError(f"--base-image {value!r}: no image after '='")
        if str(chosen) not in targets:
            raise UsageError(
                f"--base-image {value!r}: {chosen} is not built here (platforms: "
                f"{', '.join(targets)})",
                hint=f"add --platform {','.join([*targets, str(chosen)])}"
                if str(chosen) in SUPPORTED
                else None,
            )
        bases[str(chosen)] = image.strip()
    return bases


def _print(result: BuildResult) -> None:
    from rich.table import Table

    from llmdeploy.cli.console import out
    from llmdeploy.core.sizes import format_bytes

    console = out()
    what = "built and pushed" if result.pushed else "built"
    console.print(
        f"[green]●[/green] {what} {result.image} with {result.engine} "
        f"in {result.duration_s:.1f} s",
        soft_wrap=True,
    )
    table = Table(box=None, pad_edge=False, show_edge=False)
    table.add_column("platform")
    table.add_column("image")
    table.add_column("id")
    table.add_column("size", justify="right")
    if result.baked:
        table.add_column("mounted variant", justify="right")
    for image in result.platforms:
        row = [image.platform, image.ref, image.id[:12], format_bytes(image.size_bytes)]
        if result.baked:
            row.append(format_bytes(image.mounted_size_bytes))
        table.add_row(*row)
    console.print(table)
    if result.baked:
        first = result.platforms[0]
        mounted = first.mounted_size_bytes or 0
        console.print(
            f"  weights mounted: {format_bytes(mounted)} image + the model on the host; "
            f"baked: {format_bytes(first.size_bytes)} "
            f"(+{format_bytes(first.size_bytes - mounted)}, the weights are "
            f"{format_bytes(result.weights_bytes)})",
            soft_wrap=True,
        )
    console.print(f"  tags      {', '.join(result.tags)}", soft_wrap=True)
    if result.pushed:
        console.print(f"  digest    {result.digest or 'not reported by the engine'}")
    phases = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result.phase_s.items())
    if phases:
        console.print(f"  time      {phases}", style="dim")
