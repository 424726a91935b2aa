"""The reference Modelfiles in ``modelfiles/`` against the renderer.

``modelfiles/<profile>.Modelfile`` is the Modelfile of each built-in Ollama profile, as
``llmdeploy render`` writes it and as ``llmdeploy up`` sends it to Ollama's create API; this
test keeps the files identical to the renderer. Regenerate with UPDATE_GOLDEN=1 after a
deliberate change.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fakes.modelfile_parser import parse_modelfile
from llmdeploy.backends.ollama import definition_for
from llmdeploy.backends.ollama_modelfile import create_body, render_modelfile
from llmdeploy.constants import MODEL_MOUNT_DIR
from llmdeploy.core.launch import ModelMount
from llmdeploy.profiles.loader import resolve

ROOT = Path(__file__).resolve().parents[2]
MODELFILES = ROOT / "modelfiles"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
OLLAMA_PROFILES = ["local-ollama"]
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def rendered(profile_name: str) -> str:
    profile = resolve(profile_name, env={}).profile
    definition = definition_for(profile, ModelMount(MODEL_MOUNT_DIR, GGUF))
    return render_modelfile(definition, profile_name=profile.name)


@pytest.mark.parametrize("profile_name", OLLAMA_PROFILES)
def test_reference_modelfiles_match_the_renderer(profile_name: str) -> None:
    path = MODELFILES / f"{profile_name}.Modelfile"
    content = rendered(profile_name)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    assert path.is_file(), f"missing golden file {path} (run with UPDATE_GOLDEN=1)"
    assert path.read_text() == content, f"{path} differs from the renderer's output"


@pytest.mark.parametrize("profile_name", OLLAMA_PROFILES)
def test_reference_modelfiles_read_back_as_the_model_llmdeploy_creates(profile_name: str) -> None:
    text = (MODELFILES / f"{profile_name}.Modelfile").read_text()
    parsed = parse_modelfile(text).create_request()  # Ollama's parser rules, ported
    profile = resolve(profile_name, env={}).profile
    body = create_body(definition_for(profile, ModelMount(MODEL_MOUNT_DIR, GGUF)),
                       {GGUF: "sha256:" + "0" * 64})
    assert parsed["from"] == f"{MODEL_MOUNT_DIR}/{GGUF}"
    assert parsed["parameters"] == body["parameters"]
    assert parsed["parameters"]["num_ctx"] == profile.backend.num_ctx  # type: ignore[union-attr]
    assert all(parsed.get(k) == body.get(k) for k in ("template", "system"))


def test_every_builtin_ollama_profile_has_a_reference_modelfile() -> None:
    from llmdeploy.profiles.loader import builtin_sources

    ollama = {src.name for src in builtin_sources()
              if (src.raw.get("backend") or {}).get("kind") == "ollama"}
    assert ollama == set(OLLAMA_PROFILES)
