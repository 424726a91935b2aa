"""What makes a URL usable as an inference API's address, in one place for every option and
profile field that takes one (``chat --url``, ``bench --url``, ``route --edge-url`` /
``--cloud-url``, a profile's ``fallback.url``).

A URL must be ``http://`` or ``https://`` with a host (and a numeric port, if any). A URL with
credentials in it (``http://user:secret@host/v1``) is refused: its key would end up in
reports, rendered configuration, progress lines and error messages. Keys are passed by the
name of the environment variable that holds them. Messages never repeat a URL's user-info:
:func:`shown_url` masks it.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

__all__ = [
    "OLLAMA_NATIVE_PATHS", "OPENAI_ENDPOINTS", "api_url_problem", "openai_base_path",
    "shown_url",
]

# the endpoints a user may paste instead of the API base: their suffix is dropped
OPENAI_ENDPOINTS = ("/chat/completions", "/completions")
# Ollama's own API paths (its OpenAI-compatible API is beside them, at /v1)
OLLAMA_NATIVE_PATHS = ("/api", "/api/chat", "/api/generate")

CREDENTIALS_PROBLEM = (
    "a URL with credentials in it (they would be written into reports and printed): "
    "pass the key on its own"
)


def shown_url(url: str) -> str:
    """``url`` as it may be printed: user-info replaced by ``***``."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return "<unparsable URL>"
    if "@" not in parts.netloc:
        return url.strip()
    host = parts.netloc.rsplit("@", 1)[1]
    return SplitResult(parts.scheme, f"***@{host}", parts.path, parts.query,
                       parts.fragment).geturl()


def api_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be an API's address, or None when it can. The reason never
    contains the URL's credentials."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if "@" in parts.netloc:
        return CREDENTIALS_PROBLEM
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not an http(s):// URL with a host"
    return None


def openai_base_path(path: str) -> str:
    """The OpenAI-compatible API's base path for a URL path a user gave: an endpoint's
    suffix (``/v1/chat/completions``) dropped, ``/v1`` for a bare server root.

    >>> openai_base_path("/v1/chat/completions"), openai_base_path("")
    ('/v1', '/v1')
    """
    path = path.rstrip("/")
    for suffix in OPENAI_ENDPOINTS:
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    return path or "/v1"
