"""Renderers against golden files. Regenerate with UPDATE_GOLDEN=1 after a deliberate change.

Every built-in profile (llama.cpp, vLLM and Ollama; CPU and GPU) and two accelerator variants
are rendered for Podman and Docker; every file of the bundle (commands.sh, run-spec.json, the
build context, the Modelfile) is compared with ``tests/golden/<case>/<engine>/``.

``containerfiles/`` holds the build contexts the built-in profiles render, so CI scripts can
also build them with plain ``podman build``; a test keeps them identical to the renderer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from llmdeploy.core.engine_traits import DOCKER, PODMAN, EngineTraits
from llmdeploy.deploy.plan import plan_deployment
from llmdeploy.profiles.loader import resolve
from llmdeploy.profiles.merge import deep_merge
from llmdeploy.profiles.schema import Profile
from llmdeploy.render.bundle import render_bundle
from llmdeploy.render.containerfile import render_build_context

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
STORE = Path("/home/user/.cache/llmdeploy/models")
DATA = STORE / "_data"

# case -> (built-in profile, overrides): the built-ins, and GPU variants of the CPU ones
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "edge-podman": ("edge-podman", {}),
    "cpu-docker": ("cpu-docker", {}),
    "cpu-vllm": ("cpu-vllm", {}),
    "prod-vllm": ("prod-vllm", {}),
    "local-ollama": ("local-ollama", {}),
    "llamacpp-cuda": ("edge-podman", {"accelerator": "cuda", "build": None, "image": None}),
    "vllm-rocm": ("prod-vllm", {"accelerator": "rocm"}),
}
ENGINES = {"podman": PODMAN, "docker": DOCKER}


def check(path: Path, content: str) -> None:
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    assert path.is_file(), f"missing golden file {path} (run with UPDATE_GOLDEN=1)"
    assert path.read_text() == content, f"{path} differs from the renderer's output"


def profile_for(case: str) -> Profile:
    name, overrides = CASES[case]
    data = resolve(name, env={}).profile.model_dump(mode="json", exclude_none=True)
    merged = deep_merge(data, {k: v for k, v in overrides.items() if v is not None})
    for key in [k for k, v in overrides.items() if v is None]:
        merged.pop(key, None)
    return Profile.model_validate(merged)


def model_location(profile: Profile) -> tuple[Path, str]:
    """A machine-independent store entry for the profile's model, as the store names it."""
    ref = profile.model.ref
    entry = STORE / f"{ref.default_served_name.split('/')[-1].lower()}-0123456789"
    if profile.model.convert == "hf":
        return entry.with_name(entry.name + "-hf-bfloat16"), ""
    return entry, "" if ref.names_folder else ref.filename


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_rendered_file_matches_golden(case: str, engine: str) -> None:
    profile = profile_for(case)
    model_dir, filename = model_location(profile)
    plan = plan_deployment(profile, model_dir=model_dir, model_filename=filename, data_root=DATA)
    traits: EngineTraits = ENGINES[engine]
    files = render_bundle(plan, traits)
    folder = GOLDEN / case / engine
    for item in files:
        check(folder / item.path, item.content)
    if not UPDATE:  # no stale golden file for a file the renderer no longer writes
        written = {item.path for item in files}
        kept = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
        assert kept == written


@pytest.mark.parametrize("profile_name", ["edge-podman", "cpu-docker"])
def test_reference_containerfiles_match_the_renderer(profile_name: str) -> None:
    profile = resolve(profile_name, env={}).profile
    plan = plan_deployment(profile, model_dir=STORE / "m", model_filename="m.gguf")
    assert plan.images.recipe is not None
    for item in render_build_context(plan.images.recipe):
        check(ROOT / "containerfiles" / "llamacpp-cpu" / item.path, item.content)
