"""`llmdeploy plan` as one typed request and one call: ``plan_request(request) -> PlanOutcome``.

A request plans either a profile or a hypothetical model:

- with ``profile``: the profile's model (inspected when it is on disk, else guessed from the
  reference's name), its backend knobs and its target: ``gpu_memory_bytes`` per GPU (default:
  the host's probe), or for the CPU ``memory_bytes``, else the container limit
  ``resources.memory`` capped by host RAM. The other fields are what-ifs laid over it.
- without: a model from ``arch`` (a preset) and/or the explicit shape fields, served by
  ``backend`` (default: llama.cpp for GGUF quantizations, else vLLM) on a GPU when
  ``gpu_memory_bytes`` is given, else in ``memory_bytes`` or host RAM.

A bad value or combination raises ``UsageError``, a model that cannot be sized ``ModelError``;
a plan that does not fit is an outcome (``PlanOutcome.fits`` is False; ``misfit()`` is the
``PlanError`` a front end raises for it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from llmdeploy.core.model_info import ModelInfo
from llmdeploy.core.sizes import GIB, format_bytes, to_bytes
from llmdeploy.errors import ModelError, PlanError, UsageError
from llmdeploy.planner import quant
from llmdeploy.planner.fit import plan
from llmdeploy.planner.gpus import Gpu
from llmdeploy.planner.host import Host
from llmdeploy.planner.presets import PRESETS, parse_parameter_count
from llmdeploy.planner.report import FitReport
from llmdeploy.planner.sizing import Sizing, kv_cache_dtypes, size_model
from llmdeploy.planner.spec import BackendKind, ServingSpec, spec_from_profile
from llmdeploy.planner.target import Target, cpu_target, gpu_target
from llmdeploy.planner.whatif import hypothetical_spec, known_weights_format, with_overrides
from llmdeploy.profiles.schema import Profile

if TYPE_CHECKING:
    from llmdeploy.models.inspect.remote import ModelFacts

BACKENDS: tuple[BackendKind, ...] = ("llamacpp", "vllm", "ollama")
# the ModelInfo fields `--list-arch --json` and the `model` object of a plan show
_SHAPE_FIELDS = ("layers", "kv_heads", "head_dim", "hidden_size", "parameters", "quantization")
# the ModelInfo fields a preset lays over an inspected or guessed model
_OVERLAY_FIELDS = (
    "architecture",
    "parameters",
    "layers",
    "attention_heads",
    "kv_heads",
    "head_dim",
    "hidden_size",
    "context_length",
    "vocab_size",
    "quantization",
    "torch_dtype",
)


@dataclass(frozen=True)
class PlanRequest:
    """What to plan; None = not given (the profile's value, a preset's or a default)."""

    profile: Profile | None = None
    # the model: a preset by name, and figures laid over it (and over an inspected model)
    arch: str | None = None
    parameters: int | None = None
    layers: int | None = None
    kv_heads: int | None = None
    head_dim: int | None = None
    hidden_size: int | None = None
    quantization: str | None = None  # the weights' format: FP16, Q4_K_M, AWQ, ...
    backend: str | None = None  # hypothetical plans only: llamacpp, vllm or ollama
    # the workload
    context: int | None = None  # tokens per sequence, on every backend
    sequences: int | None = None
    kv_cache_dtype: str | None = None
    tensor_parallel_size: int | None = None  # vLLM
    cpu_kv_space_gib: int | None = None  # vLLM on the CPU: VLLM_CPU_KVCACHE_SPACE
    # the target
    gpu_memory_bytes: int | None = None  # ONE GPU; a hypothetical plan with it is a GPU plan
    memory_bytes: int | None = None  # CPU: what the server may use

    def explicit_shape(self) -> dict[str, int]:
        """The model figures given explicitly, by ``ModelInfo`` field name."""
        given = {
            "layers": self.layers,
            "kv_heads": self.kv_heads,
            "head_dim": self.head_dim,
            "hidden_size": self.hidden_size,
            "parameters": self.parameters,
        }
        return {name: value for name, value in given.items() if value is not None}

    @property
    def cpu_kv_cache_bytes(self) -> int | None:
        return self.cpu_kv_space_gib * GIB if self.cpu_kv_space_gib else None


@dataclass(frozen=True)
class PlanOutcome:
    """A planned request: what was planned (title, model and where its figures come from,
    spec) and the ``FitReport``."""

    title: str  # "profile NAME" or "hypothetical NAME"
    info: ModelInfo
    origin: str  # where the model's figures come from, for people
    spec: ServingSpec
    report: FitReport

    @property
    def fits(self) -> bool | None:
        return self.report.fits

    def to_json(self) -> dict[str, Any]:
        """``plan --json``: the report's fields with ``plan`` (the title) and ``model``."""
        head = {"plan": self.title, "model": model_json(self.info, self.origin)}
        return head | self.report.to_json()

    def misfit(self) -> PlanError:
        """The error for a plan that does not fit, with the first suggestion as its hint."""
        report = self.report
        over = -(report.margin_bytes or 0)
        best = report.suggestions[0].summary if report.suggestions else None
        return PlanError(
            f"{self.title} does not fit: {_bytes(report.total_bytes)} needed, "
            f"{_bytes(report.budget_bytes or 0)} available ({_bytes(over)} over)",
            hint=f"for example {best}" if best else "see the notes above",
        )


