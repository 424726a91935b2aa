"""``build_image``: the profile's server image for each platform, optionally baked, tagged,
gathered into a manifest list (several platforms) and pushed.

Steps (each a reported phase, timed):

1. check the request before anything is built (UsageError, exit 2): every pushed tag names
   a registry; several platforms need an engine whose API makes manifest lists; a platform
   other than the host's needs an engine that builds for it (traits, not engine names);
   ``--creds-env`` holds ``user:token``; the registry answers on its port
   (RegistryUnreachableError, exit 13, before minutes of building);
2. per platform: the rendered build context (``deploy.images.prepare_build_context``), the
   base image's architecture checked when it is local, the build through the engine's API
   (``platform`` set for a foreign one: its RUN steps run under qemu user emulation);
3. ``--bake``: the model placed in the store (as ``up`` does) and, per platform, an image
   ``FROM`` the mounted one with the weights at the model directory;
4. tags; several platforms: one manifest list per tag (the per-platform images keep local
   names ``TAG-ARCH``);
5. ``--push``: each tag, or each manifest list with its images.

Nothing half-done is left tagged: when a step fails, every name this build gave is taken
away again (the images stay, untagged, as build cache), and a manifest list it made is
removed. A push writes the tag (or the list) in the registry last, so a failed push leaves
no tag there either. Registry credentials are handed to the engine's API only.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from llmdeploy import __version__
from llmdeploy.build.context import prepare_baked_context, scratch_dir
from llmdeploy.build.provenance import ImageDescription, image_labels, public_model_ref
from llmdeploy.build.request import BuildImageRequest
from llmdeploy.build.result import BuildResult, PlatformImage
from llmdeploy.constants import LABEL_BAKED_FILE
from llmdeploy.core.image_ref import LOCAL_NAMESPACE, ImageRef, parse_image_ref
from llmdeploy.core.plan import DeploymentPlan, ImageChoice
from llmdeploy.core.platforms import Platform, host_platform
from llmdeploy.core.registry import RegistryAccess
from llmdeploy.core.reporting import NullReporter, Reporter
from llmdeploy.core.run_spec import BuildRequest, ImageInfo
from llmdeploy.deploy.images import prepare_build_context
from llmdeploy.deploy.up import place_model, plan_without_fetching
from llmdeploy.engines.base import Engine
from llmdeploy.engines.registry_auth import resolve_credentials
from llmdeploy.engines.selection import open_engine
from llmdeploy.errors import (
    EngineError,
    ImageError,
    ProfileError,
    RegistryUnreachableError,
    UsageError,
)
from llmdeploy.render.containerfile import CONTAINERFILE

REGISTRY_CONNECT_TIMEOUT_S = 5.0
HTTPS_PORT = 443
_T = TypeVar("_T")


@dataclass
class _Made:
    """What this build gave names to, so a failure can take them away again."""

    tags: list[str] = field(default_factory=list)
    lists: list[str] = field(default_factory=list)


def build_image(
    request: BuildImageRequest, reporter: Reporter | None = None, engine: Engine | None = None
) -> BuildResult:
    """Build (and push) the image ``request`` describes; see the module docstring.

    ``engine``: an engine to use instead of opening ``request.engine`` (tests, embedding).
    Raises UsageError (exit 2), ProfileError (3), ModelError (4, ``--bake``), ImageBuildError
    (11), RegistryAuthError (12), RegistryUnreachableError (13) or another EngineError (5).
    """
    report = reporter or NullReporter()
    started = time.monotonic()
    phases: dict[str, float] = {}
    made = _Made()
    eng: Engine | None = engine
    try:
        plan = plan_without_fetching(request.profile, base_dir=request.base_dir)
        choice = _buildable(plan)
        platforms = request.platforms or (host_platform(),)
        several = len(platforms) > 1
        tags = request.tags or _default_tags(choice, bake=request.bake, several=several)
        accesses = _check_request(request, tags)
        report.phase("engine", f"Connecting to {request.engine.describe()}")
        if eng is None:
            eng = open_engine(request.engine)
        _check_engine(eng, platforms, several)
        labels = image_labels(_describe(request, plan, tags[0]), request.provenance, baked=False)
        built = _timed(phases, "build", lambda: [
            _build_platform(eng, request, choice, platform, tags[0], labels, made, report,
                            several=several, mounted_variant=request.bake)
            for platform in platforms
        ])  # fmt: skip
        weights: int | None = None
        if request.bake:
            built, weights, labels = _timed(phases, "bake", lambda: _bake_all(
                eng, request, plan, built, tags[0], made, report, several=several))  # fmt: skip
        final_tags = _name(eng, tags, built, made, report, several=several)
        digest: str | None = None
        if request.push:
            digest = _timed(phases, "push", lambda: _push(
                eng, tags, accesses, report, several=several))  # fmt: skip
        report.finish(success=True)
    except BaseException:
        report.finish(success=False)
        if eng is not None:
            _take_back(eng, made)
        if engine is None and eng is not None:
            eng.close()
        raise
    if engine is None:
        eng.close()
    return BuildResult(
        image=str(tags[0]),
        engine=eng.name,
        tags=tuple(final_tags),
        platforms=tuple(built),
        pushed=request.push,
        digest=digest,
        baked=request.bake,
        weights_bytes=weights,
        labels=labels,
        duration_s=time.monotonic() - started,
        phase_s=phases,
    )


# --- checks --------------------------------------------------------------------------------
def _buildable(plan: DeploymentPlan) -> ImageChoice:
    choice = plan.images
    if choice.recipe is None or choice.build_tag is None:
        raise ProfileError(
            f"profile {plan.profile_name!r} has no build: section, so there is nothing to build "
            f"(it runs the prebuilt {plan.run.image})",
            hint="add `build: {}` (or build.base_image / build.containerfile) to the profile",
        )
    return choice


def _default_tags(choice: ImageChoice, *, bake: bool, several: bool) -> tuple[ImageRef, ...]:
    """Without ``--tag``: the profile's local build tag (what ``up`` runs), ``TAG-baked`` for
    a baked image (so the local build keeps meaning "weights mounted"); several platforms need
    a name given on purpose (a manifest list would take the local image's name)."""
    local = parse_image_ref(choice.build_tag or choice.image)
    if several:
        raise UsageError(
            "--platform with several platforms makes a manifest list: name it with --tag",
            hint=f"--tag registry.example/team/{local.repository.rsplit('/', 1)[-1]}:"
            f"{local.tag or 'latest'}",
        )
    if bake:
        return (local.with_tag(f"{local.tag or 'latest'}-baked"),)
    return (local,)


def _check_request(
    request: BuildImageRequest, tags: tuple[ImageRef, ...]
) -> dict[str, RegistryAccess]:
    """Refuse what cannot work before building; the registry access per tag to push."""
    if request.creds_env and not request.push:
        # checked anyway: a CI job with a typo in the variable's name should learn it now
        resolve_credentials(tags[0], request.engine.requested, request.creds_env)
    if not request.push:
        return {}
    accesses: dict[str, RegistryAccess] = {}
    for tag in tags:
        if not tag.pushable:
            raise UsageError(
                f"--push: the tag {tag} names no registry to push to",
                hint="give a tag with the registry host first: --tag registry.example/team/"
                f"{tag.repository.rsplit('/', 1)[-1]}:{tag.tag or 'latest'} "
                "(or 127.0.0.1:5000/… for a local registry)",
            )
        credentials = resolve_credentials(tag, request.engine.requested, request.creds_env)
        accesses[str(tag)] = RegistryAccess(tls_verify=request.tls_verify, credentials=credentials)
    for registry in dict.fromkeys(t.registry or "" for t in tags):
        _check_reachable(next(t for t in tags if t.registry == registry))
    return accesses


def _check_reachable(tag: ImageRef) -> None:
    """A TCP connection to the registry's port, so a registry that is down is reported before
    minutes of building (the push itself reports anything past the connection)."""
    port = tag.port or HTTPS_PORT
    host = tag.host.strip("[]")
    try:
        with socket.create_connection((host, port), timeout=REGISTRY_CONNECT_TIMEOUT_S):
            return
    except OSError as exc:
        raise RegistryUnreachableError(
            f"--push: the registry {tag.registry} does not answer on port {port}: "
            f"{exc.strerror or exc}",
            hint="start the registry or fix the tag's host and port; nothing was built",
        ) from exc


def _check_engine(engine: Engine, platforms: tuple[Platform, ...], several: bool) -> None:
    traits = engine.traits
    if several and not traits.manifest_lists:
        raise UsageError(
            f"--platform {','.join(map(str, platforms))}: {engine.name}'s API makes no manifest "
            "lists (one reference for several platforms)",
            hint="use --engine podman for a multi-platform image, or build one platform at a time",
        )
    host = host_platform()
    foreign = [p for p in platforms if p != host]
    if foreign and not traits.foreign_builds:
        raise UsageError(
            f"--platform {foreign[0]}: {engine.name} builds for this host's platform ({host}) "
            "only here (its classic builder has no cross-platform builds without buildx)",
            hint="use --engine podman (it runs foreign RUN steps under qemu user emulation: "
            "scripts/setup-host.sh --with-arm64)",
        )


def _check_base(engine: Engine, base: str, platform: Platform) -> None:
    """A base image that only exists locally (``localhost/…``) must be of the platform. One
    from a registry is left to the engine: its build pulls the platform's variant when the
    local copy is another platform's (a multi-platform base such as python:3.11-slim)."""
    try:
        local_only = parse_image_ref(base).registry == LOCAL_NAMESPACE
    except ValueError:
        local_only = True  # an image ID or an odd name: only the local store can resolve it
    if not local_only:
        return
    info = engine.image_info(base)
    if info is None or not info.architecture or info.architecture == platform.architecture:
        return
    raise UsageError(
        f"the base image {base} is {info.platform}, not {platform}",
        hint=f"pass --base-image {platform}=IMAGE with a {platform} base "
        f"(scripts/make-base-image.sh --arch {platform.architecture} makes "
        f"localhost/llmdeploy-base:bookworm-{platform.architecture})",
    )


# --- steps ---------------------------------------------------------------------------------
def _describe(
    request: BuildImageRequest, plan: DeploymentPlan, primary: ImageRef
) -> ImageDescription:
    profile = request.profile
    return ImageDescription(
        title=f"{profile.name}: {plan.backend} server ({plan.accelerator})",
        version=primary.tag or __version__,
        profile=profile.name,
        backend=plan.backend,
        accelerator=plan.accelerator,
        model_ref=public_model_ref(plan.model_ref),
        served_model=plan.launch.served_model,
        built_by=f"llmdeploy {__version__}",
    )


def variant(primary: ImageRef, *, mounted: bool, platform: Platform | None) -> ImageRef:
    """The local name of an intermediate image: ``TAG-mounted`` (the variant a baked image is
    made from), ``TAG-arm64`` (one platform of a list), ``TAG-mounted-arm64``."""
    parts = [primary.tag or "latest"]
    if mounted:
        parts.append("mounted")
    if platform is not None:
        parts.append(platform.architecture)
    return primary.with_tag("-".join(parts))


def _build_platform(
    engine: Engine,
    request: BuildImageRequest,
    choice: ImageChoice,
    platform: Platform,
    primary: ImageRef,
    labels: dict[str, str],
    made: _Made,
    report: Reporter,
    *,
    several: bool,
    mounted_variant: bool,
) -> PlatformImage:
    tag = variant(primary, mounted=mounted_variant, platform=platform if several else None)
    base = request.base_images.get(str(platform)) or choice.build_args.get("BASE_IMAGE", "")
    foreign = platform != host_platform()
    report.phase(
        f"build {platform}",
        f"Building {tag} for {platform} with {engine.name}"
        + (" (under emulation: slow)" if foreign else ""),
    )
    if base:
        _check_base(engine, base, platform)
    with scratch_dir("llmdeploy-build-") as context:
        report.detail(prepare_build_context(choice, context, platform))
        report.detail(f"base image: {base}")
        engine.build(
            BuildRequest(
                context_dir=str(context),
                containerfile=CONTAINERFILE,
                tag=str(tag),
                build_args={**choice.build_args, **({"BASE_IMAGE": base} if base else {})},
                labels=labels,
                # every platform of a list is named explicitly, so a base image whose local
                # copy is another platform's is never taken as this one's
                platform=str(platform) if foreign or several else None,
            )
        )
    made.tags.append(str(tag))
    info = _info(engine, str(tag))
    _check_built_platform(info, platform, str(tag))
    return PlatformImage(
        platform=str(platform), ref=str(tag), id=info.id, size_bytes=info.size_bytes
    )


def _bake_all(
    engine: Engine,
    request: BuildImageRequest,
    plan: DeploymentPlan,
    built: list[PlatformImage],
    primary: ImageRef,
    made: _Made,
    report: Reporter,
    *,
    several: bool,
) -> tuple[list[PlatformImage], int, dict[str, str]]:
    """Per platform, the image with the weights at the model directory; returns the images,
    the bytes of weights each carries, and the labels they got."""
    report.phase("model", f"Placing model {request.profile.model.ref} in the store")
    stored = place_model(request.profile)
    baked_labels = image_labels(_describe(request, plan, primary), request.provenance, baked=True)
    baked_labels[LABEL_BAKED_FILE] = stored.filename or "."
    results: list[PlatformImage] = []
    weights = 0
    for image, platform in zip(built, request.platforms or (host_platform(),), strict=True):
        tag = variant(primary, mounted=False, platform=platform if several else None)
        report.phase("bake", f"Baking the weights into {tag}")
        with scratch_dir("llmdeploy-bake-") as context:
            weights = prepare_baked_context(
                context,
                base_image=image.ref,
                stored=stored,
                model_dir=plan.model.container_dir,
                model_ref=public_model_ref(plan.model_ref),
                version=__version__,
            )
            foreign = platform != host_platform()
            engine.build(
                BuildRequest(
                    context_dir=str(context),
                    containerfile=CONTAINERFILE,
                    tag=str(tag),
                    build_args={"BASE_IMAGE": image.ref},
                    labels=baked_labels,
                    platform=str(platform) if foreign else None,
                )
            )
        made.tags.append(str(tag))
        info = _info(engine, str(tag))
        results.append(
            PlatformImage(
                platform=image.platform,
                ref=str(tag),
                id=info.id,
                size_bytes=info.size_bytes,
                mounted_ref=image.ref,
                mounted_id=image.id,
                mounted_size_bytes=image.size_bytes,
            )
        )
    return results, weights, baked_labels


def _name(
    engine: Engine,
    tags: tuple[ImageRef, ...],
    built: list[PlatformImage],
    made: _Made,
    report: Reporter,
    *,
    several: bool,
) -> list[str]:
    """Give the requested tags: to the one image, or (several platforms) as manifest lists."""
    names = [str(t) for t in tags]
    if several:
        report.phase("manifest", f"Making the manifest list {names[0]} ({len(built)} platforms)")
        for name in names:
            engine.create_manifest_list(name, [image.id for image in built])
            made.lists.append(name)
        return names
    image = built[0]
    for name in names:
        if name != image.ref:
            engine.tag_image(image.id, name)
            made.tags.append(name)
    return names


def _push(
    engine: Engine,
    tags: tuple[ImageRef, ...],
    accesses: dict[str, RegistryAccess],
    report: Reporter,
    *,
    several: bool,
) -> str | None:
    digest: str | None = None
    for number, tag in enumerate(tags):
        access = accesses[str(tag)]
        who = f" as {access.credentials}" if access.credentials else ""
        plain = "" if access.tls_verify else " (TLS verification off)"
        report.phase("push", f"Pushing {tag} to {tag.registry}{who}{plain}")
        result = (
            engine.push_manifest_list(str(tag), access)
            if several
            else engine.push(str(tag), access)
        )
        report.detail(f"{tag}: {result.digest or 'digest not reported by the engine'}")
        if number == 0:
            digest = result.digest
    return digest


def _take_back(engine: Engine, made: _Made) -> None:
    """Remove every name this build gave (newest first); errors here are not the story."""
    for name in reversed(made.lists):
        with contextlib.suppress(EngineError, OSError):
            engine.remove_manifest_list(name)
    for name in reversed(made.tags):
        with contextlib.suppress(EngineError, OSError):
            engine.untag_image(name)


def _info(engine: Engine, ref: str) -> ImageInfo:
    info = engine.image_info(ref)
    if info is None:
        raise ImageError(f"{engine.name} built {ref}, but the image is not there afterwards")
    return info


def _check_built_platform(info: ImageInfo, platform: Platform, ref: str) -> None:
    if info.architecture and info.architecture != platform.architecture:
        raise ImageError(
            f"{ref} was built for {info.platform}, not {platform}",
            hint="the engine ignored the platform: check its qemu/binfmt setup "
            "(scripts/setup-host.sh --with-arm64)",
        )


def _timed(phases: dict[str, float], name: str, step: Callable[[], _T]) -> _T:
    started = time.monotonic()
    try:
        return step()
    finally:
        phases[name] = phases.get(name, 0.0) + time.monotonic() - started


__all__ = ["build_image", "variant"]
