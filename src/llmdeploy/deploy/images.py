"""Make sure the deployment's image is in the engine: local, else pull, else build.

A pull honours the registry access ``up`` was given (``--tls-verify=false``, ``--creds-env``).
An image whose labels say it carries the weights (``llmdeploy build --bake``) is reported as
baked: ``up`` then mounts nothing at the model directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from llmdeploy import __version__
from llmdeploy.constants import ENV_WHEELHOUSE, LABEL_BAKED, LABEL_BAKED_FILE, LABEL_PREFIX
from llmdeploy.core.launch import RenderedFile
from llmdeploy.core.plan import ImageChoice
from llmdeploy.core.platforms import Platform, host_platform, wheel_matches
from llmdeploy.core.registry import DEFAULT_ACCESS, RegistryAccess
from llmdeploy.core.reporting import Reporter
from llmdeploy.core.run_spec import BuildRequest
from llmdeploy.engines.base import Engine
from llmdeploy.errors import ImageError, RegistryError
from llmdeploy.fileops import link_or_copy
from llmdeploy.paths import cache_dir

PullPolicy = Literal["missing", "always", "never"]
ImageSource = Literal["local", "pulled", "built"]


@dataclass(frozen=True)
class ImageReady:
    """The image ``up`` runs, where it came from, and the model file baked into it ("" when
    the weights are mounted, the default)."""

    image: str
    source: ImageSource
    baked_file: str = ""

    @property
    def baked(self) -> bool:
        return bool(self.baked_file)


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
    access: RegistryAccess = DEFAULT_ACCESS,
) -> ImageReady:
    """The image ready in ``engine``: the profile's if local, else the local build (where it
    stands in for the image, see ImageChoice), else pulled with ``access``, else built;
    ``baked_file`` read from its labels."""
    ready = _ensure(
        engine, choice, pull=pull, force_build=force_build, reporter=reporter, access=access
    )
    info = engine.image_info(ready.image)
    if info is not None and info.labels.get(LABEL_BAKED) == "true":
        baked = info.labels.get(LABEL_BAKED_FILE, "")
        reporter.detail(f"{ready.image} carries the weights ({baked or 'the model folder'})")
        return ImageReady(ready.image, ready.source, baked_file=baked or ".")
    return ready


def _ensure(
    engine: Engine,
    choice: ImageChoice,
    *,
    pull: PullPolicy,
    force_build: bool,
    reporter: Reporter,
    access: RegistryAccess,
) -> ImageReady:
    if force_build:
        return _build(engine, choice, reporter)
    if pull != "always":
        reporter.phase("image", f"Looking for {choice.image} in {engine.name}")
        if engine.image_exists(choice.image):
            reporter.detail(f"{choice.image} is already in {engine.name}")
            return ImageReady(choice.image, "local")
        if (
            choice.build_stands_in
            and choice.build_tag
            and choice.build_tag != choice.image
            and engine.image_exists(choice.build_tag)
        ):
            # a ✓ on the image looked for would read as "found": say what is used instead
            reporter.end_phase(
                "fallback",
                f"{choice.image} is not in {engine.name}; using the local build "
                f"{choice.build_tag}",
            )
            return ImageReady(choice.build_tag, "local")
        reporter.detail(f"not in {engine.name}")
    pull_error: ImageError | RegistryError | None = None
    # an image the user named is pulled, never swapped for a local build (ImageChoice)
    can_build = (
        choice.recipe is not None and choice.build_tag is not None and choice.build_stands_in
    )
    if pull != "never" and choice.image != choice.build_tag:
        reporter.phase("pull", f"Pulling {choice.image}")
        try:
            engine.pull(choice.image, access)
            return ImageReady(choice.image, "pulled")
        except (ImageError, RegistryError) as exc:
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
    if choice.recipe is not None:  # the image is the user's own: --pull never stops here
        raise ImageError(
            f"image {choice.image} is not in {engine.name} (--pull never), and the profile's "
            "local build does not stand in for an image the profile names",
            hint="pull or load it first, or run the local build instead: up --build",
        )
    raise ImageError(
        f"image {choice.image} is not in {engine.name} and the profile has no build section",
        hint="add a build: section to the profile, or pull/load the image first",
    )


def _build(engine: Engine, choice: ImageChoice, reporter: Reporter) -> ImageReady:
    if choice.recipe is None or choice.build_tag is None:
        raise ImageError(f"the profile cannot build {choice.image}: no build section")
    from llmdeploy.render.containerfile import CONTAINERFILE  # jinja2: only when building

    reporter.phase("build", f"Building {choice.build_tag} with {engine.name}")
    context = Path(tempfile.mkdtemp(prefix="llmdeploy-build-"))
    try:
        reporter.detail(prepare_build_context(choice, context))
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


def prepare_build_context(
    choice: ImageChoice, context: Path, platform: Platform | None = None
) -> str:
    """Write the build context of ``choice`` into ``context``: the rendered Containerfile and
    the files it copies, plus ``wheels/`` with the wheelhouse's wheels for ``platform`` (the
    host's when None; a wheelhouse may hold several architectures). Returns a line saying
    where the wheels came from. Raises RenderError (a template) or ImageError (no recipe)."""
    if choice.recipe is None:
        raise ImageError(f"the profile cannot build {choice.image}: no build section")
    from llmdeploy.render.containerfile import render_build_context

    files = render_build_context(choice.recipe, custom_containerfile=choice.custom_containerfile)
    write_files(context, files)
    wheels = context / "wheels"
    wheels.mkdir(exist_ok=True)
    target = platform or host_platform()
    source = wheelhouse_dir() / choice.recipe.wheelhouse
    if source.is_dir():
        for wheel in source.glob("*.whl"):
            if wheel_matches(wheel.name, target):
                link_or_copy(wheel, wheels / wheel.name)
    count = len(list(wheels.glob("*.whl")))
    if count:
        return f"wheelhouse: {count} wheels for {target} from {source}"
    return "no wheelhouse: pip installs from the index inside the build"


def write_files(directory: Path, files: list[RenderedFile]) -> None:
    for item in files:
        path = directory / item.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(item.content, encoding="utf-8")
        if item.executable:
            path.chmod(0o755)
