"""The golden cases of the single-host exports (Quadlet, compose): the render cases of
test_golden_files (every built-in profile and two GPU variants) as ExportInputs, with weight
sizes fixed so the files do not depend on this machine's store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_golden_files import CASES, DATA, GOLDEN, UPDATE, check, model_location, profile_for

from llmdeploy.core.launch import RenderedFile
from llmdeploy.deploy.plan import plan_deployment
from llmdeploy.profiles.merge import deep_merge
from llmdeploy.profiles.schema import Profile
from llmdeploy.render.inputs import ExportInputs

# the weights' size on disk per model reference scheme (SmolLM2 Q4_1: 98 MB; Qwen2.5-7B bf16)
WEIGHTS = {"pkg": 98_000_000, "hf": 15_230_000_000}
EXPORT_CASES = sorted(CASES)


def inputs_for_profile(profile: Profile, weights_bytes: int | None = None) -> ExportInputs:
    model_dir, filename = model_location(profile)
    plan = plan_deployment(profile, model_dir=model_dir, model_filename=filename, data_root=DATA)
    if weights_bytes is None:
        weights_bytes = WEIGHTS.get(profile.model.ref.scheme)
    return ExportInputs(plan=plan, profile=profile, weights_bytes=weights_bytes)


def export_inputs(case: str, overrides: dict[str, Any] | None = None) -> ExportInputs:
    """The case's inputs; ``overrides`` are merged into its profile first."""
    profile = profile_for(case)
    if overrides:
        data = deep_merge(profile.model_dump(mode="json", exclude_none=True), overrides)
        profile = Profile.model_validate(data)
    return inputs_for_profile(profile)


def check_golden(case: str, target: str, files: list[RenderedFile]) -> None:
    """Every file equals ``tests/golden/<case>/<target>/<path>``; no stale golden file."""
    folder: Path = GOLDEN / case / target
    for item in files:
        check(folder / item.path, item.content)
    if not UPDATE:
        kept = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
        assert kept == {item.path for item in files}
