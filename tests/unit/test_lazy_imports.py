"""Commands import only what they use: checked in a fresh interpreter through sys.modules.

``--help`` lists every command without building them (cli/commands.py); ``status`` talks to
the engines over the standard library (engines/http_api.py), and ``up --dry-run`` of a
llama.cpp profile plans without the other backends, the engine SDKs or the health poller.
Each case runs the real CLI in a child process (here against the fake engine APIs, never a
real engine) and fails when a module it should not need was imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from fake_engine_api import FakeEngineApi, serve

# heavy modules no quick command needs: httpx's own CLI (click, pygments), templating,
# the engine SDKs and their HTTP stack, the backends a llama.cpp profile does not use, and
# Typer's pydantic adapters (cli/plain_params.py)
EVERYWHERE = (
    "httpx", "click", "pygments", "jinja2", "docker", "podman", "requests", "urllib3",
    "typer._adapters",
    "llmdeploy.backends.vllm", "llmdeploy.backends.ollama", "typer.rich_utils",
)
CASES = {
    # the command modules are imported for their docstrings; no domain code is
    "help": (["--help"], (*EVERYWHERE, "rich", "pydantic", "llmdeploy.profiles",
                          "llmdeploy.deploy", "llmdeploy.engines", "llmdeploy.bench")),
    "status": (["status"], (*EVERYWHERE, "rich", "pydantic", "llmdeploy.planner",
                            "llmdeploy.backends",
                            "yaml", "llmdeploy.cli.bench")),
    "dry-run": (["up", "--profile", "edge-podman", "--dry-run"],
                (*EVERYWHERE[2:], "httpx", "rich", "llmdeploy.deploy.health",
                 "llmdeploy.deploy.lifecycle", "llmdeploy.planner.fit")),
}
CHILD = """
import json, sys
sys.argv = ["llmdeploy", *json.loads(sys.argv[1])]
from llmdeploy.cli.app import main
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
sys.stderr.write("\\nLOADED=" + json.dumps(sorted(sys.modules)) + f"\\nCODE={code}\\n")
"""


@pytest.fixture(scope="module")
def engines() -> Iterator[dict[str, str]]:
    """The child's environment: both engines at fake APIs (empty: nothing running)."""
    with serve("podman") as podman, serve("docker") as docker:
        yield {"LLMDEPLOY_PODMAN_SOCKET": podman.url, "DOCKER_HOST": docker.url}


def loaded(args: list[str], env: dict[str, str]) -> tuple[set[str], str, str]:
    child_env = {**os.environ, **env}
    child_env.pop("CONTAINER_HOST", None)
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True,
                          text=True, env=child_env, timeout=120)
    assert "CODE=0" in done.stderr, done.stderr[-2000:]
    modules = json.loads(done.stderr.split("LOADED=", 1)[1].splitlines()[0])
    return set(modules), done.stdout, done.stderr


@pytest.mark.parametrize("case", list(CASES))
def test_a_quick_command_imports_nothing_it_does_not_use(
    case: str, engines: dict[str, str]
) -> None:
    args, forbidden = CASES[case]
    modules, stdout, _ = loaded(args, engines)
    assert stdout.strip(), "the command printed nothing"
    wrong = sorted(m for m in modules if any(m == f or m.startswith(f + ".") for f in forbidden))
    assert wrong == [], f"llmdeploy {' '.join(args)} imported {wrong}"


def test_status_really_asked_both_engines(engines: dict[str, str]) -> None:
    """The empty answer is the engines' (listed over their APIs), not a shortcut."""
    _, stdout, _ = loaded(["status", "--json"], engines)
    assert json.loads(stdout) == []


def test_help_lists_every_command_with_its_own_docstring(engines: dict[str, str]) -> None:
    from llmdeploy.cli.commands import COMMANDS, target

    _, stdout, _ = loaded(["--help"], engines)
    for name in COMMANDS:
        found = target(name)
        doc = found.info.help if hasattr(found, "info") else found.__doc__
        first_words = " ".join(str(doc).split()[:3])
        assert f"{name}  " in stdout and first_words in stdout, (name, first_words)


def test_a_command_s_own_help_is_built_when_asked(engines: dict[str, str]) -> None:
    modules, stdout, _ = loaded(["up", "--help"], engines)
    assert "--warm-up" in stdout and "--dry-run" in stdout
    assert "llmdeploy.cli.lifecycle_cmds" in modules and "llmdeploy.cli.bench" not in modules


def test_status_lists_a_running_fake_deployment(engines: dict[str, str]) -> None:
    """The same child against an API that has one llmdeploy container: it is listed (so the
    empty answers above are not an artefact of a broken connection)."""
    with serve("docker") as docker:
        api: FakeEngineApi = docker
        api.add_image("localhost/img:1")
        from llmdeploy.core.run_spec import RunSpec
        from llmdeploy.engines.docker_engine import DockerEngine

        engine = DockerEngine(base_url=api.url)
        engine.run(RunSpec(name="llmdeploy-lazy", image="localhost/img:1", labels={
            "io.llmdeploy.managed": "true", "io.llmdeploy.deployment": "lazy",
            "io.llmdeploy.endpoint": "http://127.0.0.1:9", "io.llmdeploy.backend": "llamacpp"}))
        engine.close()
        env = {**engines, "DOCKER_HOST": api.url}
        _, stdout, _ = loaded(["status", "--json"], env)
        _, table, _ = loaded(["status"], env)
        _, named, _ = loaded(["status", "lazy", "--json"], env)
        missing = subprocess.run(
            [sys.executable, "-m", "llmdeploy", "status", "nosuch"], capture_output=True,
            text=True, timeout=120,
            env={k: v for k, v in {**os.environ, **env}.items() if k != "CONTAINER_HOST"})
    # a name that matches nothing is an error (exit 6), not an empty list
    assert missing.returncode == 6 and "no deployment named 'nosuch'" in missing.stderr
    assert [r["deployment"] for r in json.loads(named)] == ["lazy"]
    rows = json.loads(stdout)
    assert [(r["deployment"], r["engine"]) for r in rows] == [("lazy", "docker")]
    # the table shows the API base clients and `bench --url` take, as `up` prints it
    assert rows[0]["api_base_url"] == "http://127.0.0.1:9/v1"
    assert "http://127.0.0.1:9/v1" in table


def test_dry_run_prints_exactly_the_rendered_commands() -> None:
    """up --dry-run skips rendering the Containerfile, not a line of commands.sh."""
    from llmdeploy.deploy.up import dry_run_commands, render_deployment
    from llmdeploy.engines.selection import EngineChoice
    from llmdeploy.profiles.loader import resolve
    from llmdeploy.render.bundle import COMMANDS

    for name, engine in (("edge-podman", "podman"), ("cpu-docker", "docker"),
                         ("local-ollama", "podman")):
        profile = resolve(name).profile
        choice = EngineChoice(engine, "--engine")  # type: ignore[arg-type]
        rendered = next(f for f in render_deployment(profile, choice) if f.path == COMMANDS)
        assert dry_run_commands(profile, choice) == rendered.content, name
