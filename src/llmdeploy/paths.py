"""Where llmdeploy keeps user configuration and data (XDG base directories)."""

from __future__ import annotations

import os
from pathlib import Path

from llmdeploy.constants import (
    ENV_CONFIG_DIR,
    ENV_MODEL_STORE,
    ENV_XDG_CACHE_HOME,
    ENV_XDG_CONFIG_HOME,
    ENV_XDG_STATE_HOME,
)


def config_dir() -> Path:
    override = os.environ.get(ENV_CONFIG_DIR)
    if override:
        return Path(override).expanduser()
    base = os.environ.get(ENV_XDG_CONFIG_HOME) or str(Path.home() / ".config")
    return Path(base) / "llmdeploy"


def cache_dir() -> Path:
    base = os.environ.get(ENV_XDG_CACHE_HOME) or str(Path.home() / ".cache")
    return Path(base) / "llmdeploy"


def state_dir() -> Path:
    """``$XDG_STATE_HOME/llmdeploy`` (default ``~/.local/state/llmdeploy``): records that
    outlive a command but are not configuration (the time to ready of running deployments)."""
    base = os.environ.get(ENV_XDG_STATE_HOME) or str(Path.home() / ".local" / "state")
    return Path(base) / "llmdeploy"


def model_store_dir() -> Path:
    override = os.environ.get(ENV_MODEL_STORE)
    if override:
        return Path(override).expanduser()
    return cache_dir() / "models"


def user_profiles_dir() -> Path:
    return config_dir() / "profiles"
