"""The CI examples in examples/ci/ stay runnable: every `llmdeploy` command line in them is
parsed by the real CLI (an option renamed or removed fails here, not in someone's pipeline),
their YAML loads, and the profile they deploy validates."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer
import yaml

from llmdeploy.cli.app import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "ci"
WORKFLOWS = ("github-actions.yml", "gitlab-ci.yml")


def _scripts(node: object) -> list[str]:
    """Every shell script string in a workflow (GitHub `run:`, GitLab `script:` lists)."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("run", "script", "before_script", "after_script"):
                found += [value] if isinstance(value, str) else [str(v) for v in value]
            else:
                found += _scripts(value)
    elif isinstance(node, list):
        for item in node:
            found += _scripts(item)
    return found


def _llmdeploy_lines(script: str) -> list[list[str]]:
    """The argv (after `llmdeploy`) of each llmdeploy command in a script, split the way a
    POSIX shell would (quotes kept together; ``;`` ``&&`` ``|`` end a command, ``>`` starts a
    redirection); shell variables become placeholders."""
    lines: list[list[str]] = []
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        command: list[str] = []
        redirected = False
        for token in [*lexer, ";"]:
            if token in (";", "&&", "||", "|", "&"):
                if command[:1] == ["llmdeploy"]:
                    lines.append([re.sub(r"\$\{?\w+\}?", "X", w) for w in command[1:]])
                command, redirected = [], False
            elif token.startswith(">") or token.startswith("<"):
                redirected = True
            elif not redirected:
                command.append(token)
    return lines


def _commands() -> list[tuple[str, list[str]]]:
    found = []
    for name in WORKFLOWS:
        data = yaml.safe_load((EXAMPLES / name).read_text())
        for script in _scripts(data):
            found += [(name, argv) for argv in _llmdeploy_lines(script)]
    return found


def test_the_examples_use_build_up_bench_and_down() -> None:
    used = {(name, argv[0]) for name, argv in _commands()}
    for name in WORKFLOWS:
        assert {(name, c) for c in ("build", "up", "bench", "down")} <= used, used


@pytest.mark.parametrize(("workflow", "argv"), _commands(),
                         ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_every_llmdeploy_command_line_parses(workflow: str, argv: list[str]) -> None:
    group = typer.main.get_command(app)  # the lazy root group (Typer bundles its own click)
    with group.make_context("llmdeploy", list(argv), resilient_parsing=True) as ctx:
        name, command, rest = group.resolve_command(ctx, list(argv))  # type: ignore[attr-defined]
        assert command is not None, f"{workflow}: no command {argv[0]}"
        command.make_context(name or argv[0], rest, parent=ctx)  # raises on a bad option


def test_the_example_profile_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmdeploy.profiles.loader import resolve

    monkeypatch.setenv("LLM_IMAGE", "ghcr.io/example/llm-edge:v1-candidate")
    resolved = resolve(None, profile_file=EXAMPLES / "llm-edge.yaml")
    assert resolved.profile.image == "ghcr.io/example/llm-edge:v1-candidate"
    assert resolved.profile.build is not None  # build has something to build
