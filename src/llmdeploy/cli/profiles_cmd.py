"""`llmdeploy profiles list | show | validate`."""

from __future__ import annotations

from pathlib import Path

import typer

from llmdeploy.cli.options import JsonOpt

app = typer.Typer(help="List, show and validate deployment profiles.", no_args_is_help=True)


@app.command("list")
def list_profiles(as_json: bool = JsonOpt) -> None:
    """List built-in and user profiles (first match of a name wins)."""
    from llmdeploy.cli.console import out, print_json
    from llmdeploy.profiles.catalog import catalog

    rows = [entry.to_dict() for entry in catalog()]
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    columns = ("name", "origin", "engine", "backend", "accelerator", "description")
    table = Table(*columns)
    for row in rows:
        style = "dim" if row["shadowed"] else ("red" if not row["valid"] else None)
        table.add_row(*(str(row[key]) for key in columns), style=style)
    out().print(table)


@app.command("show")
def show(
    name: str = typer.Argument(..., help="Profile name"),
    as_json: bool = JsonOpt,
) -> None:
    """Print the fully resolved profile (after extends and ${VAR} interpolation)."""
    from llmdeploy.cli.console import out, print_json
    from llmdeploy.profiles.loader import resolve

    resolved = resolve(name)
    data = resolved.profile.model_dump(mode="json")
    if as_json:
        print_json({"profile": data, "chain": list(resolved.chain)})
        return
    import yaml

    out().print(f"# resolved from: {' <- '.join(resolved.chain)}", style="dim")
    out().print(yaml.safe_dump(data, sort_keys=False), markup=False, end="")


@app.command("validate")
def validate(
    path: Path = typer.Argument(..., help="A profile YAML file, or the name of a profile."),
    as_json: bool = JsonOpt,
) -> None:
    """Check one profile (inheritance and interpolation included): a file, or by name."""
    from llmdeploy.cli.console import out, print_json
    from llmdeploy.profiles.loader import resolve

    by_name = not path.exists() and path.suffix not in (".yaml", ".yml") and "/" not in str(path)
    resolved = resolve(str(path)) if by_name else resolve(profile_file=path)
    shown = resolved.source.location if by_name else str(path)
    if as_json:
        print_json({"valid": True, "name": resolved.profile.name, "chain": list(resolved.chain)})
    else:
        out().print(f"[green]ok[/green] {shown}: profile {resolved.profile.name!r} is valid")
