"""The names llmdeploy checks in more than one place: a profile's or deployment's name, and
an environment variable's name (where llmdeploy takes a secret, it takes the name of the
variable that holds it: ``--api-key-env``, ``--creds-env``, ``fallback.api_key_env``; never
the value)."""

from __future__ import annotations

import re

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# what a refused name should have been, for the messages that refuse one
NAME_RULE = "use lowercase letters, digits, '-', '_' or '.', starting with a letter or digit"


def is_name(text: str) -> bool:
    """Whether ``text`` can name a profile or a deployment (and so a container,
    ``llmdeploy-NAME``): at most 63 of lowercase letters, digits, ``-``, ``_`` and ``.``,
    starting with a letter or digit."""
    return _NAME.match(text) is not None


def is_env_name(text: str) -> bool:
    """Whether ``text`` is a portable environment variable name (POSIX: letters, digits
    and ``_``, not starting with a digit); a key pasted in its place is not one."""
    return _ENV_NAME.match(text) is not None
