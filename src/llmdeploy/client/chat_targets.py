"""Who ``chat`` talks to: targets from deployments and URLs, each with its model and key.

The command line names targets in order: ``-d NAME`` (a running deployment; ``a,b`` names
two) and ``--url URL``. ``--api-key-env VAR`` and ``--model NAME`` belong to the ``--url``
just before them; given before the first ``--url`` they apply to every target that has no
value of its own (deployments included). So

    chat --url http://127.0.0.1:1234/v1 --api-key-env LMSTUDIO_KEY --url http://127.0.0.1:8000/v1

sends the key in ``$LMSTUDIO_KEY`` to the first server only. Click gathers repeated options
into one list per option, losing that interleaving, so the command records the option tokens
in command-line order (:class:`OptionToken`) and :func:`pair_options` pairs them here.

A URL is an OpenAI-compatible API's base (``http://host:port/v1``); :func:`chat_base_url`
accepts a server root (``http://host:11434``: ``/v1`` is added, where Ollama, vLLM, llama.cpp
and LM Studio all serve that API), a full ``…/chat/completions`` URL, and Ollama's native API
path (``…/api``, ``…/api/chat``), which becomes the same server's ``/v1``.

Keys are read from the environment variable named; only the name is ever shown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from llmdeploy.core.api_url import (
    OLLAMA_NATIVE_PATHS,
    api_url_problem,
    openai_base_path,
    shown_url,
)
from llmdeploy.errors import EndpointError, UsageError

TokenKind = Literal["deployment", "url", "api_key_env", "model"]
ModelSource = Literal["--model", "deployment", "listed by the server", "default"]
DEFAULT_MODEL = "default"  # what llama.cpp's server answers to whatever the name


@dataclass(frozen=True)
class OptionToken:
    """One target-related option as it appeared on the command line."""

    kind: TokenKind
    value: str


@dataclass(frozen=True)
class TargetRequest:
    """One target the user named, with the options that belong to it (None: not given)."""

    kind: Literal["deployment", "url"]
    value: str  # the deployment name or the URL as typed
    api_key_env: str | None = None
    model: str | None = None


@dataclass(frozen=True)
class PairedOptions:
    """The targets in command-line order, and the options given before the first ``--url``
    (they apply to every target without its own)."""

    targets: tuple[TargetRequest, ...]
    api_key_env: str | None = None
    model: str | None = None


@dataclass(frozen=True)
class ChatTarget:
    """A resolved target: where to send, which model, which key (by its variable's name).

    ``base_url`` is the OpenAI-compatible base (``http://host:port/v1``). ``api_key`` holds
    the key's value for the request only: it is left out of ``repr`` and of every output."""

    label: str
    kind: Literal["deployment", "url"]
    base_url: str
    model: str
    model_source: ModelSource
    api_key_env: str | None = None
    api_key: str | None = field(default=None, repr=False, compare=False)


def split_names(values: Sequence[str]) -> list[str]:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]`` (``-d a,b -d c``); blanks dropped."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def pair_options(tokens: Sequence[OptionToken]) -> PairedOptions:
    """Pair each ``--api-key-env`` / ``--model`` with the ``--url`` before it.

    Raises UsageError for two values of one option for the same ``--url`` (or two before the
    first ``--url``), naming the option and the URL."""
    targets: list[TargetRequest] = []
    defaults: dict[str, str] = {}
    current: dict[str, str] | None = None  # the options of the last --url
    owners: list[dict[str, str] | None] = []
    for token in tokens:
        if token.kind == "deployment":
            for name in split_names([token.value]):
                targets.append(TargetRequest("deployment", name))
                owners.append(None)
        elif token.kind == "url":
            current = {}
            targets.append(TargetRequest("url", token.value))
            owners.append(current)
        else:
            into = defaults if current is None else current
            if token.kind in into:
                flag = "--" + token.kind.replace("_", "-")
                where = "before the first --url"
                if current is not None:
                    where = f"for --url {_last_url(targets)}"
                raise UsageError(
                    f"{flag} given twice {where} ({into[token.kind]!r} and {token.value!r})",
                    hint=f"{flag} belongs to the --url just before it; give it once per --url",
                )
            into[token.kind] = token.value
    paired = tuple(
        TargetRequest(t.kind, t.value, (own or {}).get("api_key_env"), (own or {}).get("model"))
        for t, own in zip(targets, owners, strict=True)
    )
    return PairedOptions(paired, defaults.get("api_key_env"), defaults.get("model"))


def _last_url(targets: Sequence[TargetRequest]) -> str:
    return next((t.value for t in reversed(targets) if t.kind == "url"), "")


def chat_base_url(url: str) -> str:
    """The OpenAI-compatible base URL for ``url`` (see the module docstring).

    >>> chat_base_url("http://127.0.0.1:11434")
    'http://127.0.0.1:11434/v1'

    Raises UsageError for anything but an http(s) URL with a host."""
    problem = api_url_problem(url)
    if problem is not None:
        raise UsageError(
            f"--url {shown_url(url)!r}: {problem}",
            hint="use e.g. --url http://127.0.0.1:8000/v1 (a key: --api-key-env VAR)",
        )
    parts = urlsplit(url.strip())
    path = openai_base_path(parts.path)
    for native in sorted(OLLAMA_NATIVE_PATHS, key=len, reverse=True):
        if path.endswith(native):  # Ollama's own API: its OpenAI-compatible one is beside it
            path = path[: -len(native)] + "/v1"
            break
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def key_from_env(name: str, environ: Mapping[str, str]) -> str:
    """The key in environment variable ``name``; UsageError (naming the variable, never a
    value) when it is unset, empty or not printable ASCII (it goes into an HTTP header)."""
    value = environ.get(name)
    if not value:
        raise UsageError(
            f"--api-key-env {name}: that variable is not set",
            hint=f"export {name}=... (the key itself is never printed)",
        )
    if not (value.isascii() and value.isprintable()):
        raise UsageError(f"--api-key-env {name}: the key must be printable ASCII")
    return value


def url_label(url: str) -> str:
    """A short column title for a URL: host, port and path without the scheme."""
    parts = urlsplit(url)
    return parts.netloc + parts.path.rstrip("/")


@dataclass(frozen=True)
class FoundDeployment:
    """What a deployment lookup found (plain data, so this layer needs no deployment code)."""

    name: str
    api_base_url: str  # http://host:port/v1
    served_model: str


def resolve_targets(
    paired: PairedOptions,
    deployments: Mapping[str, FoundDeployment],
    environ: Mapping[str, str],
    models_of: Callable[[str, str | None], list[str]],
) -> list[ChatTarget]:
    """Every target in command-line order, with its base URL, model and key.

    ``deployments`` maps each named deployment to what was found running. A URL without a
    ``--model`` uses the first model ``models_of(base_url, key)`` lists, else ``default``
    (what llama.cpp's server accepts). Labels are unique (``#2``, ``#3`` added to repeats).
    Raises UsageError for a bad URL or an unset key variable."""
    targets: list[ChatTarget] = []
    for request in paired.targets:
        key_env = request.api_key_env or paired.api_key_env
        key = key_from_env(key_env, environ) if key_env else None
        model = request.model or paired.model
        source: ModelSource = "--model"
        if request.kind == "deployment":
            found = deployments[request.value]
            base_url, label = found.api_base_url, found.name
            if model is None:
                model, source = found.served_model, "deployment"
        else:
            base_url = chat_base_url(request.value)
            label = url_label(base_url)
            if model is None:
                model, source = first_model(base_url, key, models_of)
        targets.append(ChatTarget(label, request.kind, base_url, model, source, key_env, key))
    return unique_labels(targets)


def first_model(
    base_url: str, key: str | None, models_of: Callable[[str, str | None], list[str]]
) -> tuple[str, ModelSource]:
    try:
        listed = models_of(base_url, key)
    except EndpointError:
        listed = []  # the chat request itself will say what is wrong with the server
    return (listed[0], "listed by the server") if listed else (DEFAULT_MODEL, "default")


def unique_labels(targets: list[ChatTarget]) -> list[ChatTarget]:
    seen: dict[str, int] = {}
    out: list[ChatTarget] = []
    for target in targets:
        seen[target.label] = seen.get(target.label, 0) + 1
        if seen[target.label] > 1:
            target = replace(target, label=f"{target.label} #{seen[target.label]}")
        out.append(target)
    return out
