"""Every CLI command, loaded only when it is used.

Typer turns a function into a click command by reading each parameter's annotation
(``typing.get_type_hints`` and ``inspect.signature`` per parameter); for the 50-odd
functions behind llmdeploy's commands that was most of ``llmdeploy --help``'s own time, and
every command paid it, whichever one ran. :class:`LazyGroup` is the root group instead: a
command's module is imported, and its click command built, when that command runs or shows
its own help. The root ``--help`` lists each command with the first sentence of its own
docstring (or its Typer's ``help``): the text comes from the command's code, as when Typer
builds it, without building the command.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator, MutableMapping
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from llmdeploy.cli.plain_params import use_plain_coercion

# name -> (module, attribute): a command function, or a typer.Typer for a command group
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("llmdeploy.cli.doctor", "doctor"),
    "profiles": ("llmdeploy.cli.profiles_cmd", "app"),
    "render": ("llmdeploy.cli.render_cmd", "render"),
    "build": ("llmdeploy.cli.build_cmd", "build"),
    "up": ("llmdeploy.cli.lifecycle_cmds", "up"),
    "down": ("llmdeploy.cli.lifecycle_cmds", "down"),
    "status": ("llmdeploy.cli.lifecycle_cmds", "status"),
    "logs": ("llmdeploy.cli.lifecycle_cmds", "logs"),
    "chat": ("llmdeploy.cli.chat_cmd", "chat"),
    "route": ("llmdeploy.cli.route_cmd", "route"),
    "bench": ("llmdeploy.cli.bench", "app"),
    "plan": ("llmdeploy.cli.plan_cmd", "plan"),
    "models": ("llmdeploy.cli.models_cmd", "app"),
    "export": ("llmdeploy.cli.export_cmd", "app"),
}


def target(name: str) -> Any:
    """The function or ``typer.Typer`` behind command ``name`` (its module imported now)."""
    module, attribute = COMMANDS[name]
    return getattr(importlib.import_module(module), attribute)


def build(name: str) -> Any:
    """The click command (or group) Typer makes of command ``name``, with plain help.

    Built through a one-command Typer, Typer's public way to turn a function or sub-Typer
    into a click command; the parent's ``rich_markup_mode=None`` reaches the subcommands.
    Plain ``str``/``Path``/``bool`` options are coerced without pydantic (``cli/plain_params.py``).
    """
    found = target(name)
    holder = typer.Typer(rich_markup_mode=None, add_completion=False)
    holder.callback()(_holder)  # a callback makes it a group even with one command
    if isinstance(found, typer.Typer):
        holder.add_typer(found, name=name)
    else:
        # a command needing its own click class (chat keeps its options' order) names it
        holder.command(name, cls=getattr(found, "command_class", None))(found)
    group = typer.main.get_command(holder)
    assert isinstance(group, TyperGroup)
    command = group.commands[name]
    use_plain_coercion(command)
    return command


def short_help(name: str, limit: int) -> str:
    """The one line the root ``--help`` shows for ``name``: the first sentence of its
    docstring (a command) or of its ``help=`` (a command group), as click shortens them."""
    found = target(name)
    if isinstance(found, typer.Typer):
        text = found.info.help if isinstance(found.info.help, str) else ""
    else:
        text = inspect.getdoc(found) or ""
    return TyperCommand(name=name, help=text).get_short_help_str(limit)


def _holder() -> None:
    pass


class LazyCommands(MutableMapping[str, Any]):
    """``COMMANDS`` as the mapping click groups keep their commands in; an entry is built
    on first access and kept."""

    def __init__(self) -> None:
        self._built: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            if name not in COMMANDS:
                raise KeyError(name)
            self._built[name] = build(name)
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        raise TypeError("llmdeploy's commands cannot be removed")

    def __iter__(self) -> Iterator[str]:
        yield from COMMANDS
        yield from (name for name in self._built if name not in COMMANDS)

    def __len__(self) -> int:
        return len(set(COMMANDS) | set(self._built))

    def __contains__(self, name: object) -> bool:
        return name in COMMANDS or name in self._built


class LazyGroup(TyperGroup):
    """The root ``llmdeploy`` group: commands from :data:`COMMANDS`, built on first use."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LazyCommands()
        use_plain_coercion(self)  # --version, --debug

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """The commands section of ``--help`` without building every command."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, short_help(name, limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)