def model_json(info: ModelInfo, origin: str) -> dict[str, Any]:
    """The model's shape as ``plan --json`` and ``plan --list-arch --json`` print it."""
    data: dict[str, Any] = {name: getattr(info, name) for name in _SHAPE_FIELDS}
    data.update(
        architecture=info.architecture,
        torch_dtype=info.torch_dtype,
        context_length=info.context_length,
        origin=origin,
    )
    return data


def size_option(flag: str, value: str | None) -> int | None:
    """A size option (``24GiB``, ``80G``, ``16384M``) in bytes; UsageError naming ``flag``."""
    if value is None:
        return None
    try:
        size = to_bytes(value)
    except ValueError as exc:
        raise UsageError(
            f"{flag}: not a size: {value!r}", hint="use e.g. 24GiB, 80G or 16384M"
        ) from exc
    if size <= 0:
        raise UsageError(f"{flag} must be positive")
    return size


def parameters_option(value: str | None) -> int | None:
    """``--params``: ``7B``, ``135M`` or a plain count; UsageError for anything else."""
    if value is None:
        return None
    count = parse_parameter_count(value)
    if count is None or count <= 0:
        raise UsageError(f"--params: not a parameter count: {value!r}", hint="e.g. 7B")
    return count


def plan_request(request: PlanRequest, host: Host | None = None) -> PlanOutcome:
    """Plan ``request``; ``host`` probes this machine (host RAM, GPU memory, the model on
    disk) only for what the request leaves open. Raises UsageError, ModelError, ProfileError."""
    host = host or Host()
    preset = _preset(request.arch)
    if request.profile is not None:
        setup = _from_profile(request, request.profile, preset, host)
    else:
        setup = _hypothetical(request, preset, host)
    spec = setup.spec
    for flag, value in (
        ("--tensor-parallel", request.tensor_parallel_size),
        ("--cpu-kv-space", request.cpu_kv_space_gib),
    ):
        if value is not None and spec.backend != "vllm":
            raise UsageError(f"{flag} applies to vLLM; this plan is for {spec.backend}")
    try:
        report = plan(setup.info, spec, setup.target)
    except ModelError as exc:
        raise ModelError(f"{exc.message} (model: {setup.origin})", hint=exc.hint) from exc
    return PlanOutcome(setup.title, setup.info, setup.origin, spec, report)


@dataclass(frozen=True)
class _Setup:
    title: str
    info: ModelInfo
    origin: str
    spec: ServingSpec
    target: Target


def _preset(arch: str | None) -> ModelInfo | None:
    if arch is None:
        return None
    preset = PRESETS.get(arch.lower())
    if preset is None:
        raise UsageError(
            f"no architecture preset named {arch!r}", hint="known: " + ", ".join(PRESETS)
        )
    return preset


