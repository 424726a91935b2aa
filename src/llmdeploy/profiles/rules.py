"""Rules that span several profile fields: each backend's rules for the chosen accelerator.

Every static rule about a profile lives in the schema (field validators for one field, these
for several), so ``profiles validate``, ``render``, ``up --dry-run`` and ``up`` accept and refuse
exactly the same profiles: nothing downstream (backends, renderers, the planner) refuses a
profile the schema accepted.

Each rule returns :class:`Violation` rows (field path, message); the schema raises them all at
once as a :class:`ProfileRuleError`, which ``profiles.errors`` prints one line per field.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmdeploy.constants import MODEL_MOUNT_DIR
from llmdeploy.core.model_formats import (
    compatibility_problem,
    format_of_ref,
    split_backend_problem,
)
from llmdeploy.core.model_ref import check_ollama_name
from llmdeploy.profiles.backend_options import LlamaCppBackend, OllamaBackend, VllmBackend
from llmdeploy.profiles.modelfile_syntax import PATH_FORMS, UnquotableError, quote_value

if TYPE_CHECKING:
    from llmdeploy.profiles.schema import Profile

# Accelerators each backend has a built-in Containerfile for (render/templates); other
# accelerators run the upstream images, or a Containerfile the profile names.
BUILTIN_BUILDS: dict[str, tuple[str, ...]] = {
    "llamacpp": ("cpu",),
    "vllm": ("cpu",),
    "ollama": (),
}
UPSTREAM_IMAGE_HINT = {
    "llamacpp": "ghcr.io/ggml-org/llama.cpp:server-cuda (or :server-rocm)",
    "vllm": "the official vllm/vllm-openai image",
    "ollama": "the official ollama/ollama image",
}
# KV-cache types llama-server accepts for -ctk/-ctv (common/arg.cpp, kv_cache_types)
LLAMACPP_CACHE_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")
# OLLAMA_KV_CACHE_TYPE values Ollama accepts (docs/faq.md, "How can I set the quantization
# type for the K/V cache?")
OLLAMA_CACHE_TYPES = ("f16", "q8_0", "q4_0")


@dataclass(frozen=True)
class Violation:
    field: str  # dotted path in the profile, e.g. backend.gpu_layers
    message: str


class ProfileRuleError(ValueError):
    """One or more cross-field rules failed; carries every violation."""

    def __init__(self, violations: Sequence[Violation]) -> None:
        super().__init__("; ".join(f"{v.field}: {v.message}" for v in violations))
        self.violations = tuple(violations)


def check(profile: Profile) -> None:
    """Raise ProfileRuleError listing every rule ``profile`` breaks."""
    found = [
        *_model_rules(profile),
        *_accelerator_rules(profile),
        *_build_rules(profile),
        *_backend_rules(profile),
    ]
    if found:
        raise ProfileRuleError(found)


def _model_rules(profile: Profile) -> Iterator[Violation]:
    """The weight format the reference names must be one the backend serves."""
    model = profile.model
    fmt = "safetensors" if model.convert == "hf" else format_of_ref(model.ref)
    problem = compatibility_problem(profile.backend.kind, profile.accelerator, fmt)
    problem = problem or split_backend_problem(
        profile.backend.kind, model.ref, convert=model.convert
    )
    if problem:
        yield Violation("model.ref", problem)


# Accelerators each backend has an official upstream image for; others need ``image:``.
UPSTREAM_ACCELERATORS: dict[str, tuple[str, ...]] = {
    "llamacpp": ("cpu", "cuda", "rocm", "xpu"),
    "vllm": ("cpu", "cuda", "rocm"),  # cpu: the image llmdeploy builds
    "ollama": ("cpu", "cuda", "rocm"),
}


def _accelerator_rules(profile: Profile) -> Iterator[Violation]:
    """GPU counts, and accelerators a backend has no image for."""
    kind = profile.backend.kind
    if profile.gpus is not None and profile.accelerator == "cpu":
        yield Violation(
            "gpus", f"is {profile.gpus} but accelerator is cpu; set accelerator or drop gpus"
        )
    if profile.accelerator not in UPSTREAM_ACCELERATORS[kind] and profile.image is None:
        yield Violation(
            "image",
            f"{kind} has no official image for accelerator {profile.accelerator!r}; set image: "
            "to one built for it",
        )
    options = profile.backend
    if (
        isinstance(options, VllmBackend)
        and profile.accelerator != "cpu"
        and options.tensor_parallel_size > profile.gpu_count
    ):
        yield Violation(
            "backend.tensor_parallel_size",
            f"is {options.tensor_parallel_size} but gpus is {profile.gpu_count}: tensor "
            "parallelism shards the model over that many GPUs of one replica; raise gpus",
        )


def _build_rules(profile: Profile) -> Iterator[Violation]:
    kind = profile.backend.kind
    if profile.build is None:
        return
    if not BUILTIN_BUILDS[kind]:
        yield Violation(
            "build",
            f"llmdeploy does not build {kind} images: {kind} runs from "
            f"{UPSTREAM_IMAGE_HINT[kind]}; remove build: and set image:",
        )
    elif profile.accelerator not in BUILTIN_BUILDS[kind] and not profile.build.containerfile:
        yield Violation(
            "build",
            f"there is no built-in {kind} Containerfile for accelerator "
            f"{profile.accelerator!r} (only {', '.join(BUILTIN_BUILDS[kind])}); use "
            f"{UPSTREAM_IMAGE_HINT[kind]} (set image: and drop build:), or set "
            "build.containerfile to your own",
        )


def _backend_rules(profile: Profile) -> Iterator[Violation]:
    options = profile.backend
    on_cpu = profile.accelerator == "cpu"
    if isinstance(options, LlamaCppBackend):
        if options.gpu_layers and on_cpu:
            yield Violation(
                "backend.gpu_layers",
                f"is {options.gpu_layers} but accelerator is cpu; set accelerator: cuda or "
                "rocm, or drop gpu_layers",
            )
        yield from _llamacpp_flags(options.extra_args)
    elif isinstance(options, VllmBackend):
        if options.gpu_memory_utilization is not None and on_cpu:
            yield Violation(
                "backend.gpu_memory_utilization",
                "applies to GPUs; on accelerator: cpu set backend.cpu_kvcache_space_gib",
            )
        if options.cpu_kvcache_space_gib is not None and not on_cpu:
            yield Violation(
                "backend.cpu_kvcache_space_gib",
                f"applies to accelerator: cpu (this profile is {profile.accelerator}); on "
                "GPUs use backend.gpu_memory_utilization",
            )
        yield from _positive_int_flags(options.extra_args, ("--max-num-batched-tokens",))
    elif isinstance(options, OllamaBackend):
        yield from _ollama_rules(profile, options)


def _ollama_rules(profile: Profile, options: OllamaBackend) -> Iterator[Violation]:
    if profile.model.name is not None:
        try:
            check_ollama_name(profile.model.name)
        except ValueError as exc:
            yield Violation("model.name", f"not an Ollama model name: {exc}")
    filename = profile.model.ref.filename
    if profile.model.ref.scheme != "ollama" and filename:
        try:
            quote_value(f"{MODEL_MOUNT_DIR}/{filename}", field="FROM", forms=PATH_FORMS)
        except UnquotableError as exc:
            yield Violation("model.ref", f"{exc} ({exc.hint})")
    cache = profile.env.get("OLLAMA_KV_CACHE_TYPE")
    if cache is not None and cache.strip().lower() not in OLLAMA_CACHE_TYPES:
        yield Violation(
            "env.OLLAMA_KV_CACHE_TYPE",
            f"unknown cache type {cache!r}; Ollama takes {', '.join(OLLAMA_CACHE_TYPES)}",
        )


def _llamacpp_flags(args: Sequence[str]) -> Iterator[Violation]:
    for names in (("-ctk", "--cache-type-k"), ("-ctv", "--cache-type-v")):
        for value in flag_values(args, names):
            if value.strip().lower() not in LLAMACPP_CACHE_TYPES:
                yield Violation(
                    "backend.extra_args",
                    f"{names[-1]} {value!r} is not a llama.cpp cache type "
                    f"({', '.join(LLAMACPP_CACHE_TYPES)})",
                )
    yield from _positive_int_flags(
        args, ("-ub", "--ubatch-size", "-b", "--batch-size", "-tb", "--threads-batch")
    )


def _positive_int_flags(args: Sequence[str], names: tuple[str, ...]) -> Iterator[Violation]:
    for name in names:
        for value in flag_values(args, (name,)):
            if not value.strip().isdigit() or int(value) <= 0:
                yield Violation("backend.extra_args", f"{name} {value!r} is not a positive number")


def flag_values(args: Sequence[str], names: tuple[str, ...]) -> list[str]:
    """Every value given to one of ``names`` as ``NAME VALUE`` or ``NAME=VALUE``."""
    found = []
    for index, arg in enumerate(args):
        flag, eq, value = arg.partition("=")
        if flag in names:
            if eq:
                found.append(value)
            elif index + 1 < len(args):
                found.append(args[index + 1])
            else:
                found.append("")
    return found
