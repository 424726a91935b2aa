"""Build contexts on disk: a temporary folder per build, removed afterwards.

The server image's context is ``deploy.images.prepare_build_context`` (the same ``up``
builds from: rendered Containerfile, ``llama-server``, the wheels of the platform); a baked
image's is its rendered Containerfile plus ``model/`` holding the model's files, hard-linked
from the store (copied once across file systems), exactly what ``up`` would mount.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from llmdeploy.deploy.images import write_files
from llmdeploy.fileops import link_or_copy
from llmdeploy.models.store import StoredModel
from llmdeploy.render.containerfile import BAKED_MODEL_DIR, render_baked_containerfile

STORE_RECORD_PREFIX = ".llmdeploy"  # the store's own records beside the weights: never baked


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A temporary folder, removed when the block ends (also on errors)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def model_files(stored: StoredModel) -> list[Path]:
    """The files of the model in its store entry, relative to the entry: every part of a
    split GGUF, the one file, or (a model that is a folder) every file but the store's
    records."""
    if stored.files:
        return [Path(name) for name in stored.files]
    if stored.filename:
        return [Path(stored.filename)]
    return sorted(
        path.relative_to(stored.directory)
        for path in stored.directory.rglob("*")
        if path.is_file()
        and not any(
            part.startswith(STORE_RECORD_PREFIX)
            for part in path.relative_to(stored.directory).parts
        )
    )


def prepare_baked_context(
    context: Path,
    *,
    base_image: str,
    stored: StoredModel,
    model_dir: str,
    model_ref: str,
    version: str,
) -> int:
    """Write the baked image's context into ``context``; return the bytes of weights in it."""
    baked_file = stored.filename or "."
    write_files(
        context,
        [
            render_baked_containerfile(
                base_image=base_image,
                model_dir=model_dir,
                baked_file=baked_file,
                model_ref=model_ref,
                version=version,
            )
        ],
    )
    total = 0
    for relative in model_files(stored):
        target = context / BAKED_MODEL_DIR / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        link_or_copy(stored.directory / relative, target)
        total += target.stat().st_size
    return total
