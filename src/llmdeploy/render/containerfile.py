"""Render a backend's Containerfile (a Jinja2 template, strict about undefined variables)."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from llmdeploy.core.launch import BuildRecipe, RenderedFile
from llmdeploy.errors import RenderError

CONTAINERFILE = "Containerfile"
BAKED_TEMPLATE = "baked.Containerfile.j2"
BAKED_MODEL_DIR = "model"  # the weights' folder in the baked build context


def _template_text(name: str, custom_dir: Path | None) -> str:
    if custom_dir is not None:
        return (custom_dir / name).read_text(encoding="utf-8")
    return resources.files("llmdeploy.render").joinpath("templates", name).read_text("utf-8")


def render_template(text: str, variables: Mapping[str, object], *, name: str) -> str:
    import jinja2  # ~50 ms: imported by what renders, not by what only names the file

    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # Containerfiles are not HTML
    )
    try:
        return env.from_string(text).render(**variables)
    except jinja2.UndefinedError as exc:
        raise RenderError(
            f"template {name}: {exc.message}",
            hint=f"variables available: {', '.join(sorted(variables))}",
        ) from exc
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(f"template {name}, line {exc.lineno}: {exc.message}") from exc


def render_build_context(
    recipe: BuildRecipe, *, custom_containerfile: Path | None = None
) -> list[RenderedFile]:
    """The files of a build context: the Containerfile and the files it COPYs."""
    if custom_containerfile is not None:
        try:
            text = custom_containerfile.read_text(encoding="utf-8")
        except OSError as exc:
            raise RenderError(f"cannot read Containerfile {custom_containerfile}: {exc}") from exc
        name = str(custom_containerfile)
    else:
        text = _template_text(recipe.template, None)
        name = recipe.template
    files = [RenderedFile(CONTAINERFILE, render_template(text, recipe.variables, name=name))]
    for extra in recipe.context_files:
        files.append(RenderedFile(extra, _template_text(extra, None), executable=True))
    return files


def render_baked_containerfile(
    *, base_image: str, model_dir: str, baked_file: str, model_ref: str, version: str
) -> RenderedFile:
    """The Containerfile of a baked image: ``base_image`` plus the context's ``model/`` folder
    copied to ``model_dir`` (the mount point the argv names), with the labels ``up`` reads.

    ``baked_file``: the model file in it (``.`` when the model is the folder); ``model_ref``:
    the reference as shown publicly (no credentials).
    """
    variables = {
        "base_image": base_image,
        "model_dir": model_dir.rstrip("/") or "/",
        "baked_file": baked_file,
        "model_ref": model_ref,
        "llmdeploy_version": version,
    }
    text = _template_text(BAKED_TEMPLATE, None)
    return RenderedFile(CONTAINERFILE, render_template(text, variables, name=BAKED_TEMPLATE))
