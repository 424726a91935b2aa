"""Plain ``str``, ``Path`` and ``bool`` options coerced without building a pydantic validator.

Typer (0.29) turns each parameter's value into its annotated type through a pydantic
``TypeAdapter`` that it builds the first time the parameter is processed, and it processes
every parameter of the command that runs, given or not: ``llmdeploy status`` imported
pydantic and built four adapters (~105 ms of its ~250 ms) to pass ``None`` through. For the
two types nearly all our options have, Typer's adapter is an identity on what a command line
can hold:

- ``str``: Typer's ``_parse_cli_str`` returns a ``str`` unchanged (it decodes ``bytes`` and
  ``str()``-s anything else), and pydantic's ``str`` validation returns it as it is;
- ``Path`` (no ``path_type``): pydantic's ``Path`` validation of a ``str`` is ``Path(value)``;
  Typer then runs ``coerce_cli_path`` (the ``exists``/``dir_okay``/... checks), which this
  module calls the same way;
- ``bool``: a ``bool`` value (a flag's) is returned as it is (Typer skips its adapter for a
  flag's ``bool`` only after building it).

:func:`use_plain_coercion` gives such parameters a coercion that does exactly that for a
``str`` (or a ``bool`` flag's ``bool``) and hands any other value (``bytes``, a string for a
``bool``, a non-``str`` default, a path ``os.stat`` refuses) to Typer's own adapter, built
then, so every result and every error message stays Typer's.
``tests/unit/test_plain_params.py`` compares the two on every ``str``/``Path``/``bool``
parameter of every command. With a Typer that has no such coercion layer nothing is changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:  # Typer's pydantic coercion layer; Typers without it need nothing here
    from typer._coercion import RuntimeParam, build_runtime_param
    from typer._param_types import coerce_cli_path
    from typer.core import _TyperParameter
except ImportError:  # pragma: no cover - depends on the installed Typer
    RuntimeParam = None  # type: ignore[assignment,misc]


if RuntimeParam is not None:

    @dataclass(frozen=True)
    class PlainRuntimeParam(RuntimeParam):
        """Typer's coercion for a plain ``str``, ``Path`` or ``bool`` parameter, without
        pydantic for the values above; anything else goes through Typer's adapter."""

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if self.annotation is bool and type(value) is bool:
                return value
            if type(value) is str and self.annotation is str:
                return value
            if type(value) is str and self.annotation is Path:
                try:
                    return coerce_cli_path(
                        Path(value), self.parameter_info, path_type=Path, param=param, ctx=ctx
                    )
                except ValueError:
                    pass  # os.stat's (a NUL in the path): Typer's adapter makes it a usage error
            typer_own = build_runtime_param(param.type_descriptor)
            return typer_own._coerce_value(value, param=param, ctx=ctx)


def is_plain(param: Any) -> bool:
    """Whether ``param`` is a Typer parameter whose adapter is an identity (``str``, a
    ``bool`` flag) or ``Path(value)`` + Typer's path checks (``Path``) for a ``str`` value."""
    if RuntimeParam is None or not isinstance(param, _TyperParameter):
        return False
    descriptor = param.type_descriptor
    info = descriptor.parameter_info
    if descriptor.file_annotation is not None or info.parser is not None:
        return False
    if descriptor.annotation in (str, bool):
        return True
    return descriptor.annotation is Path and info.path_type is None


def _plain(param: Any) -> Any:
    if is_plain(param) and param._runtime_param is None:
        param._runtime_param = PlainRuntimeParam(
            parameter_info=param.type_descriptor.parameter_info,
            annotation=param.type_descriptor.annotation,
        )
    return param


def use_plain_coercion(command: Any) -> None:
    """Give every plain ``str``/``Path``/``bool`` parameter of ``command`` (and of its built
    subcommands, for a group) :class:`PlainRuntimeParam`; other parameters keep Typer's.

    That includes ``--help``, which click creates on first use (``get_help_option``, given
    the context's option names) and processes like any option (its value is ``None`` unless
    given)."""
    if RuntimeParam is None:
        return
    for param in getattr(command, "params", ()):
        _plain(param)
    get_help_option = getattr(command, "get_help_option", None)
    if get_help_option is not None and not hasattr(get_help_option, "plain"):

        def plain_help_option(ctx: Any) -> Any:
            option = get_help_option(ctx)
            return None if option is None else _plain(option)

        plain_help_option.plain = True  # type: ignore[attr-defined]
        command.get_help_option = plain_help_option
    subcommands = getattr(command, "commands", None)
    if isinstance(subcommands, dict):  # a built group (not the root's lazy mapping)
        for sub in subcommands.values():
            use_plain_coercion(sub)
