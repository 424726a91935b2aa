"""Renderers against golden files. Regenerate with UPDATE_GOLDEN=1 after a deliberate change.

``containerfiles/`` holds the build contexts the built-in profiles render, so CI scripts can
also build them with plain ``podman build``; this test keeps them identical to the renderer.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llmdeploy.deploy.plan import plan_deployment
from llmdeploy.core.engine_traits import DOCKER, PODMAN
from llmdeploy.profiles.loader import resolve
from llmdeploy.render.bundle import render_bundle
from llmdeploy.render.containerfile import render_build_context

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
FIXED_STORE = Path("/home/user/.cache/llmdeploy/models/smollm2-135m-instruct.q4_1-0123456789")


def check(path: Path, content: str) -> None:
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    assert path.is_file(), f"missing golden file {path} (run with UPDATE_GOLDEN=1)"
    assert path.read_text() == content, f"{path} differs from the renderer's output"


@pytest.mark.parametrize("profile_name", ["edge-podman", "cpu-docker"])
def test_reference_containerfiles_match_the_renderer(profile_name: str) -> None:
    profile = resolve(profile_name, env={}).profile
    plan = plan_deployment(profile, model_dir=FIXED_STORE, model_filename="m.gguf")
    assert plan.images.recipe is not None
    for item in render_build_context(plan.images.recipe):
        check(ROOT / "containerfiles" / "llamacpp-cpu" / item.path, item.content)


@pytest.mark.parametrize(("profile_name", "traits"), [("edge-podman", PODMAN),
                                                       ("cpu-docker", DOCKER)])
def test_run_commands_match_golden(profile_name: str, traits: object) -> None:
    profile = resolve(profile_name, env={}).profile
    plan = plan_deployment(profile, model_dir=FIXED_STORE,
                           model_filename="SmolLM2-135M-Instruct.Q4_1.gguf")
    files = {f.path: f.content for f in render_bundle(plan, traits)}  # type: ignore[arg-type]
    check(GOLDEN / f"{profile_name}.commands.sh", files["commands.sh"])
    check(GOLDEN / f"{profile_name}.run-spec.json", files["run-spec.json"])
