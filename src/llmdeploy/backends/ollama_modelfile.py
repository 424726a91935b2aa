"""Render an Ollama Modelfile, and the ``/api/create`` body that defines the same model.

Pure: a ``ModelDefinition`` (the served name, ``FROM``, parameters, ``TEMPLATE``, ``SYSTEM``)
becomes Modelfile text through a Jinja2 template (strict about undefined variables) and the
JSON body of Ollama's create API, so what ``llmdeploy up`` sends and the Modelfile a user
reads cannot drift apart.

Quoting follows Ollama's own Modelfile parser (``parser/parser.go``, Ollama 0.32.15), which has
no escape sequences: a value is bare, ``"..."`` or ``\"\"\"...\"\"\"``, and it ends at the first
newline where the text read so far, trimmed, is a complete quoted (or bare) value. Each value is
written in the first form that reads back unchanged under those rules; text that no form can
carry (a line of a multi-line template that itself ends in three quotes, control characters
the parser would silently drop) is refused with a RenderError rather than rendered wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jinja2

from llmdeploy.errors import RenderError
from llmdeploy.profiles import modelfile_syntax
from llmdeploy.profiles.backend_options import OLLAMA_PARAMETER_TYPES, OllamaBackend
from llmdeploy.profiles.modelfile_syntax import (
    PATH_FORMS,
    STRING_FORMS,
    TEXT_FORMS,
    UnquotableError,
)

MODELFILE = "Modelfile"
TEMPLATE_NAME = "Modelfile.j2"

ParameterValue = int | float | bool | str


@dataclass(frozen=True)
class ModelDefinition:
    """An Ollama model as a Modelfile describes it."""

    name: str  # the model Ollama serves, e.g. smollm2-135m
    source: str  # FROM: a GGUF path inside the container, or an Ollama model name
    from_file: bool  # True: ``source`` is a GGUF file; False: an Ollama model to build on
    parameters: tuple[tuple[str, ParameterValue], ...]  # Modelfile order; ``stop`` repeats
    template: str | None = None
    system: str | None = None

    def parameter_dict(self) -> dict[str, Any]:
        """The parameters as /api/create takes them: typed values, ``stop`` as a list."""
        result: dict[str, Any] = {}
        for key, value in self.parameters:
            if OLLAMA_PARAMETER_TYPES.get(key) is list:
                result.setdefault(key, []).append(value)
            else:
                result[key] = value
        return result


def model_definition(
    options: OllamaBackend, *, name: str, source: str, from_file: bool
) -> ModelDefinition:
    """The definition a profile's Ollama options give; ``num_ctx`` is always the first line."""
    parameters: list[tuple[str, ParameterValue]] = [("num_ctx", options.num_ctx)]
    if options.temperature is not None:
        parameters.append(("temperature", float(options.temperature)))
    for key in sorted(options.parameters):
        parameters.append((key, typed_parameter(key, options.parameters[key])))
    parameters += [("stop", item) for item in options.stop]
    return ModelDefinition(
        name=name,
        source=source,
        from_file=from_file,
        parameters=tuple(parameters),
        template=options.template,
        system=options.system,
    )


def typed_parameter(key: str, value: str | int | float) -> ParameterValue:
    """Convert a profile value to the JSON type Ollama's options use for ``key``."""
    kind = OLLAMA_PARAMETER_TYPES.get(key, str)
    text = str(value).strip()
    if kind is bool:
        return value if isinstance(value, bool) else text in ("1", "t", "T", "TRUE", "true", "True")
    if kind is int:
        return int(text)
    if kind is float:
        return float(text)
    return str(value)


def render_modelfile(definition: ModelDefinition, *, profile_name: str) -> str:
    """The Modelfile text; raises RenderError for a value no Modelfile quoting can carry."""
    variables: dict[str, object] = {
        "model_name": definition.name,
        "profile_name": profile_name,
        "source": quote_value(definition.source, field="FROM", forms=PATH_FORMS),
        "parameters": [
            (key, quote_value(_parameter_text(value), field=f"PARAMETER {key}", forms=_forms(key)))
            for key, value in definition.parameters
        ],
        "template": _optional(definition.template, "TEMPLATE"),
        "system": _optional(definition.system, "SYSTEM"),
    }
    templates = resources.files("llmdeploy.backends").joinpath("templates")
    text = templates.joinpath(TEMPLATE_NAME).read_text("utf-8")
    environment = jinja2.Environment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    )
    try:
        return environment.from_string(text).render(**variables)
    except jinja2.UndefinedError as exc:
        raise RenderError(f"template {TEMPLATE_NAME}: {exc.message}") from exc


def create_body(definition: ModelDefinition, files: dict[str, str] | None) -> dict[str, Any]:
    """The JSON body of ``POST /api/create`` (Ollama 0.32) for this definition.

    ``files`` maps a GGUF file name to the ``sha256:<hex>`` digest of its uploaded blob; it is
    required when the definition builds on a file, and unused when it builds on a model.
    """
    body: dict[str, Any] = {"model": definition.name}
    if definition.from_file:
        if not files:
            raise ValueError("a model built from a GGUF file needs the digest of its blob")
        body["files"] = dict(files)
    else:
        body["from"] = definition.source
    body["parameters"] = definition.parameter_dict()
    if definition.template is not None:
        body["template"] = definition.template
    if definition.system is not None:
        body["system"] = definition.system
    return body


# -- quoting (the rules live in profiles.modelfile_syntax, shared with the schema) -------------


def _forms(key: str) -> Sequence[str]:
    return STRING_FORMS if OLLAMA_PARAMETER_TYPES.get(key, str) in (list, str) else PATH_FORMS


def _optional(value: str | None, field: str) -> str | None:
    return None if value is None else quote_value(value, field=field, forms=TEXT_FORMS)


def _parameter_text(value: ParameterValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def quote_value(value: str, *, field: str, forms: Sequence[str] = TEXT_FORMS) -> str:
    """``value`` as Modelfile text; RenderError when no form carries it (the schema refuses
    such profiles first, so this only guards definitions built in code)."""
    try:
        return modelfile_syntax.quote_value(value, field=field, forms=forms)
    except UnquotableError as exc:
        raise RenderError(str(exc), hint=exc.hint) from exc
