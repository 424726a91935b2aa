"""Plain str/Path/bool options (cli/plain_params.py) coerce exactly as Typer's own adapters.

Each case runs the same value through the coercion ``use_plain_coercion`` installs and
through the pydantic adapter Typer builds for that parameter, and expects the same value, or
the same error message, from both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
import typer.testing
from typer._click import Context
from typer._click.exceptions import BadParameter
from typer._coercion import build_runtime_param
from typer.testing import CliRunner

from llmdeploy.cli.commands import COMMANDS, build
from llmdeploy.cli.plain_params import PlainRuntimeParam, is_plain, use_plain_coercion

PATH_OPT = typer.Option(..., exists=True, dir_okay=False, readable=True)
FOLDER_OPT = typer.Option(Path("."), file_okay=False, resolve_path=True)
LABEL_OPT = typer.Option("x")
FLAG_OPT = typer.Option(False)
VALUE_OPT = typer.Option(None)
STRINGS = ["x", "", "-", " spaced ", "a\x00b", "\udcff", "é", "/no/such/path", "0", "true"]


def outcome(coerce: Any, value: Any, param: Any, ctx: Context) -> tuple[str, Any]:
    try:
        return "value", coerce(value, param, ctx)
    except BadParameter as exc:
        return "usage error", exc.format_message()
    except ValueError as exc:  # what Typer lets through (os.stat of a path with a NUL)
        return type(exc).__name__, str(exc)


def typer_own(value: Any, param: Any, ctx: Context) -> Any:
    return build_runtime_param(param.type_descriptor).coerce(value, param=param, ctx=ctx)


def plain(value: Any, param: Any, ctx: Context) -> Any:
    return param.get_runtime_param().coerce(value, param=param, ctx=ctx)


def every_param(command: Any) -> list[tuple[Any, Any]]:
    found = [(command, param) for param in command.params]
    for sub in getattr(command, "commands", {}).values():
        found += every_param(sub)
    return found


def values_for(param: Any, tmp_path: Path) -> list[Any]:
    annotation = param.type_descriptor.annotation
    if annotation is bool:
        return [True, False, None, "true", "no", "maybe"]
    extra: list[Any] = [None, b"bytes", 7]
    if annotation is Path:
        extra += [str(tmp_path), str(tmp_path / "file.txt"), Path("x")]
    return [*STRINGS, *extra]


def test_every_plain_param_of_every_command_coerces_as_typer(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    checked = 0
    for name in COMMANDS:
        for command, param in every_param(build(name)):
            if not is_plain(param):
                continue
            assert isinstance(param.get_runtime_param(), PlainRuntimeParam), param.name
            ctx = Context(command)
            for value in values_for(param, tmp_path):
                want = outcome(typer_own, value, param, ctx)
                got = outcome(plain, value, param, ctx)
                assert got == want, (name, param.name, value)
                checked += 1
    assert checked > 500  # every command's options were seen


def test_path_checks_and_their_messages_are_typers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Path option with exists/dir_okay/file_okay/readable/resolve_path: the same values
    and the same usage errors, through the CLI, with and without the plain coercion."""
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "locked").mkdir(mode=0o000)

    def command(
        path: Path = PATH_OPT, folder: Path = FOLDER_OPT, label: str = LABEL_OPT,
        flag: bool = FLAG_OPT,
    ) -> None:
        typer.echo(f"{path!r} {folder!r} {label!r} {flag!r}")

    def run(plain_coercion: bool, args: list[str]) -> tuple[int, str]:
        app = typer.Typer(add_completion=False, rich_markup_mode=None)
        app.command()(command)

        def get_command(typer_app: typer.Typer) -> Any:
            click_command = typer.main.get_command(typer_app)
            if plain_coercion:
                use_plain_coercion(click_command)
            return click_command

        with monkeypatch.context() as patch:
            patch.setattr(typer.testing, "_get_command", get_command)
            result = CliRunner().invoke(app, args)
        return result.exit_code, result.output

    cases = [
        ["--path", str(tmp_path / "file.txt")],
        ["--path", str(tmp_path / "missing")],
        ["--path", str(tmp_path)],
        ["--path", str(tmp_path / "file.txt"), "--folder", str(tmp_path / "file.txt")],
        ["--path", str(tmp_path / "file.txt"), "--folder", "."],
        ["--path", str(tmp_path / "file.txt"), "--label", "", "--flag"],
        [],
        ["--help"],
    ]
    for args in cases:
        assert run(True, args) == run(False, args), args
    assert run(True, cases[1])[0] == 2  # the check ran: a missing file is a usage error


@pytest.mark.parametrize("annotation", [int, float, list[str]])
def test_other_types_keep_typers_adapter(annotation: Any) -> None:
    def command(value: Any = VALUE_OPT) -> None:
        pass

    command.__annotations__["value"] = annotation
    app = typer.Typer(add_completion=False)
    app.command()(command)
    click_command = typer.main.get_command(app)
    use_plain_coercion(click_command)
    (param,) = click_command.params
    assert not is_plain(param) and param._runtime_param is None
