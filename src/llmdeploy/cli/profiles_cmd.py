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
    from llmdeploy.profiles.loader import discover

    rows = []
    seen: set[str] = set()
    for source in discover():
        shadowed = source.name in seen
        seen.add(source.name)
        backend = source.raw.get("backend")
        rows.append(
            {
                "name": source.name,
                "origin": source.origin,
                "location": source.location,
                "engine": source.raw.get(
                    "engine", "(inherited)" if "extends" in source.raw else "auto"
                ),
                "backend": backend.get("kind") if isinstance(backend, dict) else "(inherited)",
                "description": source.raw.get("description", ""),
                "shadowed": shadowed,
            }
        )
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    table = Table("name", "origin", "engine", "backend", "description")
    for row in rows:
        style = "dim" if row["shadowed"] else None
        table.add_row(
            row["name"],
            row["origin"],
            row["engine"],
            row["backend"],
            row["description"],
            style=style,
        )
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
    path: Path = typer.Argument(..., help="Profile YAML file"),
    as_json: bool = JsonOpt,
) -> None:
    """Check one profile file (inheritance and interpolation included)."""
    from llmdeploy.cli.console import out, print_json
    from llmdeploy.profiles.loader import resolve

    resolved = resolve(profile_file=path)
    if as_json:
        print_json({"valid": True, "name": resolved.profile.name, "chain": list(resolved.chain)})
    else:
        out().print(f"[green]ok[/green] {path}: profile {resolved.profile.name!r} is valid")