def _overlay(base: ModelInfo, top: ModelInfo | None, explicit: dict[str, Any]) -> ModelInfo:
    """``base`` with the known fields of ``top`` and then ``explicit`` laid over it."""
    changes: dict[str, Any] = {}
    if top is not None:
        for name in _OVERLAY_FIELDS:
            value = getattr(top, name)
            if value is not None:
                changes[name] = value
    changes.update(explicit)
    return replace(base, **changes)


def _from_profile(
    request: PlanRequest, profile: Profile, preset: ModelInfo | None, host: Host
) -> _Setup:
    if request.backend is not None:
        raise UsageError(
            "--backend is for hypothetical plans; a profile names its own backend.kind"
        )
    found, origin = host.model_info(profile.model.ref)
    info = _overlay(found, preset, request.explicit_shape())
    spec = with_overrides(
        spec_from_profile(profile, info),
        context=request.context,
        sequences=request.sequences,
        weights_format=request.quantization,
        kv_cache_dtype=request.kv_cache_dtype,
        tensor_parallel_size=request.tensor_parallel_size,
        cpu_kv_cache_bytes=request.cpu_kv_cache_bytes,
    )
    if spec.device == "gpu":
        if request.memory_bytes is not None:
            raise UsageError(
                f"--memory is for CPU profiles; {profile.name} runs on {profile.accelerator}",
                hint="give the memory of one GPU with --gpu-memory",
            )
        per_gpu, how = (
            (request.gpu_memory_bytes, "--gpu-memory")
            if request.gpu_memory_bytes
            else host.gpu_memory(profile.accelerator)
        )
        if per_gpu is None:
            raise UsageError(
                f"{profile.name} runs on {profile.accelerator} and the GPU memory is unknown "
                f"({how})",
                hint="pass the memory of one GPU, e.g. --gpu-memory 24GiB",
            )
        target = gpu_target(spec, per_gpu)
    elif request.gpu_memory_bytes is not None:
        raise UsageError(
            f"--gpu-memory is for GPU profiles; {profile.name} runs on the CPU",
            hint="use --memory for the memory a CPU container may use",
        )
    else:
        target = _cpu_target(request, host, profile.resources.memory)
    return _Setup(f"profile {profile.name}", info, origin, spec, target)


def _hypothetical(request: PlanRequest, preset: ModelInfo | None, host: Host) -> _Setup:
    explicit = request.explicit_shape()
    if preset is None and not explicit:
        raise UsageError(
            "nothing to plan: give --profile, or describe a model",
            hint="e.g. llmdeploy plan --arch llama-2-7b --quant Q4_K_M --context 4096 --seqs 4 "
            "--gpu-memory 24GiB, or --params 7B --layers 32 --kv-heads 8 --head-dim 128",
        )
    info = _overlay(ModelInfo(format="unknown"), preset, explicit)
    if request.quantization is not None:
        info = replace(info, quantization=known_weights_format(request.quantization))
    backend = _backend(request.backend, info)
    context = request.context or info.context_length
    if context is None:
        raise UsageError("--context is needed (tokens per sequence)", hint="e.g. --context 4096")
    gpu = request.gpu_memory_bytes
    if gpu is not None and request.memory_bytes is not None:
        raise UsageError(
            "--memory is for CPU plans; --gpu-memory makes this a GPU plan",
            hint="give one of them",
        )
    spec = hypothetical_spec(
        info,
        backend=backend,
        device="gpu" if gpu is not None else "cpu",
        context=context,
        sequences=request.sequences or 1,
        kv_cache_dtype=request.kv_cache_dtype,
        tensor_parallel_size=request.tensor_parallel_size or 1,
        cpu_kv_cache_bytes=request.cpu_kv_cache_bytes,
    )
    target = gpu_target(spec, gpu) if gpu is not None else _cpu_target(request, host, None)
    arch = request.arch
    origin = f"preset {arch}" if preset is not None else "given on the command line"
    if preset is not None and explicit:
        origin += " (with command-line overrides)"
    name = arch or (f"{info.parameters / 1e9:.3g}B model" if info.parameters else "model")
    return _Setup(f"hypothetical {name}", info, origin, spec, target)


def _backend(name: str | None, info: ModelInfo) -> BackendKind:
    """``--backend``, or llama.cpp for a GGUF quantization and vLLM for anything else."""
    if name is None:
        return "llamacpp" if quant.is_gguf_quant(info.quantization) else "vllm"
    for kind in BACKENDS:
        if name == kind:
            return kind
    raise UsageError(f"--backend: {name!r}", hint="use llamacpp, vllm or ollama")


