"""What ``llmdeploy build`` is asked to do, parsed once at the edge (the CLI, a script)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from llmdeploy.build.provenance import Provenance
from llmdeploy.core.image_ref import ImageRef
from llmdeploy.core.platforms import Platform
from llmdeploy.engines.selection import EngineChoice
from llmdeploy.profiles.schema import Profile


@dataclass(frozen=True)
class BuildImageRequest:
    """One build.

    ``tags``: the names to give the image, the first one primary (empty: the profile's
    local build tag); ``platforms``: empty for the engine's own, several for a manifest list;
    ``push``: push every tag (each must name a registry); ``bake``: the weights inside;
    ``tls_verify`` / ``creds_env``: how to reach the registry (``--tls-verify=false``,
    ``--creds-env NAME``); ``base_images``: BASE_IMAGE per platform name (``linux/arm64``),
    overriding the profile's ``build.base_image`` for that platform; ``base_dir``: the
    profile file's folder.
    """

    profile: Profile
    engine: EngineChoice
    provenance: Provenance
    tags: tuple[ImageRef, ...] = ()
    platforms: tuple[Platform, ...] = ()
    push: bool = False
    bake: bool = False
    tls_verify: bool = True
    creds_env: str | None = None
    base_images: dict[str, str] = field(default_factory=dict)
    base_dir: Path | None = None
