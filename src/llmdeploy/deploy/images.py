"""Make sure the deployment's image is in the engine: local, else pull, else build."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from llmdeploy import __version__
from llmdeploy.constants import ENV_WHEELHOUSE, LABEL_PREFIX
from llmdeploy.core.launch import RenderedFile
from llmdeploy.core.plan import ImageChoice
from llmdeploy.core.reporting import Reporter
from llmdeploy.core.run_spec import BuildRequest
from llmdeploy.engines.base import Engine
from llmdeploy.errors import ImageError
from llmdeploy.fileops import link_or_copy
from llmdeploy.paths import cache_dir
from llmdeploy.render.containerfile import CONTAINERFILE, render_build_context

PullPolicy = Literal["missing", "always", "never"]
ImageSource = Literal["local", "pulled", "built"]


@dataclass(frozen=True)
class ImageReady:
    image: str
    source: ImageSource


def wheelhouse_dir() -> Path:
    override = os.environ.get(ENV_WHEELHOUSE)
    return Path(override) if override else cache_dir() / "wheelhouse"


def ensure_image(
    engine: Engine,
    choice: ImageChoice,
    *,
    pull: PullPolicy = "missing",
    force_build: bool = False,
    reporter: Reporter,
) -> ImageReady:
    if force_build:
        return _build(engine, choice, reporter)
    if pull != "always":
        reporter.phase("image", f"Looking for {choice.image} in {engine.name}")
        if engine.image_exists(choice.image):
            reporter.detail(f"{choice.image} is already in {engine.name}")
            return ImageReady(choice.image, "local")
        if (
            choice.build_tag
            and choice.build_tag != choice.image
            and engine.image_exists(choice.build_tag)
        ):
            reporter.detail(f"using the local build {choice.build_tag}")
            return ImageReady(choice.build_tag, "local")
        reporter.detail(f"not in {engine.name}")
    pull_error: ImageError | None = None
    can_build = choice.recipe is not None and choice.build_tag is not None
    if pull != "never" and choice.image != choice.build_tag:
        reporter.phase("pull", f"Pulling {choice.image}")
        try:
            engine.pull(choice.image)
            return ImageReady(choice.image, "pulled")
        except ImageError as exc:
            pull_error = exc
            if can_build:
                reporter.end_phase(
                    "fallback", f"{exc.message}; building {choice.build_tag} instead"
                )
            else:
                reporter.end_phase("failed", exc.message)
    if can_build:
        return _build(engine, choice, reporter)
    if pull_error is not None:
        raise pull_error
    raise ImageError(
        f"image {choice.image} is not in {engine.name} and the profile has no build section",
        hint="add a build: section to the profile, or pull/load the image first",
    )


def _build(engine: Engine, choice: ImageChoice, reporter: Reporter) -> ImageReady:
    if choice.recipe is None or choice.build_tag is None:
        raise ImageError(f"the profile cannot build {choice.image}: no build section")
    files = render_build_context(choice.recipe, custom_containerfile=choice.custom_containerfile)
    reporter.phase("build", f"Building {choice.build_tag} with {engine.name}")
    context = Path(tempfile.mkdtemp(prefix="llmdeploy-build-"))
    try:
        write_files(context, files)
        wheels = context / "wheels"
        wheels.mkdir(exist_ok=True)
        source = wheelhouse_dir() / choice.recipe.wheelhouse
        if source.is_dir():
            for wheel in source.glob("*.whl"):
                link_or_copy(wheel, wheels / wheel.name)
        reporter.detail(
            f"wheelhouse: {len(list(wheels.glob('*.whl')))} wheels from {source}"
            if any(wheels.iterdir())
            else "no wheelhouse: pip installs from the index inside the build"
        )
        engine.build(
            BuildRequest(
                context_dir=str(context),
                containerfile=CONTAINERFILE,
                tag=choice.build_tag,
                build_args=dict(choice.build_args),
                labels={f"{LABEL_PREFIX}.built-by": f"llmdeploy {__version__}"},
            )
        )
    finally:
        shutil.rmtree(context, ignore_errors=True)
    return ImageReady(choice.build_tag, "built")


def write_files(directory: Path, files: list[RenderedFile]) -> None:
    for item in files:
        path = directory / item.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(item.content, encoding="utf-8")
        if item.executable:
            path.chmod(0o755)
