"""Registration of every CLI command; each module stays import-light."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from llmdeploy.cli import (
        bench,
        build_cmd,
        chat_cmd,
        doctor,
        export_cmd,
        lifecycle_cmds,
        models_cmd,
        plan_cmd,
        profiles_cmd,
        render_cmd,
    )

    app.command("doctor")(doctor.doctor)
    app.add_typer(profiles_cmd.app, name="profiles")
    app.command("render")(render_cmd.render)
    app.command("build")(build_cmd.build)
    app.command("up")(lifecycle_cmds.up)
    app.command("down")(lifecycle_cmds.down)
    app.command("status")(lifecycle_cmds.status)
    app.command("logs")(lifecycle_cmds.logs)
    app.command("chat")(chat_cmd.chat)
    app.add_typer(bench.app, name="bench")
    app.command("plan")(plan_cmd.plan)
    app.add_typer(models_cmd.app, name="models")
    app.add_typer(export_cmd.app, name="export")
