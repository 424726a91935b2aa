"""The memory planner: does a deployment fit its GPU or container before anything starts?

Pure domain code (no I/O): it takes a ``ModelInfo`` (from ``models inspect``, a preset or a
reference's name), a ``ServingSpec`` (read from a profile) and a ``Target`` (GPU memory x GPUs,
or a container's memory) and returns a ``FitReport``: weights, KV cache and overhead in bytes,
the verdict and margin, and, when it does not fit, computed suggestions, each re-planned.

``check_profile`` is the entry point for the lifecycle (``up`` runs it before starting)::

    from llmdeploy.planner import check_profile

    report = check_profile(profile, info, available_bytes=gpu_or_host_bytes)
    if report.starts is False:      # the server could not even start: refuse
        ...
    elif report.fits is False:      # starts, but the worst case (all sequences at full
        ...                         # context) does not fit: warn, or refuse when strict

Formulas, constants and their sources: ``docs/planner.md``.
"""

from __future__ import annotations

from llmdeploy.core.model_info import ModelInfo
from llmdeploy.planner.figures import kv_bytes_per_token
from llmdeploy.planner.fit import plan
from llmdeploy.planner.presets import PRESETS, parse_parameter_count, preset_for_name
from llmdeploy.planner.reference import info_from_reference
from llmdeploy.planner.report import FitReport, Suggestion
from llmdeploy.planner.shape import ModelShape, estimate_weights, shape_of
from llmdeploy.planner.spec import ServingSpec, spec_from_profile
from llmdeploy.planner.target import Target, target_for
from llmdeploy.planner.whatif import hypothetical_spec, with_overrides
from llmdeploy.profiles.schema import Profile

__all__ = [
    "PRESETS",
    "FitReport",
    "ModelShape",
    "ServingSpec",
    "Suggestion",
    "Target",
    "check_profile",
    "estimate_weights",
    "hypothetical_spec",
    "info_from_reference",
    "kv_bytes_per_token",
    "parse_parameter_count",
    "plan",
    "preset_for_name",
    "shape_of",
    "spec_from_profile",
    "target_for",
    "with_overrides",
]


def check_profile(profile: Profile, info: ModelInfo, *, available_bytes: int | None) -> FitReport:
    """Plan ``profile`` serving the model ``info`` describes; pure, fast, no I/O.

    ``available_bytes``: what the machine offers. GPU profiles (``accelerator: cuda/rocm``):
    the memory of ONE GPU; vLLM's ``tensor_parallel_size`` multiplies it. CPU profiles: host
    RAM; the profile's ``resources.memory`` (the container limit) caps it. None with no
    limit in the profile: figures only, ``fits`` and ``starts`` are None.

    Raises ``ModelError`` when the model's shape or weights cannot be sized from ``info``,
    ``ProfileError`` for a cache type or flag in the profile the planner cannot read.
    """
    spec = spec_from_profile(profile, info)
    target = target_for(spec, available_bytes, memory_limit=profile.resources.memory)
    return plan(info, spec, target)
