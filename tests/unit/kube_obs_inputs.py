"""ExportInputs for the autoscaling and observability tests: a built-in profile with overrides,
planned against a machine-independent store path (nothing read from this host's store)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from llmdeploy.deploy.plan import plan_deployment
from llmdeploy.profiles.loader import resolve
from llmdeploy.profiles.merge import deep_merge
from llmdeploy.profiles.schema import Profile
from llmdeploy.render.inputs import ExportInputs

STORE = Path("/home/user/.cache/llmdeploy/models")
GIB = 2**30


def profile(builtin: str, **overrides: Any) -> Profile:
    data = resolve(builtin, env={}).profile.model_dump(mode="json", exclude_none=True)
    return Profile.model_validate(deep_merge(data, overrides))


def inputs(builtin: str, *, weights_bytes: int | None = None, queue_target: float | None = None,
           queue_target_source: str = "", ttft_slo_ms: float | None = None,
           **overrides: Any) -> ExportInputs:
    prof = profile(builtin, **overrides)
    ref = prof.model.ref
    filename = "" if ref.names_folder or prof.model.convert == "hf" else ref.filename
    plan = plan_deployment(prof, model_dir=STORE / "model-0123456789", model_filename=filename,
                           data_root=STORE / "_data")
    return ExportInputs(plan=plan, profile=prof, weights_bytes=weights_bytes,
                        queue_target=queue_target, queue_target_source=queue_target_source,
                        ttft_slo_ms=ttft_slo_ms)


def docs(files: list[Any]) -> dict[str, dict[str, Any]]:
    """file name -> its YAML document."""
    return {f.path: yaml.safe_load(f.content) for f in files}
