"""File placement shared by the model store and image build contexts."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link ``source`` at ``target`` (zero copy on the same filesystem), else copy it."""
    try:
        os.link(source.resolve(), target)
    except OSError:
        shutil.copyfile(source, target)
        os.chmod(target, 0o644)  # readable by a container's non-root user