def _cpu_target(request: PlanRequest, host: Host, memory_limit: str | None) -> Target:
    """``--memory`` when given; else host RAM, capped by a profile's container limit."""
    host_ram = host.memory_bytes()
    if request.memory_bytes is not None:
        return Target(
            "cpu", request.memory_bytes, description="--memory", host_memory_bytes=host_ram
        )
    return cpu_target(host_ram, memory_limit)


def _bytes(value: int) -> str:
    return format_bytes(value, digits=2)



# --- `plan MODEL_REF`: what fits on which GPU, before buying one --------------------------


@dataclass(frozen=True)
class ModelQuestion:
    """``llmdeploy plan MODEL_REF --gpu NAME``: what fits on GPUs of one size.

    ``ref``: the model reference as given (or a local path); ``per_gpu_bytes``: one GPU's
    memory (``gpu.memory_bytes`` for a named GPU, ``--gpu-memory``, or this host's GPU);
    ``gpus``: the GPU count compared with one; the rest as in ``PlanRequest``."""

    ref: str
    per_gpu_bytes: int
    gpu: Gpu | None = None
    gpu_source: str = "--gpu-memory"  # where per_gpu_bytes comes from, for people
    gpus: int = 2
    context: int | None = None
    kv_cache_dtype: str | None = None
    backend: str | None = None
    quantization: str | None = None


@dataclass(frozen=True)
class QuestionOutcome:
    """The answers to a ``ModelQuestion``, with the model's facts and what reading them cost."""

    question: ModelQuestion
    facts: ModelFacts
    sizing: Sizing

    @property
    def info(self) -> ModelInfo:
        return self.facts.info

    def to_json(self) -> dict[str, Any]:
        """``plan MODEL_REF --json``: every figure in bytes or tokens."""
        question = self.question
        gpu: dict[str, Any] = (
            question.gpu.to_json() if question.gpu else {"memory_bytes": question.per_gpu_bytes}
        )
        gpu["source"] = question.gpu_source
        return {
            "plan": f"model {question.ref}",
            "model": model_json(self.info, self.facts.origin)
            | {"ref": question.ref, "format": self.info.format},
            "read": self.facts.read_summary(),
            "gpu": gpu,
            **self.sizing.to_json(),
        }


FactsReader = Callable[[str], "ModelFacts"]


def answer_question(
    question: ModelQuestion, facts_for: FactsReader | None = None
) -> QuestionOutcome:
    """Read the model's facts without downloading it (``models.inspect.remote.model_facts``,
    or ``facts_for``) and answer ``question`` (``planner.sizing.size_model``). UsageError for a
    bad value or a backend that cannot serve the model, ModelError for a model that cannot be
    read or sized."""
    from llmdeploy.core.model_formats import compatibility_problem
    from llmdeploy.core.model_ref import parse_ref
    from llmdeploy.models.inspect.remote import model_facts

    if question.gpus < 1:
        raise UsageError("--gpus must be at least 1")
    is_ollama = "://" in question.ref and parse_ref(question.ref).scheme == "ollama"
    facts = (facts_for or model_facts)(question.ref)
    info = facts.info
    fmt = "ollama" if is_ollama else info.format
    if question.backend is not None:
        backend = _backend(question.backend, info)
    elif is_ollama:
        backend = "ollama"
    else:
        backend = "llamacpp" if fmt == "gguf" else "vllm"
    problem = compatibility_problem(backend, "cuda", fmt)
    if problem is not None:
        raise UsageError(f"--backend {backend}: {problem}")
    try:
        sizing = size_model(
            info,
            backend,
            question.per_gpu_bytes,
            gpus=question.gpus,
            context=question.context,
            kv_cache_dtypes=kv_cache_dtypes(backend, question.kv_cache_dtype),
            weights_format=question.quantization,
        )
    except ModelError as exc:
        raise ModelError(f"{exc.message} (model: {facts.origin})", hint=exc.hint) from exc
    return QuestionOutcome(question, facts, sizing)
